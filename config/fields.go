package config

import (
	"fmt"
	"reflect"
)

// Field is one config key of a plugin, read from the struct Decode fills:
// the same yaml, required, secret, carpipe and doc tags.
type Field struct {
	Key      string
	Type     string // string, integer, number, boolean, duration, time, list or mapping
	Default  any    // the value the struct held before decoding; nil when zero
	Required bool
	Secret   bool
	Path     bool // relative to the config's folder, or to the working directory when it comes from a variable
	Doc      string
	Fields   []Field // a mapping's keys, when it is a struct
	Item     *Field  // a list's items
}

// Fields describes the keys of v, a pointer to a struct, with the values
// it holds as their defaults.
func Fields(v any) []Field {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	var out []Field
	addFields(rv, &out)
	return out
}

// addFields follows structFields: the keys Decode accepts, in order.
func addFields(v reflect.Value, out *[]Field) {
	eachKey(v, func(key string, sf reflect.StructField, fv reflect.Value) {
		f := describe(fv)
		f.Key = key
		f.Required = sf.Tag.Get("required") == "true"
		f.Secret = sf.Tag.Get("secret") == "true"
		f.Path = sf.Tag.Get("carpipe") == "path"
		f.Doc = sf.Tag.Get("doc")
		*out = append(*out, f)
	})
}

// describe gives a value's type and, when it is not zero, its default.
func describe(v reflect.Value) Field {
	t := v.Type()
	var f Field
	if !v.IsZero() {
		f.Default = v.Interface()
	}
	switch {
	case t == durationType:
		f.Type = "duration"
		if f.Default != nil {
			f.Default = fmt.Sprint(f.Default) // 10s, as written in a config
		}
		return f
	case t == timeType:
		f.Type = "time"
		return f
	case t.Kind() == reflect.Pointer:
		elem := reflect.New(t.Elem()).Elem()
		if !v.IsNil() {
			elem = v.Elem()
		}
		return describe(elem)
	case isStruct(t):
		f.Type = "mapping"
		addFields(v, &f.Fields)
		f.Default = nil
		return f
	}
	switch t.Kind() {
	case reflect.Bool:
		f.Type = "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f.Type = "integer"
	case reflect.Float32, reflect.Float64:
		f.Type = "number"
	case reflect.Slice, reflect.Array:
		f.Type = "list"
		item := describe(reflect.New(t.Elem()).Elem())
		f.Item = &item
	case reflect.Map:
		f.Type = "mapping"
	default:
		f.Type = "string" // strings, and types that decode themselves from text
	}
	return f
}
