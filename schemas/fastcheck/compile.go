package fastcheck

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
)

var errUnsupported = errors.New("outside the fast checker's subset")

// Compile compiles a record schema document, decoded with UseNumber, that
// gojsonschema compiled from file with the draft its $schema names (draft-07
// without one). It returns nil, and gojsonschema must judge every record,
// when the schema uses anything whose gojsonschema semantics it does not
// mirror.
func Compile(doc map[string]any, file string) *Checker {
	draft, ok := detectDraft(doc)
	if !ok {
		return nil
	}
	c := &compiler{root: doc, draft: draft, refs: map[string]*node{}}
	// gojsonschema resolves "#..." refs against $id scopes and the file's
	// URL; without either quirk they all point into this document.
	c.refsOK = simpleName(file) && !hasID(doc)
	n, err := c.schema(doc)
	if err != nil || !descends(n) {
		return nil
	}
	return &Checker{root: n}
}

// detectDraft reads the draft as gojsonschema knows its URL, which the
// schemas package writes in place of any spelling it accepts. Anything else
// is left to gojsonschema.
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

type compiler struct {
	root   map[string]any
	draft  int
	refsOK bool
	refs   map[string]*node // by ref text, so recursive refs close up
}

// unsupportedKeys are gojsonschema keywords whose rules need an exact
// verdict both ways, or whose forms are not mirrored here.
var unsupportedKeys = []string{"oneOf", "not"}

func (c *compiler) schema(v any) (*node, error) {
	if b, ok := v.(bool); ok {
		if c.draft < 6 {
			return nil, errUnsupported
		}
		return &node{always: b, never: !b}, nil
	}
	m, ok := v.(map[string]any)
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
	n := &node{}
	var err error
	if n.types, err = types(m); err != nil {
		return nil, err
	}
	if n.obj, err = c.object(m); err != nil {
		return nil, err
	}
	if n.arr, err = c.array(m); err != nil {
		return nil, err
	}
	if n.str, err = str(m); err != nil {
		return nil, err
	}
	if n.num, err = c.number(m); err != nil {
		return nil, err
	}
	if err := formats(n, m); err != nil {
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
		subs := make([]*node, 0, len(list))
		for _, e := range list {
			s, err := c.schema(e)
			if err != nil {
				return nil, err
			}
			subs = append(subs, s)
		}
		if k == "allOf" {
			n.allOf = subs
		} else {
			n.anyOf = subs
		}
	}
	if v, ok := m["const"]; ok && c.draft >= 6 {
		if n.constVal, err = canonicalValue(v); err != nil {
			return nil, errUnsupported
		}
		n.hasConst = true
	}
	if v, ok := m["enum"]; ok {
		list, ok := v.([]any)
		if !ok {
			return nil, errUnsupported
		}
		if n.enum, err = newEnumSet(list); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ref resolves "#" or "#/a/b" in the root document. Pointers with escapes,
// percent signs or array indexes are left to gojsonschema.
func (c *compiler) ref(v any) (*node, error) {
	s, ok := v.(string)
	if !ok || !c.refsOK || !strings.HasPrefix(s, "#") {
		return nil, errUnsupported
	}
	if n, ok := c.refs[s]; ok {
		return n, nil
	}
	var target any = c.root
	if ptr := s[1:]; ptr != "" {
		if !strings.HasPrefix(ptr, "/") {
			return nil, errUnsupported
		}
		for _, tok := range strings.Split(ptr[1:], "/") {
			if strings.Trim(tok, ".") == "" || !simpleName(strings.ReplaceAll(tok, "$", "")) {
				return nil, errUnsupported
			}
			m, ok := target.(map[string]any)
			if !ok {
				return nil, errUnsupported
			}
			if target, ok = m[tok]; !ok {
				return nil, errUnsupported
			}
		}
	}
	n := &node{}
	c.refs[s] = n // before compiling: the target may refer back
	t, err := c.schema(target)
	if err != nil {
		return nil, err
	}
	n.ref = t
	return n, nil
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

func (c *compiler) object(m map[string]any) (*objectRules, error) {
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

func (c *compiler) array(m map[string]any) (*arrayRules, error) {
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

// descends reports whether every cycle of refs goes through a property or
// an item: a loop that stays on one value never ends, in either validator.
func descends(root *node) bool {
	// same lists the schemas applied to the very value n is applied to.
	same := func(n *node) []*node {
		out := append(append([]*node{}, n.allOf...), n.anyOf...)
		if n.ref != nil {
			out = append(out, n.ref)
		}
		if n.obj != nil {
			for _, d := range n.obj.deps {
				out = append(out, d.s)
			}
		}
		return out
	}
	// deeper lists the schemas applied to parts of it.
	deeper := func(n *node) []*node {
		var out []*node
		if o := n.obj; o != nil {
			for _, p := range o.props {
				out = append(out, p.s)
			}
			for _, p := range o.patterns {
				out = append(out, p.s)
			}
			out = append(out, o.extra, o.propertyNames)
		}
		if a := n.arr; a != nil {
			out = append(out, a.items, a.contains)
		}
		return out
	}
	const visiting, done = 1, 2
	state := map[*node]int{}
	var loops func(n *node) bool // a same-value cycle through n
	loops = func(n *node) bool {
		switch state[n] {
		case visiting:
			return true
		case done:
			return false
		}
		state[n] = visiting
		for _, g := range same(n) {
			if g != nil && loops(g) {
				return true
			}
		}
		state[n] = done
		return false
	}
	seen := map[*node]bool{}
	var all func(n *node) bool
	all = func(n *node) bool {
		if n == nil || seen[n] {
			return true
		}
		seen[n] = true
		if loops(n) {
			return false
		}
		for _, g := range append(same(n), deeper(n)...) {
			if !all(g) {
				return false
			}
		}
		return true
	}
	return all(root)
}
