package schemas

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas/fastcheck"
	"github.com/xeipuuv/gojsonschema"
)

// gnode is a subschema as gojsonschema compiled it. gojsonschema keeps its
// compiled schema unexported; Load reads it once, by reflection, to know
// exactly what its validation will do: whether it loops without end, and
// where "format": "date-time" applies. gojsonschema is pinned at v1.2.0,
// and TestMirror fails should its layout change.
type gnode struct {
	parent    *gnode
	property  string // gojsonschema's name for it: a keyword or property name
	refURL    string // the URL of the $ref that made it, if one did (its id)
	pass      bool   // a true or false schema: nothing else applies
	types     []string
	format    string
	enumSize  int
	ref       *gnode // a $ref: gojsonschema applies it alone
	allOf     []*gnode
	anyOf     []*gnode
	oneOf     []*gnode
	not       *gnode
	ifThen    [3]*gnode // if, then, else
	deps      map[string]*gnode
	props     []*gnode // each named by its property
	patterns  map[string]*gnode
	extra     *gnode // additionalProperties
	items     []*gnode
	itemsOne  bool // items is one schema, not a tuple
	moreItems *gnode
	contains  *gnode
	names     *gnode // propertyNames

	// Set by newDateCheck.
	sameL, deeperL []*gnode // same() and deeper()
	walkL          []*gnode // sameL but not: what is under not is no date-time
	dt             bool     // "date-time" applies here or below
}

var errMirror = errors.New("cannot read gojsonschema's compiled schema (not v1.2.0?)")

// mirror copies the graph of a compiled schema.
func mirror(s *gojsonschema.Schema) (root *gnode, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("%w: %v", errMirror, r)
		}
	}()
	seen := map[uintptr]*gnode{}
	var conv func(v reflect.Value) *gnode
	// field is the node a *subSchema or interface{} field holds, if any.
	field := func(v reflect.Value, name string) *gnode {
		f := v.FieldByName(name)
		if f.Kind() == reflect.Interface {
			f = f.Elem()
			if f.Kind() != reflect.Pointer {
				return nil // a bool
			}
		}
		return conv(f)
	}
	list := func(v reflect.Value, name string) []*gnode {
		f := v.FieldByName(name)
		out := make([]*gnode, f.Len())
		for i := range out {
			out[i] = conv(f.Index(i))
		}
		return out
	}
	conv = func(p reflect.Value) *gnode {
		if p.IsNil() {
			return nil
		}
		if n, ok := seen[p.Pointer()]; ok {
			return n
		}
		n := &gnode{}
		seen[p.Pointer()] = n
		v := p.Elem()
		n.property = v.FieldByName("property").String()
		n.pass = !v.FieldByName("pass").IsNil()
		ts := v.FieldByName("types").FieldByName("types")
		for i := range ts.Len() {
			n.types = append(n.types, ts.Index(i).String())
		}
		n.format = v.FieldByName("format").String()
		n.enumSize = v.FieldByName("enum").Len()
		// A node a $ref made has its URL as id (its own $ref, if it has
		// one, takes "ref").
		if r := v.FieldByName("id"); !r.IsNil() {
			if u := r.Elem().FieldByName("referenceUrl"); !u.IsNil() {
				u = u.Elem()
				n.refURL = u.FieldByName("Scheme").String() + "://" + u.FieldByName("Path").String() + "#" + u.FieldByName("Fragment").String()
			}
		}
		n.parent = field(v, "parent")
		n.ref = field(v, "refSchema")
		n.allOf, n.anyOf, n.oneOf = list(v, "allOf"), list(v, "anyOf"), list(v, "oneOf")
		n.not = field(v, "not")
		n.ifThen = [3]*gnode{field(v, "_if"), field(v, "_then"), field(v, "_else")}
		deps := v.FieldByName("dependencies")
		for it := deps.MapRange(); it.Next(); {
			if d := it.Value().Elem(); d.Kind() == reflect.Pointer {
				if n.deps == nil {
					n.deps = map[string]*gnode{}
				}
				n.deps[it.Key().String()] = conv(d)
			}
		}
		n.props = list(v, "propertiesChildren")
		pats := v.FieldByName("patternProperties")
		for it := pats.MapRange(); it.Next(); {
			if n.patterns == nil {
				n.patterns = map[string]*gnode{}
			}
			n.patterns[it.Key().String()] = conv(it.Value())
		}
		n.extra = field(v, "additionalProperties")
		n.items = list(v, "itemsChildren")
		n.itemsOne = v.FieldByName("itemsChildrenIsSingleSchema").Bool()
		n.moreItems = field(v, "additionalItems")
		n.contains = field(v, "contains")
		n.names = field(v, "propertyNames")
		return n
	}
	return conv(reflect.ValueOf(s).Elem().FieldByName("rootSchema")), nil
}

