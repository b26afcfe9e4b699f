package schemas

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xeipuuv/gojsonschema"
)

// fast is a record schema compiled for the common case of a valid record.
// valid answers true only where gojsonschema v1.2.0 would report no error,
// so a true skips gojsonschema; false only means "ask gojsonschema", which
// stays the judge of invalid records and words their errors. Every rule
// below mirrors gojsonschema's own code (validation.go, schema.go), quirks
// included, not the JSON Schema specification.
type fast struct {
	always, never bool  // draft-06+ true and false schemas
	ref           *fast // a $ref; gojsonschema ignores its siblings
	types         uint8 // 0: any type
	obj           *objectRules
	arr           *arrayRules
	str           *stringRules
	num           *numberRules
	allOf, anyOf  []*fast
	strFormat     func(string) bool
	numFormat     func(*big.Rat) bool
	hasConst      bool
	constVal      any   // as encoding/json decodes gojsonschema's text
	enum          []any // likewise
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
	extra         *fast // additionalProperties as a schema
	patterns      []patternProp
	propertyNames *fast
	minProps      int // -1: none
	maxProps      int
	deps          []dependency
}

type prop struct {
	name string
	s    *fast
}

type patternProp struct {
	re *regexp.Regexp
	s  *fast
}

type dependency struct {
	key   string
	needs []string
	s     *fast
}

type arrayRules struct {
	items              *fast
	minItems, maxItems int // -1: none
	unique             bool
	contains           *fast
}

type stringRules struct {
	minLen, maxLen int // -1: none
	pattern        *regexp.Regexp
}

type numberRules struct {
	min, max, xmin, xmax *bound
	multipleOf           *bound
}

// bound is a schema number, with its int64 form when it has one so that
// plain integer values compare without big.Rat.
type bound struct {
	r     *big.Rat
	i     int64
	isInt bool
}

