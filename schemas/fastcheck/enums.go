package fastcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/carpipe/carpipe/schemas/internal/clip"
)

// enumSet is an enum's members as gojsonschema compares them, hashed when
// there are many.
type enumSet struct {
	list []any               // few members
	strs map[string]struct{} // many: the string members
	nums map[uint64]struct{} // the number members, by float64 bits
	rest []any               // the others
}

// hashFrom is the size from which an enum is hashed.
const hashFrom = 16

// newEnumSet returns nil for an empty enum, which gojsonschema ignores.
func newEnumSet(list []any) (*enumSet, error) {
	if len(list) == 0 {
		return nil, nil
	}
	e := &enumSet{}
	hashed := len(list) > hashFrom
	if hashed {
		e.strs = make(map[string]struct{}, len(list))
		e.nums = map[uint64]struct{}{}
	}
	for _, m := range list {
		cv, err := canonicalValue(m)
		if err != nil {
			return nil, errUnsupported
		}
		if !hashed {
			e.list = append(e.list, cv)
			continue
		}
		switch x := cv.(type) {
		case string:
			e.strs[x] = struct{}{}
		case float64:
			e.nums[math.Float64bits(x)] = struct{}{}
		default:
			e.rest = append(e.rest, cv)
		}
	}
	return e, nil
}

// has is sameCanonical against some member.
func (e *enumSet) has(v any) bool {
	if e.strs == nil {
		for _, m := range e.list {
			if sameCanonical(m, v) {
				return true
			}
		}
		return false
	}
	switch x := v.(type) {
	case string:
		_, ok := e.strs[x]
		return ok
	case json.Number:
		if !jsonNumber(string(x)) {
			return false
		}
		f, err := strconv.ParseFloat(string(x), 64)
		_, ok := e.nums[math.Float64bits(f)]
		return err == nil && ok
	}
	for _, m := range e.rest {
		if sameCanonical(m, v) {
			return true
		}
	}
	return false
}

// gojsonschema v1.2.0 compiles an enum in quadratic time (each member
// against those before it, for uniqueness) and checks a value against it
// in linear time: 500,000 members take minutes to load. TakeEnums hands
// the large ones to Enums, which hashes them, and gives gojsonschema a
// schema without them. That is exact only where every record value a
// path reaches must match the enum: a path of properties,
// patternProperties, additionalProperties, items (one schema) and allOf
// from the root, without $ref on the way (gojsonschema may then ignore the
// siblings of $ref). Elsewhere gojsonschema keeps the enum, and one of more
// than MaxEnum members is refused.
const (
	BigEnum = 1000  // members from which an enum on such a path is taken
	MaxEnum = 20000 // members beyond which gojsonschema is not given one
)

// Enums are the large enums TakeEnums took from a schema.
type Enums struct {
	list []*bigEnum
}

type bigEnum struct {
	steps   []step
	types   []string            // the enum's schema's "type"
	set     map[string]struct{} // the members' comparison texts
	allowed string              // the first texts, joined as gojsonschema does
}

type stepKind uint8

const (
	stepSame    stepKind = iota // allOf: the same value
	stepProp                    // properties/name
	stepPattern                 // patternProperties/re
	stepExtra                   // additionalProperties
	stepItems                   // items
)

// step goes from a schema to one of its subschemas.
type step struct {
	types []string // the "type" of the schema it leaves
	kind  stepKind
	name  string
	re    *regexp.Regexp
	named map[string]bool  // stepExtra: the properties,
	pats  []*regexp.Regexp // and the patterns, that are not additional
}

// Failure is a value a large enum refused.
type Failure struct {
	Path    []string // member names and array indexes from the record
	Allowed string   // as gojsonschema details its enum error, cut short
	Value   any
}

// TakeEnums returns doc without the enums of more than BigEnum members
// it can take over, which Enums then checks; nil Enums when there are
// none. It refuses duplicate members as gojsonschema does, and enums of
// more than MaxEnum members it cannot take.
func TakeEnums(ctx context.Context, doc map[string]any) (map[string]any, *Enums, error) {
	e := &Enums{}
	out, _, err := e.take(ctx, doc, nil, "#")
	if err != nil {
		return nil, nil, err
	}
	if ptr, n := LargeEnum(out); n > 0 {
		return nil, nil, fmt.Errorf("enum at %s has %d values: carpipe checks enums of more than %d values only on a path of properties, patternProperties, additionalProperties, items (one schema) or allOf from the schema's root, with no $ref on the way", ptr, n, MaxEnum)
	}
	if len(e.list) == 0 {
		e = nil
	}
	return out, e, nil
}

