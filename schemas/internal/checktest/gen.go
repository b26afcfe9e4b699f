package checktest

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand"
	"sort"
	"strings"
)

// Gen makes records for a schema: mostly what it asks for, near its
// bounds and in unusual spellings, with mistakes now and then.
type Gen struct {
	r    *rand.Rand
	root any
}

// NewGen makes records for the schema document root, as ReadDoc reads it;
// a nil root makes only values of any type.
func NewGen(seed int64, root any) *Gen {
	return &Gen{r: rand.New(rand.NewSource(seed)), root: root}
}

// Record is a record for the whole schema.
func (g *Gen) Record() any { return g.value(g.root, 0) }

// Any is a random value of any type.
func (g *Gen) Any() any { return g.any(0) }

func (g *Gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *Gen) pick(list []string) string { return list[g.r.Intn(len(list))] }

func (g *Gen) value(schema any, depth int) any {
	if depth > 6 || g.chance(0.04) {
		return g.any(depth)
	}
	m, ok := schema.(map[string]any)
	if !ok {
		return g.any(depth)
	}
	if ref, ok := m["$ref"].(string); ok {
		return g.value(g.resolve(ref), depth+1)
	}
	if ex, ok := m["examples"].([]any); ok && g.chance(0.4) {
		return g.spell(ex[g.r.Intn(len(ex))])
	}
	if e, ok := m["enum"].([]any); ok && len(e) > 0 && g.chance(0.8) {
		return g.spell(e[g.r.Intn(len(e))])
	}
	if c, ok := m["const"]; ok && g.chance(0.8) {
		return g.spell(c)
	}
	for _, k := range []string{"allOf", "anyOf"} {
		if l, ok := m[k].([]any); ok && len(l) > 0 && g.chance(0.5) {
			return g.value(l[g.r.Intn(len(l))], depth+1)
		}
	}
	switch g.typeOf(m) {
	case "null":
		return nil
	case "boolean":
		return g.chance(0.5)
	case "string":
		return g.string(m)
	case "integer":
		return g.number(m, true)
	case "number":
		return g.number(m, false)
	case "array":
		return g.array(m, depth)
	case "object":
		return g.object(m, depth)
	}
	return g.any(depth)
}

func (g *Gen) resolve(ref string) any {
	var node any = g.root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
		if m, ok := node.(map[string]any); ok {
			node = m[tok]
		}
	}
	return node
}

func (g *Gen) typeOf(m map[string]any) string {
	switch t := m["type"].(type) {
	case string:
		return t
	case []any:
		if len(t) > 0 {
			s, _ := t[g.r.Intn(len(t))].(string)
			return s
		}
	}
	var guesses []string
	for k, ty := range map[string]string{
		"properties": "object", "required": "object", "additionalProperties": "object", "patternProperties": "object",
		"propertyNames": "object", "dependencies": "object", "minProperties": "object",
		"items": "array", "minItems": "array", "maxItems": "array", "uniqueItems": "array", "contains": "array",
		"minLength": "string", "maxLength": "string", "pattern": "string", "format": "string",
		"minimum": "number", "maximum": "number", "exclusiveMinimum": "number", "exclusiveMaximum": "number", "multipleOf": "number",
	} {
		if _, ok := m[k]; ok {
			guesses = append(guesses, ty)
		}
	}
	sort.Strings(guesses)
	if len(guesses) > 0 {
		return g.pick(guesses)
	}
	return g.pick([]string{"null", "boolean", "string", "integer", "number", "array", "object"})
}

var runes = []string{"a", "b", "z", "-", "1", "9", " ", "é", "€", "𝄞", "\u2028", "<", "\"", "\\", "\x00"}

func (g *Gen) string(m map[string]any) string {
	if f, _ := m["format"].(string); f == "date-time" && g.chance(0.8) {
		return g.pick([]string{
			"2020-01-01T00:00:00Z", "2020-09-13T12:26:40.5+02:00", "1999-12-31T23:59:59.999999999-00:30",
			"2020-01-01", "2020-01-01T25:00:00Z", "2020-02-30T00:00:00Z", "2020-01-01 00:00:00Z", "2020-01-01t00:00:00z", "",
		})
	}
	lo, hi := 0, 6
	if n, ok := m["minLength"].(json.Number); ok {
		v, _ := n.Int64()
		lo = max(int(v)-1, 0)
		hi = int(v) + 3
	}
	if n, ok := m["maxLength"].(json.Number); ok {
		v, _ := n.Int64()
		hi = int(v) + 1
	}
	if hi < lo {
		hi = lo
	}
	var b strings.Builder
	for range lo + g.r.Intn(hi-lo+1) {
		b.WriteString(g.pick(runes))
	}
	return b.String()
}