// valid reports whether gojsonschema would surely accept v, a value as
// parse makes it.
func (f *fast) valid(v any) bool {
	if f.always {
		return true
	}
	if f.never {
		return false
	}
	if f.ref != nil {
		return f.ref.valid(v)
	}
	switch x := v.(type) {
	case nil:
		if !f.allows(tNull) {
			return false
		}
	case bool:
		if !f.allows(tBoolean) {
			return false
		}
	case string:
		if !f.allows(tString) || f.str != nil && !f.str.valid(x) || f.strFormat != nil && !f.strFormat(x) {
			return false
		}
	case json.Number:
		if !f.number(x) {
			return false
		}
	case []any:
		if !f.allows(tArray) || f.arr != nil && !f.arr.valid(x) {
			return false
		}
	case map[string]any:
		if !f.allows(tObject) || f.obj != nil && !f.obj.valid(x) {
			return false
		}
	default:
		return false // parse makes nothing else
	}
	for _, s := range f.allOf {
		if !s.valid(v) {
			return false
		}
	}
	if len(f.anyOf) > 0 {
		ok := false
		for _, s := range f.anyOf {
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
	if f.hasConst && !sameCanonical(f.constVal, v) {
		return false
	}
	if len(f.enum) > 0 {
		for _, e := range f.enum {
			if sameCanonical(e, v) {
				return true
			}
		}
		return false
	}
	return true
}

func (f *fast) allows(t uint8) bool { return f.types == 0 || f.types&t != 0 }

func (f *fast) number(n json.Number) bool {
	s := string(n)
	// gojsonschema's dependencies check takes the kind of any value, a
	// number's through big.Rat, and panics where big.Rat fails.
	if f.obj != nil && len(f.obj.deps) > 0 && !plainInt(s) {
		if _, ok := new(big.Rat).SetString(s); !ok {
			return false
		}
	}
	if f.types != 0 && f.types&tNumber == 0 {
		if f.types&tInteger == 0 || !isInteger(s) {
			return false
		}
	}
	if f.num != nil && !f.num.valid(s) {
		return false
	}
	if f.numFormat != nil {
		r, _ := new(big.Rat).SetString(s) // nil when too big, as in gojsonschema
		return f.numFormat(r)
	}
	return true
}

// isInteger is gojsonschema's test: big.Rat parses it and it is whole,
// so 1.0 and 1e2 are integers and 1e1000001 (too big for big.Rat) is not.
func isInteger(s string) bool {
	if plainInt(s) {
		return true
	}
	r, ok := new(big.Rat).SetString(s)
	return ok && r.IsInt()
}

// plainInt reports an optional minus and digits only.
func plainInt(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (nr *numberRules) valid(s string) bool {
	var i int64
	isInt := false
	if plainInt(s) {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			i, isInt = v, true
		}
	}
	var r *big.Rat
	rat := func() bool {
		if r == nil {
			var ok bool
			// Where big.Rat fails, gojsonschema goes on with a nil *big.Rat
			// and panics.
			r, ok = new(big.Rat).SetString(s)
			return ok
		}
		return true
	}
	// cmp is v against b: -1, 0 or +1; false when v is beyond big.Rat.
	cmp := func(b *bound) (int, bool) {
		if isInt && b.isInt {
			switch {
			case i < b.i:
				return -1, true
			case i > b.i:
				return 1, true
			}
			return 0, true
		}
		if !rat() {
			return 0, false
		}
		return r.Cmp(b.r), true
	}
	if b := nr.max; b != nil {
		if c, ok := cmp(b); !ok || c > 0 {
			return false
		}
	}
	if b := nr.xmax; b != nil {
		if c, ok := cmp(b); !ok || c >= 0 {
			return false
		}
	}
	if b := nr.min; b != nil {
		if c, ok := cmp(b); !ok || c < 0 {
			return false
		}
	}
	if b := nr.xmin; b != nil {
		if c, ok := cmp(b); !ok || c <= 0 {
			return false
		}
	}
	if b := nr.multipleOf; b != nil {
		if isInt && b.isInt {
			return i%b.i == 0
		}
		return rat() && new(big.Rat).Quo(r, b.r).IsInt()
	}
	return true
}

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

// wild finds a number gojsonschema chokes on anywhere in v: one big.Rat
// cannot hold (bounds then meet a nil *big.Rat) or float64 cannot (enum and
// const then meet a nil string). Either panics, so where gojsonschema
// stops at the first passing schema (anyOf, contains), the fast path may
// skip a failing one only for a tame value.
func wild(v any) bool {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !jsonNumber(s) {
			return true
		}
		if plainInt(s) && len(s) < 300 {
			return false // within float64 and big.Rat
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return true
		}
		_, ok := new(big.Rat).SetString(s)
		return !ok
	case []any:
		for _, e := range x {
			if wild(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if wild(e) {
				return true
			}
		}
	}
	return false
}

// sameCanonical reports whether v, a parsed value, is c once both go through
// gojsonschema's enum and const comparison: JSON text of the value decoded
// by encoding/json into float64s. Floats compare by bits, as their texts
// do: "-0" is not "0". Strings compare exactly, which is stricter than the
// texts (invalid UTF-8 turns into U+FFFD): stricter only costs a fallback.
func sameCanonical(c, v any) bool {
	switch cv := c.(type) {
	case nil:
		return v == nil
	case bool:
		b, ok := v.(bool)
		return ok && b == cv
	case string:
		s, ok := v.(string)
		return ok && s == cv
	case float64:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		// json.Marshal refuses a number that is not JSON, and gojsonschema
		// then panics: parse takes 01 or +1 from a record nobody checked.
		if !jsonNumber(string(n)) {
			return false
		}
		f, err := strconv.ParseFloat(string(n), 64) // what encoding/json does
		return err == nil && math.Float64bits(f) == math.Float64bits(cv)
	case []any:
		a, ok := v.([]any)
		if !ok || len(a) != len(cv) {
			return false
		}
		for i := range cv {
			if !sameCanonical(cv[i], a[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok || len(m) != len(cv) {
			return false
		}
		for k, ce := range cv {
			e, ok := m[k]
			if !ok || !sameCanonical(ce, e) {
				return false
			}
		}
		return true
	}
	return false
}

// jsonNumber reports whether s is a number in JSON's grammar.
func jsonNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// canonicalText is gojsonschema's marshalWithoutNumber: the JSON text of v
// after a round trip through float64s.
func canonicalText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var d any
	if err := json.Unmarshal(b, &d); err != nil {
		return "", err
	}
	b, err = json.Marshal(d)
	return string(b), err
}

// canonicalValue decodes a schema's enum or const member the way its
// comparison text is made, checking that the text comes back unchanged.
func canonicalValue(v any) (any, error) {
	text, err := canonicalText(v)
	if err != nil {
		return nil, err
	}
	var d any
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		return nil, err
	}
	if back, err := json.Marshal(d); err != nil || string(back) != text {
		return nil, errUnsupported
	}
	return d, nil
}

var errUnsupported = errors.New("outside the fast validator's subset")

// compileFast compiles a record schema document, as Load read it, for the
// fast path. It returns nil, and gojsonschema validates every record, when
// the schema uses anything whose gojsonschema semantics it does not mirror.
// It must run only on a document gojsonschema compiled.
func compileFast(doc map[string]any, file string) *fast {
	draft, ok := detectDraft(doc)
	if !ok {
		return nil
	}
	c := &fastCompiler{root: doc, draft: draft, refs: map[string]*fast{}}
	// gojsonschema resolves "#..." refs against $id scopes and the file's
	// URL; without either quirk they all point into this document.
	c.refsOK = simpleName(file) && !hasID(doc)
	f, err := c.schema(doc)
	if err != nil || !descends(f) {
		return nil
	}
	return f
}

// detectDraft mirrors gojsonschema's detection with carpipe's loader
// settings (Draft7, AutoDetect): a known meta-schema URL picks the draft,
// anything else is draft-07. Unusual spellings are left to gojsonschema.
func detectDraft(doc map[string]any) (int, bool) {
	v, ok := doc["$schema"]
	if !ok {
		return 7, true
	}
	s, _ := v.(string)
	switch strings.TrimSuffix(s, "#") {
	case "http://json-schema.org/draft-04/schema":
		return 4, true
	case "http://json-schema.org/draft-06/schema":
		return 6, true
	case "http://json-schema.org/draft-07/schema", "https://json-schema.org/draft-07/schema":
		return 7, true
	}
	return 0, false
}

func simpleName(file string) bool {
	for _, r := range file {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// hasID finds any string "id" or "$id" member, wherever it is.
func hasID(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if _, isStr := e.(string); isStr && (k == "id" || k == "$id") {
				return true
			}
			if hasID(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasID(e) {
				return true
			}
		}
	}
	return false
}

type fastCompiler struct {
	root   map[string]any
	draft  int
	refsOK bool
	refs   map[string]*fast // by ref text, so recursive refs close up
}

// unsupportedKeys are gojsonschema keywords whose rules need an exact
// verdict both ways, or whose forms are not mirrored here.
var unsupportedKeys = []string{"oneOf", "not"}

func (c *fastCompiler) schema(node any) (*fast, error) {
	if b, ok := node.(bool); ok {
		if c.draft < 6 {
			return nil, errUnsupported
		}
		return &fast{always: b, never: !b}, nil
	}
	m, ok := node.(map[string]any)
	if !ok {
		return nil, errUnsupported
	}
	if r, ok := m["$ref"]; ok {
		return c.ref(r)
	}
	for _, k := range unsupportedKeys {
		if _, ok := m[k]; ok {
			return nil, errUnsupported
		}
	}
	if c.draft >= 7 {
		for _, k := range []string{"if", "then", "else"} {
			if _, ok := m[k]; ok {
				return nil, errUnsupported
			}
		}
	}
	f := &fast{}
	var err error
	if f.types, err = types(m); err != nil {
		return nil, err
	}
	if f.obj, err = c.object(m); err != nil {
		return nil, err
	}
	if f.arr, err = c.array(m); err != nil {
		return nil, err
	}
	if f.str, err = str(m); err != nil {
		return nil, err
	}
	if f.num, err = c.number(m); err != nil {
		return nil, err
	}
	if err := c.formats(f, m); err != nil {
		return nil, err
	}
	for _, k := range []string{"allOf", "anyOf"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			return nil, errUnsupported
		}
		subs := make([]*fast, 0, len(list))
		for _, e := range list {
			s, err := c.schema(e)
			if err != nil {
				return nil, err
			}
			subs = append(subs, s)
		}
		if k == "allOf" {
			f.allOf = subs
		} else {
			f.anyOf = subs
		}
	}
	if v, ok := m["const"]; ok && c.draft >= 6 {
		if f.constVal, err = canonicalValue(v); err != nil {
			return nil, errUnsupported
		}
		f.hasConst = true
	}
	if v, ok := m["enum"]; ok {
		list, ok := v.([]any)
		if !ok {
			return nil, errUnsupported
		}
		for _, e := range list {
			cv, err := canonicalValue(e)
			if err != nil {
				return nil, errUnsupported
			}
			f.enum = append(f.enum, cv)
		}
	}
	return f, nil
}

// ref resolves "#" or "#/a/b" in the root document. Pointers with escapes,
// percent signs or array indexes are left to gojsonschema.
func (c *fastCompiler) ref(v any) (*fast, error) {
	s, ok := v.(string)
	if !ok || !c.refsOK || !strings.HasPrefix(s, "#") {
		return nil, errUnsupported
	}
	if f, ok := c.refs[s]; ok {
		return f, nil
	}
	var node any = c.root
	if ptr := s[1:]; ptr != "" {
		if !strings.HasPrefix(ptr, "/") {
			return nil, errUnsupported
		}
		for _, tok := range strings.Split(ptr[1:], "/") {
			if strings.Trim(tok, ".") == "" || !simpleName(strings.ReplaceAll(tok, "$", "")) {
				return nil, errUnsupported
			}
			m, ok := node.(map[string]any)
			if !ok {
				return nil, errUnsupported
			}
			if node, ok = m[tok]; !ok {
				return nil, errUnsupported
			}
		}
	}
	f := &fast{}
	c.refs[s] = f // before compiling: the target may refer back
	target, err := c.schema(node)
	if err != nil {
		return nil, err
	}
	f.ref = target
	return f, nil
}

func types(m map[string]any) (uint8, error) {
	v, ok := m["type"]
	if !ok {
		return 0, nil
	}
	var names []any
	switch x := v.(type) {
	case string:
		names = []any{x}
	case []any:
		names = x
	default:
		return 0, errUnsupported
	}
	var t uint8
	for _, n := range names {
		s, _ := n.(string)
		bit, ok := typeBits[s]
		if !ok {
			return 0, errUnsupported
		}
		t |= bit
	}
	return t, nil
}

func (c *fastCompiler) object(m map[string]any) (*objectRules, error) {
	or := &objectRules{minProps: -1, maxProps: -1}
	used := false
	if v, ok := m["properties"]; ok {
		props, ok := v.(map[string]any)
		if !ok {
			return nil, errUnsupported
		}
		or.named = make(map[string]bool, len(props))
		for name, ps := range props {
			s, err := c.schema(ps)
			if err != nil {
				return nil, err
			}
			or.props = append(or.props, prop{name, s})
			or.named[name] = true
		}
		used = true
	}
	if v, ok := m["required"]; ok {
		list, ok := v.([]any)
		if !ok {
			return nil, errUnsupported
		}
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				return nil, errUnsupported
			}
			or.required = append(or.required, s)
		}
		used = true
	}
	if v, ok := m["additionalProperties"]; ok {
		switch x := v.(type) {
		case bool:
			or.noExtra = !x
		case map[string]any:
			s, err := c.schema(x)
			if err != nil {
				return nil, err
			}
			or.extra = s
		default:
			return nil, errUnsupported
		}
		used = true
	}
	if v, ok := m["patternProperties"]; ok {
		pats, ok := v.(map[string]any)
		if !ok {
			return nil, errUnsupported
		}
		for p, ps := range pats {
			re, err := regexp.Compile(p) // as gojsonschema's regexp.MatchString
			if err != nil {
				return nil, errUnsupported
			}
			s, err := c.schema(ps)
			if err != nil {
				return nil, err
			}
			or.patterns = append(or.patterns, patternProp{re, s})
		}
		used = true
	}
	if v, ok := m["propertyNames"]; ok && c.draft >= 6 {
		s, err := c.schema(v)
		if err != nil {
			return nil, err
		}
		or.propertyNames = s
		used = true
	}
	var err error
	if or.minProps, err = count(m, "minProperties"); err != nil {
		return nil, err
	}
	if or.maxProps, err = count(m, "maxProperties"); err != nil {
		return nil, err
	}
	used = used || or.minProps >= 0 || or.maxProps >= 0
	if v, ok := m["dependencies"]; ok {
		deps, ok := v.(map[string]any)
		if !ok {
			return nil, errUnsupported
		}
		for k, d := range deps {
			dep := dependency{key: k}
			if list, ok := d.([]any); ok {
				for _, e := range list {
					s, ok := e.(string)
					if !ok {
						return nil, errUnsupported
					}
					dep.needs = append(dep.needs, s)
				}
			} else if dep.s, err = c.schema(d); err != nil {
				return nil, err
			}
			or.deps = append(or.deps, dep)
		}
		used = true
	}
	if !used {
		return nil, nil
	}
	return or, nil
}

func (c *fastCompiler) array(m map[string]any) (*arrayRules, error) {
	ar := &arrayRules{minItems: -1, maxItems: -1}
	used := false
	if v, ok := m["items"]; ok {
		if _, tuple := v.([]any); tuple {
			return nil, errUnsupported
		}
		s, err := c.schema(v)
		if err != nil {
			return nil, err
		}
		ar.items = s
		used = true
	}
	var err error
	if ar.minItems, err = count(m, "minItems"); err != nil {
		return nil, err
	}
	if ar.maxItems, err = count(m, "maxItems"); err != nil {
		return nil, err
	}
	if v, ok := m["uniqueItems"]; ok {
		b, ok := v.(bool)
		if !ok {
			return nil, errUnsupported
		}
		ar.unique = b
	}
	if v, ok := m["contains"]; ok && c.draft >= 6 {
		s, err := c.schema(v)
		if err != nil {
			return nil, err
		}
		ar.contains = s
		used = true
	}
	if !used && !ar.unique && ar.minItems < 0 && ar.maxItems < 0 {
		return nil, nil
	}
	return ar, nil
}

func str(m map[string]any) (*stringRules, error) {
	sr := &stringRules{}
	var err error
	if sr.minLen, err = count(m, "minLength"); err != nil {
		return nil, err
	}
	if sr.maxLen, err = count(m, "maxLength"); err != nil {
		return nil, err
	}
	if v, ok := m["pattern"]; ok {
		p, ok := v.(string)
		if !ok {
			return nil, errUnsupported
		}
		if sr.pattern, err = regexp.Compile(p); err != nil { // as gojsonschema
			return nil, errUnsupported
		}
	}
	if sr.minLen < 0 && sr.maxLen < 0 && sr.pattern == nil {
		return nil, nil
	}
	return sr, nil
}

// count reads a non-negative integer keyword as gojsonschema's
// mustBeInteger does; -1 when absent.
func count(m map[string]any, key string) (int, error) {
	v, ok := m[key]
	if !ok {
		return -1, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, errUnsupported
	}
	i, err := n.Int64()
	if err != nil || i < 0 {
		return 0, errUnsupported
	}
	return int(i), nil
}

func (c *fastCompiler) number(m map[string]any) (*numberRules, error) {
	nr := &numberRules{}
	var err error
	if nr.multipleOf, err = numberKey(m, "multipleOf"); err != nil {
		return nil, err
	}
	if nr.multipleOf != nil && nr.multipleOf.r.Sign() <= 0 {
		return nil, errUnsupported
	}
	if nr.min, err = numberKey(m, "minimum"); err != nil {
		return nil, err
	}
	if nr.max, err = numberKey(m, "maximum"); err != nil {
		return nil, err
	}
	// Draft-04 booleans turn minimum and maximum exclusive; later drafts
	// take numbers of their own.
	for _, k := range []string{"exclusiveMinimum", "exclusiveMaximum"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		inclusive, exclusive := &nr.min, &nr.xmin
		if k == "exclusiveMaximum" {
			inclusive, exclusive = &nr.max, &nr.xmax
		}
		if c.draft == 4 {
			b, ok := v.(bool)
			if !ok || *inclusive == nil {
				return nil, errUnsupported
			}
			if b {
				*exclusive, *inclusive = *inclusive, nil
			}
			continue
		}
		if *exclusive, err = numberKey(m, k); err != nil {
			return nil, err
		}
	}
	if nr.multipleOf == nil && nr.min == nil && nr.max == nil && nr.xmin == nil && nr.xmax == nil {
		return nil, nil
	}
	return nr, nil
}

func numberKey(m map[string]any, key string) (*bound, error) {
	v, ok := m[key]
	if !ok {
		return nil, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return nil, errUnsupported
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return nil, errUnsupported
	}
	b := &bound{r: r}
	if r.IsInt() && r.Num().IsInt64() {
		b.i, b.isInt = r.Num().Int64(), true
	}
	return b, nil
}

// formats adds "format": gojsonschema checks strings, and numbers as a
// *big.Rat, against FormatCheckers; an unknown format passes.
func (c *fastCompiler) formats(f *fast, m map[string]any) error {
	v, ok := m["format"]
	if !ok {
		return nil
	}
	name, ok := v.(string)
	if !ok {
		return errUnsupported
	}
	if name == "date-time" {
		// Ours, registered in init: calling it skips the chain's lock, and
		// it passes anything but strings.
		f.strFormat = func(s string) bool { return dateTime{}.IsFormat(s) }
		return nil
	}
	f.strFormat = func(s string) bool { return gojsonschema.FormatCheckers.IsFormat(name, s) }
	f.numFormat = func(r *big.Rat) bool { return gojsonschema.FormatCheckers.IsFormat(name, r) }
	return nil
}

// descends reports whether every cycle of refs goes through a property or
// an item: a loop that stays on one value never ends, in either validator.
func descends(root *fast) bool {
	// same lists the schemas applied to the very value f is applied to.
	same := func(f *fast) []*fast {
		out := append(append([]*fast{}, f.allOf...), f.anyOf...)
		if f.ref != nil {
			out = append(out, f.ref)
		}
		if f.obj != nil {
			for _, d := range f.obj.deps {
				out = append(out, d.s)
			}
		}
		return out
	}
	// deeper lists the schemas applied to parts of it.
	deeper := func(f *fast) []*fast {
		var out []*fast
		if o := f.obj; o != nil {
			for _, p := range o.props {
				out = append(out, p.s)
			}
			for _, p := range o.patterns {
				out = append(out, p.s)
			}
			out = append(out, o.extra, o.propertyNames)
		}
		if a := f.arr; a != nil {
			out = append(out, a.items, a.contains)
		}
		return out
	}
	const visiting, done = 1, 2
	state := map[*fast]int{}
	var loops func(f *fast) bool // a same-value cycle through f
	loops = func(f *fast) bool {
		switch state[f] {
		case visiting:
			return true
		case done:
			return false
		}
		state[f] = visiting
		for _, g := range same(f) {
			if g != nil && loops(g) {
				return true
			}
		}
		state[f] = done
		return false
	}
	seen := map[*fast]bool{}
	var all func(f *fast) bool
	all = func(f *fast) bool {
		if f == nil || seen[f] {
			return true
		}
		seen[f] = true
		if loops(f) {
			return false
		}
		for _, g := range append(same(f), deeper(f)...) {
			if !all(g) {
				return false
			}
		}
		return true
	}
	return all(root)
}
