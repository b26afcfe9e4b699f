// Package fastcheck compiles a record schema for the common case of a
// valid record. Valid answers true only where gojsonschema v1.2.0 would
// report no error, so a true skips gojsonschema; false only means "ask
// gojsonschema", which stays the judge of invalid records and words their
// errors. Every rule mirrors gojsonschema's own code (validation.go,
// schema.go), quirks included, not the JSON Schema specification.
//
// Values are those encoding/json makes with UseNumber: map[string]any,
// []any, json.Number, string, bool and nil.
//
// The package changes nothing of gojsonschema's: its format checkers stay
// the stock ones. It also takes large enums off gojsonschema's hands (see
// enums.go).
package fastcheck

import (
	"encoding/json"
	"math/big"
	"regexp"
	"unicode/utf8"
)

// Checker is one compiled record schema.
type Checker struct {
	root *node
}

// Valid reports whether gojsonschema would surely accept v.
func (c *Checker) Valid(v any) bool { return c.root.valid(v) }

// node is a schema or subschema.
type node struct {
	always, never bool  // draft-06+ true and false schemas
	ref           *node // a $ref; gojsonschema ignores its siblings
	types         uint8 // 0: any type
	obj           *objectRules
	arr           *arrayRules
	str           *stringRules
	num           *numberRules
	allOf, anyOf  []*node
	strFormat     func(string) bool
	numFormat     func(*big.Rat) bool
	hasConst      bool
	constVal      any      // as encoding/json decodes gojsonschema's text
	enum          *enumSet // likewise; nil: none
}

const (
	tNull uint8 = 1 << iota
	tBoolean
	tString
	tNumber
	tInteger
	tArray
	tObject
)

var typeBits = map[string]uint8{
	"null": tNull, "boolean": tBoolean, "string": tString, "number": tNumber,
	"integer": tInteger, "array": tArray, "object": tObject,
}

type objectRules struct {
	props         []prop
	named         map[string]bool // the keys of props
	required      []string
	noExtra       bool  // additionalProperties: false
	extra         *node // additionalProperties as a schema
	patterns      []patternProp
	propertyNames *node
	minProps      int // -1: none
	maxProps      int
	deps          []dependency
}

type prop struct {
	name string
	s    *node
}

type patternProp struct {
	re *regexp.Regexp
	s  *node
}

type dependency struct {
	key   string
	needs []string
	s     *node
}

type arrayRules struct {
	items              *node
	minItems, maxItems int // -1: none
	unique             bool
	contains           *node
}

type stringRules struct {
	minLen, maxLen int // -1: none
	pattern        *regexp.Regexp
}

func (n *node) valid(v any) bool {
	if n.always {
		return true
	}
	if n.never {
		return false
	}
	if n.ref != nil {
		return n.ref.valid(v)
	}
	switch x := v.(type) {
	case nil:
		if !n.allows(tNull) {
			return false
		}
	case bool:
		if !n.allows(tBoolean) {
			return false
		}
	case string:
		if !n.allows(tString) || n.str != nil && !n.str.valid(x) || n.strFormat != nil && !n.strFormat(x) {
			return false
		}
	case json.Number:
		if !n.number(x) {
			return false
		}
	case []any:
		if !n.allows(tArray) || n.arr != nil && !n.arr.valid(x) {
			return false
		}
	case map[string]any:
		if !n.allows(tObject) || n.obj != nil && !n.obj.valid(x) {
			return false
		}
	default:
		return false // outside the value model
	}
	for _, s := range n.allOf {
		if !s.valid(v) {
			return false
		}
	}
	if len(n.anyOf) > 0 {
		ok := false
		for _, s := range n.anyOf {
			if s.valid(v) {
				ok = true
				break
			}
			if wild(v) {
				return false // gojsonschema may have panicked in s
			}
		}
		if !ok {
			return false
		}
	}
	if n.hasConst && !sameCanonical(n.constVal, v) {
		return false
	}
	return n.enum == nil || n.enum.has(v)
}

func (n *node) allows(t uint8) bool { return n.types == 0 || n.types&t != 0 }

func (sr *stringRules) valid(s string) bool {
	if sr.minLen >= 0 || sr.maxLen >= 0 {
		n := utf8.RuneCountInString(s) // as gojsonschema: a bad byte is one
		if sr.minLen >= 0 && n < sr.minLen || sr.maxLen >= 0 && n > sr.maxLen {
			return false
		}
	}
	return sr.pattern == nil || sr.pattern.MatchString(s)
}

func (ar *arrayRules) valid(a []any) bool {
	if ar.minItems >= 0 && len(a) < ar.minItems || ar.maxItems >= 0 && len(a) > ar.maxItems {
		return false
	}
	if ar.items != nil {
		for _, e := range a {
			if !ar.items.valid(e) {
				return false
			}
		}
	}
	if ar.unique {
		seen := make(map[string]bool, len(a))
		for _, e := range a {
			c, err := canonicalText(e)
			if err != nil || seen[c] {
				return false
			}
			seen[c] = true
		}
	}
	if ar.contains != nil {
		for _, e := range a {
			if ar.contains.valid(e) {
				return true
			}
			if wild(e) {
				return false // gojsonschema may have panicked on e
			}
		}
		return false
	}
	return true
}

func (or *objectRules) valid(m map[string]any) bool {
	if or.minProps >= 0 && len(m) < or.minProps || or.maxProps >= 0 && len(m) > or.maxProps {
		return false
	}
	for _, k := range or.required {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	for _, p := range or.props {
		if v, ok := m[p.name]; ok && !p.s.valid(v) {
			return false
		}
	}
	if or.noExtra || or.extra != nil || len(or.patterns) > 0 {
		for k, v := range m {
			matched := false
			for _, pp := range or.patterns {
				if pp.re.MatchString(k) {
					matched = true
					if !pp.s.valid(v) {
						return false
					}
				}
			}
			if matched || or.named[k] {
				continue
			}
			if or.noExtra || or.extra != nil && !or.extra.valid(v) {
				return false
			}
		}
	}
	if or.propertyNames != nil {
		for k := range m {
			if !or.propertyNames.valid(k) {
				return false
			}
		}
	}
	for _, d := range or.deps {
		if _, ok := m[d.key]; !ok {
			continue
		}
		for _, n := range d.needs {
			if _, ok := m[n]; !ok {
				return false
			}
		}
		if d.s != nil && !d.s.valid(m) {
			return false
		}
	}
	return true
}