// same lists the subschemas gojsonschema applies to the very value n is
// applied to.
func (n *gnode) same() []*gnode {
	if n.ref != nil {
		return []*gnode{n.ref} // gojsonschema returns after a $ref
	}
	out := slices.Concat(n.allOf, n.anyOf, n.oneOf, n.ifThen[:])
	if n.not != nil {
		out = append(out, n.not)
	}
	for _, k := range slices.Sorted(maps.Keys(n.deps)) {
		out = append(out, n.deps[k])
	}
	return slices.DeleteFunc(out, func(c *gnode) bool { return c == nil })
}

// deeper lists the subschemas gojsonschema applies to parts of the value.
func (n *gnode) deeper() []*gnode {
	if n.ref != nil {
		return nil
	}
	out := slices.Concat(n.props, n.items)
	for _, k := range slices.Sorted(maps.Keys(n.patterns)) {
		out = append(out, n.patterns[k])
	}
	out = append(out, n.extra, n.moreItems, n.contains, n.names)
	return slices.DeleteFunc(out, func(c *gnode) bool { return c == nil })
}

// all is every node reachable from root, in a stable order.
func all(root *gnode) []*gnode {
	seen := map[*gnode]bool{root: true}
	out := []*gnode{root}
	for i := 0; i < len(out); i++ {
		for _, c := range append(out[i].same(), out[i].deeper()...) {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// loop finds a cycle of subschemas applied to one value, which would make
// gojsonschema recurse until the stack overflows. Recursion through
// properties or items ends with the record.
func loop(root *gnode) []*gnode {
	const visiting, done = 1, 2
	state := map[*gnode]int{}
	var stack []*gnode
	var visit func(n *gnode) []*gnode
	visit = func(n *gnode) []*gnode {
		switch state[n] {
		case visiting:
			i := slices.Index(stack, n)
			return append(slices.Clone(stack[i:]), n)
		case done:
			return nil
		}
		state[n] = visiting
		stack = append(stack, n)
		for _, c := range n.same() {
			if cyc := visit(c); cyc != nil {
				return cyc
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, n := range all(root) {
		if cyc := visit(n); cyc != nil {
			return cyc
		}
	}
	return nil
}

// where is a node's JSON Pointer, from the $ref that brought it or the
// schema's root; base is the root document's URL, unescaped.
func (n *gnode) where(base string) string {
	var segs []string
	at := "#"
	for c := n; c.parent != nil; c = c.parent {
		p := c.parent
		if p.ref == c && c.refURL != "" {
			at = strings.TrimPrefix(c.refURL, "file:///")
			if u, frag, _ := strings.Cut(c.refURL, "#"); u == base {
				at = "#" + frag
			}
			break
		}
		segs = append(segs, c.segment())
	}
	slices.Reverse(segs)
	if len(segs) == 0 {
		return at
	}
	return strings.TrimSuffix(at, "/") + "/" + strings.Join(segs, "/")
}

// segment is where n sits in its parent.
func (n *gnode) segment() string {
	p := n.parent
	index := func(kw string, list []*gnode) string {
		if i := slices.Index(list, n); i >= 0 {
			return kw + "/" + strconv.Itoa(i)
		}
		return ""
	}
	for _, s := range []string{index("allOf", p.allOf), index("anyOf", p.anyOf), index("oneOf", p.oneOf)} {
		if s != "" {
			return s
		}
	}
	switch n {
	case p.not:
		return "not"
	case p.ifThen[0]:
		return "if"
	case p.ifThen[1]:
		return "then"
	case p.ifThen[2]:
		return "else"
	case p.extra:
		return "additionalProperties"
	case p.moreItems:
		return "additionalItems"
	case p.contains:
		return "contains"
	case p.names:
		return "propertyNames"
	}
	if slices.Contains(p.props, n) {
		return "properties/" + escape(n.property)
	}
	if i := slices.Index(p.items, n); i >= 0 {
		if p.itemsOne {
			return "items"
		}
		return "items/" + strconv.Itoa(i)
	}
	for k, c := range p.patterns {
		if c == n {
			return "patternProperties/" + escape(k)
		}
	}
	for k, c := range p.deps {
		if c == n {
			return "dependencies/" + escape(k)
		}
	}
	return escape(n.property)
}

// dateCheck finds the strings of a record that "format": "date-time"
// applies to, and checks that the databases can store them.
type dateCheck struct {
	root *gnode
	res  map[string]*regexp.Regexp // patternProperties, compiled once
}

// newDateCheck returns nil when no "date-time" applies but through the
// top-level property skip (the type's time, which eventTime checks). The
// schema must have no loop.
func newDateCheck(root *gnode, skip string) *dateCheck {
	nodes := all(root)
	for _, n := range nodes {
		n.sameL, n.deeperL = n.same(), n.deeper()
		n.walkL = slices.DeleteFunc(slices.Clone(n.sameL), func(c *gnode) bool { return c == n.not })
	}
	// dt spreads from each date-time to the nodes that reach it.
	for changed := true; changed; {
		changed = false
		for _, n := range nodes {
			if n.dt {
				continue
			}
			n.dt = n.format == "date-time" && !n.pass
			for _, c := range slices.Concat(n.walkL, n.deeperL) {
				n.dt = n.dt || c.dt && c != n.names // names are no values
			}
			changed = changed || n.dt
		}
	}
	if !root.dt || skip != "" && onlyThrough(root, skip) {
		return nil
	}
	dc := &dateCheck{root: root, res: map[string]*regexp.Regexp{}}
	for _, n := range nodes {
		for p := range n.patterns {
			if re, err := regexp.Compile(p); err == nil { // as gojsonschema
				dc.res[p] = re
			}
		}
	}
	return dc
}

// onlyThrough reports whether every date-time root leads to is in its
// property name.
func onlyThrough(root *gnode, name string) bool {
	n := root
	for n.ref != nil {
		n = n.ref
	}
	if n.format == "date-time" {
		return false
	}
	for _, c := range slices.Concat(n.walkL, n.deeperL) {
		if c.dt && c != n.names && !(slices.Contains(n.props, c) && c.property == name) {
			return false
		}
	}
	return true
}

// check adds an error for each date-time of v the databases cannot store.
// It may look at more than gojsonschema applies (every branch of an anyOf,
// say): a date-time out of range is refused wherever one may stand.
func (dc *dateCheck) check(v any, skip string, errs []plugins.FieldError) []plugins.FieldError {
	dc.walk(dc.root, v, nil, skip, &errs)
	return errs
}

func (dc *dateCheck) walk(n *gnode, v any, path []string, skip string, errs *[]plugins.FieldError) {
	if !n.dt || n.pass {
		return
	}
	if n.ref != nil {
		dc.walk(n.ref, v, path, skip, errs)
		return
	}
	if !fastcheck.Allows(n.types, v) {
		return // gojsonschema stops at a type error
	}
	if s, ok := v.(string); ok && n.format == "date-time" && !(len(path) == 1 && path[0] == skip) {
		if err := storableTime(s); err != nil {
			fe := fieldError(path, err.Error())
			if !slices.Contains(*errs, fe) {
				*errs = append(*errs, fe)
			}
		}
	}
	for _, c := range n.walkL {
		dc.walk(c, v, path, skip, errs)
	}
	path = path[:len(path):len(path)]
	switch x := v.(type) {
	case map[string]any:
		for _, c := range n.props {
			if e, ok := x[c.property]; ok && c.dt {
				dc.walk(c, e, append(path, c.property), skip, errs)
			}
		}
		if len(n.patterns) == 0 && (n.extra == nil || !n.extra.dt) {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			matched := false
			for p, c := range n.patterns {
				if re := dc.res[p]; re != nil && re.MatchString(k) {
					matched = true
					dc.walk(c, x[k], append(path, k), skip, errs)
				}
			}
			if !matched && n.extra != nil && !slices.ContainsFunc(n.props, func(c *gnode) bool { return c.property == k }) {
				dc.walk(n.extra, x[k], append(path, k), skip, errs)
			}
		}
	case []any:
		for i, e := range x {
			at := append(path, strconv.Itoa(i))
			switch {
			case n.itemsOne && len(n.items) == 1:
				dc.walk(n.items[0], e, at, skip, errs)
			case i < len(n.items):
				dc.walk(n.items[i], e, at, skip, errs)
			case n.moreItems != nil:
				dc.walk(n.moreItems, e, at, skip, errs)
			}
			if n.contains != nil {
				dc.walk(n.contains, e, at, skip, errs)
			}
		}
	}
}