// number picks around the schema's bounds, spelled in several ways.
func (g *Gen) number(m map[string]any, integer bool) json.Number {
	var marks []*big.Rat
	for _, k := range []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"} {
		if n, ok := m[k].(json.Number); ok {
			if r, ok := new(big.Rat).SetString(string(n)); ok {
				marks = append(marks, r)
			}
		}
	}
	if len(marks) == 0 || g.chance(0.2) {
		return json.Number(g.pick([]string{
			"0", "-0", "0.0", "-0.0", "1", "-1", "1.0", "1e0", "1E2", "1e-2", "0.5", "-7.25", "3",
			"12345678901234567890", "-9223372036854775808", "9223372036854775808", "1e400", "1e1000001",
			"1.5e1", "100", "0.1", "2.5", "9007199254740993", "-1e-7",
		}))
	}
	r := new(big.Rat).Set(marks[g.r.Intn(len(marks))])
	steps := []*big.Rat{big.NewRat(0, 1), big.NewRat(1, 1), big.NewRat(-1, 1), big.NewRat(1, 2), big.NewRat(-1, 2), big.NewRat(1, 1e12), big.NewRat(-1, 1e12), big.NewRat(3, 1), big.NewRat(7, 1)}
	r.Add(r, steps[g.r.Intn(len(steps))])
	if g.chance(0.3) {
		r.Mul(r, big.NewRat(int64(g.r.Intn(5)-2), 1))
	}
	if integer && !r.IsInt() && g.chance(0.7) {
		r.SetInt(new(big.Int).Quo(r.Num(), r.Denom()))
	}
	return g.spellRat(r)
}

func (g *Gen) spellRat(r *big.Rat) json.Number {
	if r.IsInt() {
		s := r.Num().String()
		switch g.r.Intn(5) {
		case 0:
			return json.Number(s + ".0")
		case 1:
			return json.Number(s + "e0")
		case 2:
			if strings.HasSuffix(s, "0") && s != "0" {
				return json.Number(strings.TrimSuffix(s, "0") + "E1")
			}
		}
		return json.Number(s)
	}
	s := strings.TrimRight(r.FloatString(14), "0")
	return json.Number(s)
}

// spell re-spells the numbers of a schema value: 1 as 1.0, 1e0 and so on.
func (g *Gen) spell(v any) any {
	switch x := v.(type) {
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(x)); ok && g.chance(0.5) {
			if g.chance(0.1) {
				r.Neg(r)
			}
			return g.spellRat(r)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = g.spell(e)
		}
		if g.chance(0.1) {
			out = append(out, g.any(3))
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if !g.chance(0.05) {
				out[k] = g.spell(e)
			}
		}
		return out
	case string:
		if g.chance(0.1) {
			return x + "x"
		}
	}
	return v
}

func (g *Gen) array(m map[string]any, depth int) []any {
	lo, hi := 0, 4
	if n, ok := m["minItems"].(json.Number); ok {
		v, _ := n.Int64()
		lo, hi = max(int(v)-1, 0), int(v)+3
	}
	if n, ok := m["maxItems"].(json.Number); ok {
		v, _ := n.Int64()
		hi = int(v) + 1
	}
	if hi < lo {
		hi = lo
	}
	out := []any{}
	for range lo + g.r.Intn(hi-lo+1) {
		var e any
		switch {
		case m["contains"] != nil && g.chance(0.3):
			e = g.value(m["contains"], depth+1)
		case m["items"] != nil:
			e = g.value(m["items"], depth+1)
		default:
			e = g.any(depth + 1)
		}
		out = append(out, e)
	}
	if m["uniqueItems"] == true && len(out) > 0 && g.chance(0.3) {
		out = append(out, g.spell(out[0]))
	}
	return out
}

func (g *Gen) object(m map[string]any, depth int) map[string]any {
	out := map[string]any{}
	props, _ := m["properties"].(map[string]any)
	required := map[string]bool{}
	if l, ok := m["required"].([]any); ok {
		for _, e := range l {
			if s, ok := e.(string); ok {
				required[s] = true
			}
		}
	}
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if required[k] && !g.chance(0.03) || g.chance(0.6) {
			out[k] = g.value(props[k], depth+1)
		}
	}
	for k := range required {
		if _, ok := out[k]; !ok && !g.chance(0.03) {
			out[k] = g.any(depth + 1)
		}
	}
	if pp, ok := m["patternProperties"].(map[string]any); ok {
		for p, s := range pp {
			if g.chance(0.5) {
				out[g.pick([]string{"x-" + p[:1], "n1", "x-9", "k"})] = g.value(s, depth+1)
			}
		}
	}
	if deps, ok := m["dependencies"].(map[string]any); ok {
		for k := range deps {
			if g.chance(0.4) {
				out[k] = g.any(depth + 1)
			}
		}
	}
	extras := 0
	switch ap := m["additionalProperties"].(type) {
	case bool:
		if !ap && g.chance(0.1) {
			extras = 1
		}
		if ap {
			extras = g.r.Intn(3)
		}
	case map[string]any:
		for range g.r.Intn(3) {
			out[g.pick([]string{"p", "q", "long_name", "é"})] = g.value(ap, depth+1)
		}
	default:
		if g.chance(0.3) {
			extras = 1 + g.r.Intn(2)
		}
	}
	for range extras {
		out[g.pick([]string{"extra", "x", "ab", "abcd", "é€"})] = g.any(depth + 1)
	}
	return out
}

// any is a random value of any type.
func (g *Gen) any(depth int) any {
	kinds := 7
	if depth > 4 {
		kinds = 5 // no deeper containers
	}
	switch g.r.Intn(kinds) {
	case 0:
		return nil
	case 1:
		return g.chance(0.5)
	case 2:
		return g.string(nil)
	case 3:
		return g.number(nil, false)
	case 4:
		return json.Number(fmt.Sprint(g.r.Intn(21) - 10))
	case 5:
		out := []any{}
		for range g.r.Intn(4) {
			out = append(out, g.any(depth+1))
		}
		return out
	default:
		out := map[string]any{}
		for range g.r.Intn(4) {
			out[g.pick([]string{"a", "b", "k", "x", "vehicle_id", "id", "v"})] = g.any(depth + 1)
		}
		return out
	}
}
