package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Decode decodes a plugin entry strictly into targets, each a pointer to a
// struct. Every key must be name, type or a yaml field of exactly one target;
// fields tagged required:"true" must be present; string fields tagged
// carpipe:"path" are made absolute: against c.Dir, or c.WorkDir when the
// value starts with an environment variable's. It returns every problem,
// including the entry's unset variables, as Problems. A target that is not
// a struct pointer, or two targets claiming one key, is a plain error.
func (c *Config) Decode(p Plugin, targets ...any) error {
	if p.Node == nil || p.Node.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s %q has no mapping to decode", p.kindName(), p.Name)
	}
	fields := map[string]field{}
	for _, t := range targets {
		v := reflect.ValueOf(t)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return fmt.Errorf("config: Decode target %T is not a pointer to a struct", t)
		}
		if dup := structFields(v.Elem(), fields); dup != "" {
			return fmt.Errorf("config: two Decode targets claim key %q", dup)
		}
	}
	d := decoder{file: p.Pos.File, what: fmt.Sprintf("%s %q (type %s)", p.kindName(), p.Name, p.Type),
		fromEnv: c.fromEnv, envStrings: map[uintptr]bool{}}
	d.mapping(p.Node, fields, "", "name", "type")
	for _, t := range targets {
		c.resolvePaths(reflect.ValueOf(t).Elem(), d.envStrings)
	}
	probs := append(append(Problems(nil), p.Unset...), d.probs...)
	probs.sortByPos()
	return probs.Err()
}

// ValuesDecoded tells whether Decode, returning err, filled in every key
// the entry holds: err is nil or reports only unknown keys. A plugin's own
// checks are worth running then, rather than after the next attempt.
func ValuesDecoded(err error) bool {
	if err == nil {
		return true
	}
	ps, ok := err.(Problems)
	if !ok {
		return false
	}
	for _, p := range ps {
		if !p.unknownKey {
			return false
		}
	}
	return true
}

func (p Plugin) kindName() string {
	if p.kind == "" {
		return "entry"
	}
	return p.kind
}

type field struct {
	v        reflect.Value
	required bool
}

// structFields adds the yaml keys of struct v to fs, following ",inline",
// and returns a key that was already there, if any.
func structFields(v reflect.Value, fs map[string]field) (dup string) {
	eachKey(v, func(key string, sf reflect.StructField, fv reflect.Value) {
		if _, ok := fs[key]; ok {
			dup = key
		}
		fs[key] = field{v: fv, required: sf.Tag.Get("required") == "true"}
	})
	return dup
}

// eachKey calls fn for every yaml key of struct v, in order, following
// ",inline" and naming untagged fields as yaml.v3 does.
func eachKey(v reflect.Value, fn func(key string, sf reflect.StructField, fv reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		key, opts, _ := strings.Cut(tag, ",")
		inline := slices.Contains(strings.Split(opts, ","), "inline") && sf.Type.Kind() == reflect.Struct
		switch {
		case tag == "-" || !sf.IsExported() && !inline:
			continue
		case inline:
			eachKey(v.Field(i), fn)
			continue
		}
		if key == "" {
			key = strings.ToLower(sf.Name)
		}
		fn(key, sf, v.Field(i))
	}
}

type decoder struct {
	file  string
	what  string // e.g. `input "inbox" (type dir)`
	probs Problems

	fromEnv    map[*yaml.Node]bool
	envStrings map[uintptr]bool // addresses of strings decoded from those nodes
}

func (d *decoder) add(n *yaml.Node, format string, args ...any) {
	d.probs = append(d.probs, Problem{Pos: Pos{File: d.file, Line: n.Line, Col: n.Column}, Msg: fmt.Sprintf(format, args...)})
}

// mapping decodes mapping n into fs; path is the dotted key of n, for
// messages, and extra lists keys that are allowed but not decoded.
func (d *decoder) mapping(n *yaml.Node, fs map[string]field, path string, extra ...string) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		seen[k.Value] = true
		f, ok := fs[k.Value]
		switch {
		case ok:
			d.value(v, f.v, join(path, k.Value))
		case !slices.Contains(extra, k.Value):
			known := append(slices.Collect(maps.Keys(fs)), extra...)
			slices.Sort(known)
			known = slices.Compact(known) // a target may decode name or type too
			d.add(k, "unknown key %q in %s; known keys: %s", join(path, k.Value), d.what, strings.Join(known, ", "))
			d.probs[len(d.probs)-1].unknownKey = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(fs)) {
		if fs[key].required && !seen[key] {
			d.add(n, "missing required key %q in %s", join(path, key), d.what)
		}
	}
}

// value decodes n into v. Structs are walked here, so that their keys are
// checked too; everything else is left to yaml.v3.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	null := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	switch {
	case isStruct(v.Type()):
		if null {
			return // as yaml.v3 does: keep what is there
		}
		if n.Kind != yaml.MappingNode {
			d.add(n, "%q in %s must be a mapping, not %s", path, d.what, describeNode(n))
			return
		}
		fs := map[string]field{}
		structFields(v, fs)
		d.mapping(n, fs, path)
	case v.Kind() == reflect.Pointer && isStruct(v.Type().Elem()) && !null:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case v.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	default:
		// yaml.v3's message would quote the value, which may be a secret.
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.add(n, "%q in %s must be %s", path, d.what, describeType(v.Type()))
		} else if d.fromEnv[n] && v.Kind() == reflect.String {
			d.envStrings[v.Addr().Pointer()] = true
		}
	}
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
)

// isStruct tells whether t is a struct made of keys, rather than one that
// decodes itself from a value, like time.Time.
func isStruct(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Kind() == reflect.Struct && t != nodeType &&
		!pt.Implements(textUnmarshaler) && !pt.Implements(yamlUnmarshaler)
}

func describeType(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration such as 30s"
	case timeType:
		return "a time such as 2006-01-02T15:04:05Z"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return "an integer that fits in " + t.Kind().String()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer that fits in " + t.Kind().String()
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a mapping"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return "a valid " + t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolvePaths makes the carpipe:"path" strings in v absolute, including
// defaults the plugin set before decoding, which are config-relative like
// the file's own text; env holds the strings that came from variables.
func (c *Config) resolvePaths(v reflect.Value, env map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			c.resolvePaths(v.Elem(), env)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			c.resolvePaths(v.Index(i), env)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			sf, f := t.Field(i), v.Field(i)
			switch {
			case !sf.IsExported() && !sf.Anonymous:
			case sf.Tag.Get("carpipe") == "path" && f.Kind() == reflect.String && f.CanSet():
				f.SetString(resolvePath(c.base(env[f.Addr().Pointer()]), f.String()))
			default:
				c.resolvePaths(f, env)
			}
		}
	}
}