// LargeEnum finds an enum of more than MaxEnum members in a schema
// document and returns its pointer and size; 0 when there is none.
func LargeEnum(doc any) (string, int) {
	var ptr string
	var n int
	// names is true for a map of names to schemas, whose members named
	// "enum" or "const" are schemas too.
	var walk func(v any, at string, names bool) bool
	walk = func(v any, at string, names bool) bool {
		switch x := v.(type) {
		case map[string]any:
			if list, ok := x["enum"].([]any); ok && !names && len(list) > MaxEnum {
				ptr, n = at+"/enum", len(list)
				return true
			}
			for _, k := range slices.Sorted(maps.Keys(x)) {
				switch {
				case names:
				case k == "enum", k == "const", k == "default", k == "examples":
					continue // values, not schemas
				}
				nameMap := !names && (k == "properties" || k == "patternProperties" || k == "definitions" || k == "$defs" || k == "dependencies")
				if walk(x[k], at+"/"+escapeToken(k), nameMap) {
					return true
				}
			}
		case []any:
			for i, c := range x {
				if walk(c, at+"/"+strconv.Itoa(i), false) {
					return true
				}
			}
		}
		return false
	}
	walk(doc, "#", false)
	return ptr, n
}

func escapeToken(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// take returns m, or a copy of it without the enums it took (changed).
func (e *Enums) take(ctx context.Context, m map[string]any, steps []step, ptr string) (out map[string]any, changed bool, err error) {
	if _, ok := m["$ref"]; ok {
		return m, false, nil
	}
	types, ok := typeNames(m)
	if !ok {
		return m, false, nil // gojsonschema refuses the schema
	}
	out = m
	put := func(k string, v any) {
		if !changed {
			out, changed = maps.Clone(m), true
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	next := func(s step) []step {
		s.types = types
		return append(slices.Clip(steps), s)
	}
	if list, ok := m["enum"].([]any); ok && len(list) > BigEnum {
		b, err := newBigEnum(ctx, list, ptr+"/enum")
		if err != nil {
			return nil, false, err
		}
		b.steps, b.types = steps, types
		e.list = append(e.list, b)
		put("enum", nil)
	}
	props, _ := m["properties"].(map[string]any)
	if props != nil {
		var np map[string]any
		for _, name := range slices.Sorted(maps.Keys(props)) {
			c, ok := props[name].(map[string]any)
			if !ok {
				continue
			}
			nc, ch, err := e.take(ctx, c, next(step{kind: stepProp, name: name}), ptr+"/properties/"+escapeToken(name))
			if err != nil {
				return nil, false, err
			}
			if ch {
				if np == nil {
					np = maps.Clone(props)
				}
				np[name] = nc
			}
		}
		if np != nil {
			put("properties", np)
		}
	}
	var pats []*regexp.Regexp
	patsOK := true
	if pp, ok := m["patternProperties"].(map[string]any); ok {
		var np map[string]any
		for _, p := range slices.Sorted(maps.Keys(pp)) {
			re, err := regexp.Compile(p) // as gojsonschema's regexp.MatchString
			if err != nil {
				patsOK = false
				continue
			}
			pats = append(pats, re)
			c, ok := pp[p].(map[string]any)
			if !ok {
				continue
			}
			nc, ch, err := e.take(ctx, c, next(step{kind: stepPattern, re: re}), ptr+"/patternProperties/"+escapeToken(p))
			if err != nil {
				return nil, false, err
			}
			if ch {
				if np == nil {
					np = maps.Clone(pp)
				}
				np[p] = nc
			}
		}
		if np != nil {
			put("patternProperties", np)
		}
	}
	if c, ok := m["additionalProperties"].(map[string]any); ok && patsOK {
		named := map[string]bool{}
		for k := range props {
			named[k] = true
		}
		nc, ch, err := e.take(ctx, c, next(step{kind: stepExtra, named: named, pats: pats}), ptr+"/additionalProperties")
		if err != nil {
			return nil, false, err
		}
		if ch {
			put("additionalProperties", nc)
		}
	}
	if c, ok := m["items"].(map[string]any); ok {
		nc, ch, err := e.take(ctx, c, next(step{kind: stepItems}), ptr+"/items")
		if err != nil {
			return nil, false, err
		}
		if ch {
			put("items", nc)
		}
	}
	if list, ok := m["allOf"].([]any); ok {
		var nl []any
		for i, x := range list {
			c, ok := x.(map[string]any)
			if !ok {
				continue
			}
			nc, ch, err := e.take(ctx, c, next(step{kind: stepSame}), ptr+"/allOf/"+strconv.Itoa(i))
			if err != nil {
				return nil, false, err
			}
			if ch {
				if nl == nil {
					nl = slices.Clone(list)
				}
				nl[i] = nc
			}
		}
		if nl != nil {
			put("allOf", nl)
		}
	}
	return out, changed, nil
}

// typeNames reads "type"; ok is false when gojsonschema would refuse it.
func typeNames(m map[string]any) (names []string, ok bool) {
	v, has := m["type"]
	if !has {
		return nil, true
	}
	switch x := v.(type) {
	case string:
		names = []string{x}
	case []any:
		for _, n := range x {
			s, isStr := n.(string)
			if !isStr {
				return nil, false
			}
			names = append(names, s)
		}
	default:
		return nil, false
	}
	for _, n := range names {
		if _, known := typeBits[n]; !known {
			return nil, false
		}
	}
	return names, true
}

func newBigEnum(ctx context.Context, list []any, ptr string) (*bigEnum, error) {
	b := &bigEnum{set: make(map[string]struct{}, len(list))}
	var allowed strings.Builder
	for i, m := range list {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		text, err := canonicalText(m)
		if err != nil {
			return nil, fmt.Errorf("enum at %s: value %d: %v", ptr, i, err)
		}
		if _, dup := b.set[text]; dup {
			// gojsonschema's words, and where.
			return nil, fmt.Errorf("enum items must be unique: %s repeats %s", ptr, clip.Text(text))
		}
		b.set[text] = struct{}{}
		if allowed.Len() < 1000 {
			if i > 0 {
				allowed.WriteString(", ")
			}
			allowed.WriteString(text)
		}
	}
	b.allowed = allowed.String()
	if len(list) > 0 && allowed.Len() >= 1000 {
		b.allowed += ", ..."
	}
	return b, nil
}

// Check returns the values of v the large enums refuse, in a stable order.
func (e *Enums) Check(v any) []Failure {
	if e == nil {
		return nil
	}
	var out []Failure
	for _, b := range e.list {
		b.check(0, v, nil, &out)
	}
	return out
}

func (b *bigEnum) check(i int, v any, path []string, out *[]Failure) {
	if i == len(b.steps) {
		if !Allows(b.types, v) {
			return // gojsonschema reports the type, and checks no enum
		}
		text, err := canonicalText(v)
		if _, ok := b.set[text]; err != nil || !ok {
			*out = append(*out, Failure{Path: slices.Clone(path), Allowed: b.allowed, Value: v})
		}
		return
	}
	s := b.steps[i]
	if !Allows(s.types, v) {
		return // gojsonschema stops at a type error
	}
	path = path[:len(path):len(path)]
	switch s.kind {
	case stepSame:
		b.check(i+1, v, path, out)
	case stepItems:
		if a, ok := v.([]any); ok {
			for k, e := range a {
				b.check(i+1, e, append(path, strconv.Itoa(k)), out)
			}
		}
	case stepProp, stepPattern, stepExtra:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if s.kind == stepProp {
			if e, ok := m[s.name]; ok {
				b.check(i+1, e, append(path, s.name), out)
			}
			return
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if s.applies(k) {
				b.check(i+1, m[k], append(path, k), out)
			}
		}
	}
}

// applies reports whether a pattern or additionalProperties step takes
// the member k.
func (s *step) applies(k string) bool {
	if s.kind == stepPattern {
		return s.re.MatchString(k)
	}
	if s.named[k] {
		return false
	}
	for _, re := range s.pats {
		if re.MatchString(k) {
			return false
		}
	}
	return true
}

// Allows is gojsonschema's check of a value against "type", given as names.
func Allows(types []string, v any) bool {
	if len(types) == 0 {
		return true
	}
	var want string
	switch x := v.(type) {
	case nil:
		want = "null"
	case bool:
		want = "boolean"
	case string:
		want = "string"
	case map[string]any:
		want = "object"
	case []any:
		want = "array"
	case json.Number:
		if slices.Contains(types, "number") {
			return true
		}
		r, ok := new(big.Rat).SetString(string(x))
		return ok && r.IsInt() && slices.Contains(types, "integer")
	}
	return slices.Contains(types, want)
}
