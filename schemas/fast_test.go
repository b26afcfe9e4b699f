package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"
)

// fastSchemas cover each keyword the fast validator compiles, and its
// edges. "examples", which gojsonschema ignores, feeds the generator values
// a random one would rarely hit (pattern matches).
var fastSchemas = map[string]string{
	"types": `{"type": "object", "properties": {
		"i": {"type": "integer"}, "n": {"type": "number"},
		"in": {"type": ["integer", "null"]}, "si": {"type": ["string", "integer"]},
		"b": {"type": "boolean"}, "a": {"type": "array"}, "o": {"type": "object"}}}`,
	"bounds07": `{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {
		"a": {"minimum": 1, "maximum": 10},
		"b": {"exclusiveMinimum": 0, "exclusiveMaximum": 1.5},
		"c": {"type": "integer", "minimum": -5.5, "maximum": 12345678901234567890},
		"d": {"multipleOf": 0.5}, "e": {"type": "integer", "multipleOf": 3},
		"f": {"minimum": 0}, "g": {"maximum": 1e2, "minimum": -1E-3},
		"h": {"type": "number", "exclusiveMaximum": 9007199254740993}}}`,
	"bounds06": `{"$schema": "http://json-schema.org/draft-06/schema#", "properties": {
		"x": {"exclusiveMinimum": 0}, "c": {"const": "k"},
		"w": {"if": {"type": "string"}, "then": {"maxLength": 1}}}}`,
	"bounds04": `{"$schema": "http://json-schema.org/draft-04/schema#", "properties": {
		"a": {"minimum": 1, "exclusiveMinimum": true, "maximum": 10, "exclusiveMaximum": false},
		"b": {"maximum": 0, "exclusiveMaximum": true},
		"c": {"const": 5}, "t": {"contains": {"type": "string"}}}}`,
	"strings": `{"properties": {
		"s": {"type": "string", "minLength": 2, "maxLength": 3},
		"p": {"type": "string", "pattern": "^[a-z]+-\\d{2}$", "examples": ["ab-12", "x-99", "ab-123"]},
		"u": {"pattern": "é+", "examples": ["é", "xéé"]},
		"t": {"format": "date-time"}, "e": {"format": "email", "examples": ["a@b.c"]},
		"ip": {"format": "ipv4", "examples": ["1.2.3.4"]}, "x": {"format": "no-such-format"},
		"z": {"maxLength": 0}}}`,
	"enums": `{"properties": {
		"e": {"enum": [1, "a", null, true, [1, 2], {"k": 1.5}]},
		"z": {"enum": [0]}, "nz": {"enum": [-0.0]},
		"c": {"const": {"a": [1, {"b": null}]}},
		"big": {"enum": [12345678901234567890]},
		"f": {"enum": [0.1, 1e2]}, "s": {"enum": ["<&>", "é", ""]},
		"cn": {"const": null}, "empty": {"enum": []}}}`,
	"objects": `{"type": "object", "required": ["id"], "additionalProperties": false, "properties": {
		"id": {"type": "string"},
		"o": {"type": "object", "properties": {"x": {"type": "number"}}, "additionalProperties": false},
		"e": {"type": "object", "additionalProperties": false},
		"m": {"additionalProperties": {"type": "integer"}},
		"pp": {"patternProperties": {"^x-": {"type": "string"}, "\\d$": {"type": "number"}}, "additionalProperties": false,
			"examples": [{"x-a": "s", "n1": 1, "x-1": "s"}]},
		"pn": {"propertyNames": {"maxLength": 3}},
		"mp": {"minProperties": 1, "maxProperties": 2},
		"dep": {"dependencies": {"a": ["b"], "c": {"required": ["d"]}},
			"examples": [{"a": 1, "b": 2}, {"c": 1, "d": 2}, {"a": 1}]}}}`,
	"arrays": `{"properties": {
		"a": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "object", "required": ["x"],
			"properties": {"x": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}}}},
		"u": {"uniqueItems": true, "examples": [[1, 1.0], [1, 2], [{"a": 1}, {"a": 1.0}], ["x", "x"]]},
		"c": {"contains": {"type": "string"}},
		"n": {"items": {"type": "array", "items": {"type": "number"}}},
		"ai": {"items": {"type": "string"}, "additionalItems": false}}}`,
	"combinators": `{"properties": {
		"all": {"allOf": [{"type": "number"}, {"minimum": 0}]},
		"any": {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]},
		"anyp": {"anyOf": [{"items": {"minimum": 0}, "maxItems": 1}, {"type": "array"}]},
		"cm": {"contains": {"minimum": 5}}}}`,
	"refs": `{"definitions": {
		"pos": {"type": "integer", "minimum": 0},
		"node": {"type": "object", "properties": {"v": {"$ref": "#/definitions/pos"}, "next": {"$ref": "#/definitions/node"}}},
		"alias": {"$ref": "#/definitions/pos"}},
		"$defs": {"s": {"type": "string", "minLength": 1}},
		"properties": {"head": {"$ref": "#/definitions/node"}, "s": {"$ref": "#/$defs/s"},
			"self": {"$ref": "#"}, "al": {"$ref": "#/definitions/alias", "type": "string"}}}`,
	"booleans": `{"properties": {"t": true, "f": false, "arr": {"items": false},
		"obj": {"additionalProperties": true}, "ofalse": {"additionalProperties": false}}}`,
	"nulls": `{"properties": {"n": {"type": "null"}, "ns": {"type": ["null", "string"], "minLength": 1}, "any": {}}}`,
	"detections": `{"type": "object", "required": ["vehicle_id", "detections"], "properties": {
		"vehicle_id": {"type": "string", "minLength": 1},
		"detections": {"type": "array", "items": {"type": "object", "required": ["kind", "score"], "additionalProperties": false,
			"properties": {"kind": {"enum": ["car", "person", "sign"]}, "score": {"type": "number", "minimum": 0, "maximum": 1},
				"box": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}}}}}}`,
}

// unsupportedSchemas must compile to no fast checker.
var unsupportedSchemas = map[string]string{
	"oneOf":          `{"properties": {"a": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}`,
	"not":            `{"not": {"type": "string"}}`,
	"if":             `{"if": {"type": "string"}, "then": {"maxLength": 1}}`,
	"tuple":          `{"items": [{"type": "string"}], "additionalItems": false}`,
	"file ref":       `{"properties": {"a": {"$ref": "common.json#/definitions/id"}}}`,
	"ref with $id":   `{"$id": "http://example.com/x.json", "properties": {"a": {"$ref": "#/definitions/a"}}, "definitions": {"a": {"type": "string"}}}`,
	"escaped ref":    `{"properties": {"a": {"$ref": "#/definitions/a~1b"}}, "definitions": {"a/b": {"type": "string"}}}`,
	"unknown draft":  `{"$schema": "http://example.com/my-schema#", "type": "object"}`,
	"ref loop":       `{"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}}, "properties": {"x": {"$ref": "#/definitions/a"}}}`,
	"allOf self":     `{"allOf": [{"$ref": "#"}]}`,
	"nested oneOf":   `{"properties": {"a": {"items": {"properties": {"b": {"oneOf": [true]}}}}}}`,
	"refs in array":  `{"allOf": [{"type": "string"}], "properties": {"a": {"$ref": "#/allOf/0"}}}`,
	"percent in ref": `{"properties": {"a": {"$ref": "#/definitions/a%20b"}}, "definitions": {"a b": {"type": "string"}}}`,
}

// loadOne compiles one schema text the way Load does, as file type x.
func loadOne(t testing.TB, text string) *Type {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "common.json"), []byte(`{"definitions": {"id": {"type": "string"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x"+Suffix), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return s.Types[0]
}

// repoSchemas are every schema file the repository ships or tests with.
func repoSchemas(t testing.TB) map[string]*Type {
	t.Helper()
	out := map[string]*Type{}
	for _, dir := range []string{".", "../testdata/views/schemas", "../testdata/run/skip/schemas"} {
		s, err := Load(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ty := range s.Types {
			out[dir+"/"+ty.Name()] = ty
		}
	}
	return out
}

// gojson is gojsonschema's verdict; a panic (it has a few on numbers
// big.Rat or float64 cannot hold) counts as a rejection.
func gojson(ty *Type, v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	res, err := ty.schema.Validate(gojsonschema.NewRawLoader(v))
	return err == nil && res.Valid()
}

// tally counts verdict pairs of one schema.
type tally struct{ both, slow, invalid int }

// differ checks the one rule on raw: fast valid implies gojsonschema valid.
func differ(t testing.TB, name string, ty *Type, raw []byte, tl *tally) {
	t.Helper()
	v, _, err := parse(raw)
	if err != nil {
		return
	}
	fv := ty.fast.valid(v)
	gv := gojson(ty, v)
	switch {
	case fv && !gv:
		t.Errorf("%s: fast path accepts a record gojsonschema rejects: %s", name, raw)
	case fv:
		tl.both++
	case gv:
		tl.slow++
	default:
		tl.invalid++
	}
}

func TestFastCompiles(t *testing.T) {
	for name, ty := range repoSchemas(t) {
		if ty.fast == nil {
			t.Errorf("%s: shipped schema has no fast checker", name)
		}
	}
	for name, text := range fastSchemas {
		if loadOne(t, text).fast == nil {
			t.Errorf("%s: no fast checker", name)
		}
	}
}

func TestFastUnsupported(t *testing.T) {
	for name, text := range unsupportedSchemas {
		t.Run(name, func(t *testing.T) {
			ty := loadOne(t, text)
			if ty.fast != nil {
				t.Fatalf("compiled a fast checker for %s", text)
			}
		})
	}
}

// TestFastEdges pins exact verdicts on gojsonschema's quirks: both
// validators must agree, so each case also shows the fast path is taken.
func TestFastEdges(t *testing.T) {
	cases := []struct {
		schema, record string
		want           bool
	}{
		{"types", `{"i": 1.0}`, true},
		{"types", `{"i": 1e2}`, true},
		{"types", `{"i": 1.5e1}`, true},
		{"types", `{"i": 12345678901234567890}`, true},
		{"types", `{"i": -0}`, true},
		{"types", `{"i": 1.5}`, false},
		{"types", `{"i": 1e1000001}`, false}, // too big for big.Rat: not an integer
		{"types", `{"i": 1E400}`, true},
		{"types", `{"i": "1"}`, false},
		{"types", `{"in": null}`, true},
		{"types", `{"si": 3}`, true},
		{"types", `{"si": 3.5}`, false},
		{"types", `{"n": 1e1000001}`, true},
		{"bounds07", `{"a": 10}`, true},
		{"bounds07", `{"a": 10.0000000000000000001}`, false},
		{"bounds07", `{"a": 1e1}`, true},
		{"bounds07", `{"b": 0}`, false},
		{"bounds07", `{"b": 1.4999999999999999999}`, true},
		{"bounds07", `{"b": 1.5}`, false},
		{"bounds07", `{"c": -5}`, true},
		{"bounds07", `{"c": -6}`, false},
		{"bounds07", `{"c": 12345678901234567890}`, true},
		{"bounds07", `{"c": 12345678901234567891}`, false},
		{"bounds07", `{"d": 2.5}`, true},
		{"bounds07", `{"d": 2.25}`, false},
		{"bounds07", `{"e": -9}`, true},
		{"bounds07", `{"e": 9.0}`, true},
		{"bounds07", `{"e": 10}`, false},
		{"bounds07", `{"f": -0}`, true},
		{"bounds07", `{"f": -0.0000001}`, false},
		{"bounds07", `{"g": -0.001}`, true},
		{"bounds07", `{"h": 9007199254740992}`, true},
		{"bounds07", `{"h": 9007199254740993}`, false},
		{"bounds06", `{"x": 0}`, false},
		{"bounds06", `{"c": "j"}`, false},
		{"bounds06", `{"w": "long"}`, true}, // if/then are draft-07
		{"bounds04", `{"a": 1}`, false},
		{"bounds04", `{"a": 10}`, true},
		{"bounds04", `{"b": 0}`, false},
		{"bounds04", `{"c": 6}`, true},   // const is draft-06
		{"bounds04", `{"t": [1]}`, true}, // so is contains
		{"strings", `{"s": "é€"}`, true},
		{"strings", `{"s": "𝄞𝄞𝄞"}`, true},
		{"strings", `{"s": "𝄞𝄞𝄞𝄞"}`, false},
		{"strings", `{"s": "\ud834\udd1e"}`, false},
		{"strings", `{"p": "ab-12"}`, true},
		{"strings", `{"p": "ab-123"}`, false},
		{"strings", `{"u": "xéz"}`, true},
		{"strings", `{"t": "2020-01-01T00:00:00Z"}`, true},
		{"strings", `{"t": "2020-01-01"}`, false},
		{"strings", `{"t": 5}`, true},
		{"strings", `{"e": 5}`, false}, // gojsonschema's checkers fail non-strings
		{"strings", `{"e": "nope"}`, false},
		{"strings", `{"ip": "1.2.3.4"}`, true},
		{"strings", `{"x": "anything"}`, true},
		{"strings", `{"z": ""}`, true},
		{"enums", `{"e": 1.0}`, true},
		{"enums", `{"e": 10e-1}`, true},
		{"enums", `{"e": [1, 2.0]}`, true},
		{"enums", `{"e": {"k": 15e-1}}`, true},
		{"enums", `{"e": {"k": 1.5, "j": 1}}`, false},
		{"enums", `{"e": "b"}`, false},
		{"enums", `{"z": -0}`, false}, // "-0" is not "0" once re-encoded
		{"enums", `{"z": 0.0}`, true},
		{"enums", `{"nz": -0}`, true},
		{"enums", `{"c": {"a": [1.0, {"b": null}]}}`, true},
		{"enums", `{"c": {"a": [1, {"b": 0}]}}`, false},
		{"enums", `{"big": 12345678901234567890}`, true},
		{"enums", `{"s": "<&>"}`, true},
		{"enums", `{"s": ""}`, true},
		{"enums", `{"cn": null}`, true},
		{"enums", `{"cn": 0}`, false},
		{"enums", `{"empty": 3}`, true},
		{"objects", `{"id": "a"}`, true},
		{"objects", `{}`, false},
		{"objects", `{"id": "a", "extra": 1}`, false},
		{"objects", `{"id": "a", "o": {"x": 1}}`, true},
		{"objects", `{"id": "a", "o": {"y": 1}}`, false},
		{"objects", `{"id": "a", "e": {}}`, true},
		{"objects", `{"id": "a", "e": {"k": null}}`, false},
		{"objects", `{"id": "a", "m": {"k": 1, "j": 2.0}}`, true},
		{"objects", `{"id": "a", "m": {"k": "1"}}`, false},
		{"objects", `{"id": "a", "pp": {"x-a": "s", "n1": 1, "x-1": "s"}}`, false}, // x-1 must be a number too
		{"objects", `{"id": "a", "pp": {"x-a": "s", "n1": 1}}`, true},
		{"objects", `{"id": "a", "pp": {"y": 1}}`, false},
		{"objects", `{"id": "a", "pn": {"abc": 1}}`, true},
		{"objects", `{"id": "a", "pn": {"abcd": 1}}`, false},
		{"objects", `{"id": "a", "mp": {}}`, false},
		{"objects", `{"id": "a", "mp": {"a": 1, "b": 2, "c": 3}}`, false},
		{"objects", `{"id": "a", "dep": {"a": 1}}`, false},
		{"objects", `{"id": "a", "dep": {"a": 1, "b": 1}}`, true},
		{"objects", `{"id": "a", "dep": {"c": 1}}`, false},
		{"objects", `{"id": "a", "dep": 1e1000001}`, false}, // gojsonschema panics
		{"objects", `{"id": "a", "dep": 1e400}`, true},
		{"arrays", `{"a": [{"x": 1, "tags": ["a", "b"]}]}`, true},
		{"arrays", `{"a": []}`, false},
		{"arrays", `{"a": [{"x": 1, "tags": ["a", "b", "c"]}]}`, false},
		{"arrays", `{"a": [{"x": 1.5}]}`, false},
		{"arrays", `{"u": [1, 1.0]}`, false},
		{"arrays", `{"u": [{"a": 1}, {"a": 1.0}]}`, false},
		{"arrays", `{"u": [1, "1"]}`, true},
		{"arrays", `{"c": [1, "a"]}`, true},
		{"arrays", `{"c": [1]}`, false},
		{"arrays", `{"c": []}`, false},
		{"arrays", `{"n": [[1, 2.5], []]}`, true},
		{"arrays", `{"n": [[1, "2"]]}`, false},
		{"arrays", `{"ai": ["a", "b"]}`, true},
		{"combinators", `{"all": 0}`, true},
		{"combinators", `{"all": -1}`, false},
		{"combinators", `{"any": "ab"}`, true},
		{"combinators", `{"any": 7}`, true},
		{"combinators", `{"any": "abc"}`, false},
		{"combinators", `{"anyp": [2, 3]}`, true},
		{"combinators", `{"anyp": [1e1000001, 2]}`, false}, // gojsonschema panics in the first branch
		{"combinators", `{"cm": [1, 7]}`, true},
		{"combinators", `{"cm": [1e1000001, 7]}`, false}, // and on the first item
		{"combinators", `{"cm": [1e400, 7]}`, true},
		{"refs", `{"head": {"v": 1, "next": {"v": 2, "next": {}}}}`, true},
		{"refs", `{"head": {"v": 1, "next": {"v": -2}}}`, false},
		{"refs", `{"s": ""}`, false},
		{"refs", `{"self": {"self": {"s": "x"}}}`, true},
		{"refs", `{"self": {"self": {"s": 1}}}`, false},
		{"refs", `{"al": 3}`, true}, // $ref's siblings are ignored
		{"booleans", `{"t": [1, {}]}`, true},
		{"booleans", `{"f": null}`, false},
		{"booleans", `{"arr": []}`, true},
		{"booleans", `{"arr": [1]}`, false},
		{"booleans", `{"obj": {"a": 1}}`, true},
		{"booleans", `{"ofalse": {"a": 1}}`, false},
		{"nulls", `{"n": null, "ns": null, "any": null}`, true},
		{"nulls", `{"ns": ""}`, false},
		{"nulls", `{"n": 0}`, false},
	}
	types := map[string]*Type{}
	for name, text := range fastSchemas {
		types[name] = loadOne(t, text)
	}
	for _, c := range cases {
		ty := types[c.schema]
		v, _, err := parse([]byte(c.record))
		if err != nil {
			t.Fatal(err)
		}
		if g := gojson(ty, v); g != c.want {
			t.Errorf("%s %s: gojsonschema says %v, the test %v", c.schema, c.record, g, c.want)
		}
		if f := ty.fast.valid(v); f != c.want {
			t.Errorf("%s %s: fast says %v, want %v", c.schema, c.record, f, c.want)
		}
	}
}

// TestFastDateTimeIsOurs guards the shortcut in formats: the chain's
// "date-time" must be the checker fast calls directly.
func TestFastDateTimeIsOurs(t *testing.T) {
	for _, s := range []string{"2020-01-01", "12:00:00Z", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00.5+01:00", ""} {
		if got, want := gojsonschema.FormatCheckers.IsFormat("date-time", s), (dateTime{}).IsFormat(s); got != want {
			t.Errorf("%q: chain says %v, ours %v", s, got, want)
		}
	}
}

// TestFastDifferential generates records for every schema, valid ones and
// broken ones, and checks that the fast path never accepts a record
// gojsonschema rejects.
func TestFastDifferential(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 500
	}
	all := repoSchemas(t)
	docs := map[string]any{}
	for name, ty := range all {
		docs[name] = readDoc(t, ty.File)
	}
	for name, text := range fastSchemas {
		all[name] = loadOne(t, text)
		docs[name] = readDoc(t, all[name].File)
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	var total tally
	for i, name := range names {
		ty, g := all[name], &gen{r: rand.New(rand.NewSource(int64(i) + 1)), root: docs[name]}
		var tl tally
		for range n {
			raw, err := json.Marshal(g.value(docs[name], 0))
			if err != nil {
				t.Fatal(err)
			}
			differ(t, name, ty, raw, &tl)
		}
		t.Logf("%-40s fast valid %5d, valid but slow %5d, invalid %5d", name, tl.both, tl.slow, tl.invalid)
		total.both += tl.both
		total.slow += tl.slow
		total.invalid += tl.invalid
		if tl.both == 0 || tl.invalid == 0 {
			t.Errorf("%s: the generator made no valid or no invalid records", name)
		}
	}
	t.Logf("all: fast valid %d, valid but slow %d, invalid %d", total.both, total.slow, total.invalid)
}

// TestFastRecordUnchanged runs Record with and without the fast path: the
// records, keys and error reports must be the same.
func TestFastRecordUnchanged(t *testing.T) {
	for name, ty := range repoSchemas(t) {
		slow := *ty
		slow.fast = nil
		g := &gen{r: rand.New(rand.NewSource(7)), root: readDoc(t, ty.File)}
		for range 1000 {
			raw, _ := json.Marshal(g.value(g.root, 0))
			r1, e1 := ty.Record(raw)
			r2, e2 := slow.Record(raw)
			if !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(e1, e2) {
				t.Fatalf("%s %s:\nfast %+v %v\nslow %+v %v", name, raw, r1, e1, r2, e2)
			}
		}
	}
}

func readDoc(t testing.TB, file string) any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// gen makes records for a schema: mostly what it asks for, near its
// bounds and in unusual spellings, with mistakes now and then.
type gen struct {
	r    *rand.Rand
	root any
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) pick(list []string) string { return list[g.r.Intn(len(list))] }

func (g *gen) value(schema any, depth int) any {
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

func (g *gen) resolve(ref string) any {
	var node any = g.root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
		if m, ok := node.(map[string]any); ok {
			node = m[tok]
		}
	}
	return node
}

func (g *gen) typeOf(m map[string]any) string {
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

func (g *gen) string(m map[string]any) string {
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
func (g *gen) number(m map[string]any, integer bool) json.Number {
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

func (g *gen) spellRat(r *big.Rat) json.Number {
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
func (g *gen) spell(v any) any {
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

func (g *gen) array(m map[string]any, depth int) []any {
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

func (g *gen) object(m map[string]any, depth int) map[string]any {
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
func (g *gen) any(depth int) any {
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

// fuzzSchemas are the schemas FuzzFastValidator picks from by index: keep
// the order, the corpus depends on it.
var fuzzSchemas = []string{"types", "bounds07", "bounds04", "strings", "enums", "objects", "arrays", "combinators", "refs", "booleans", "nulls", "detections"}

// FuzzFastValidator feeds records, as JSON text, to the fast path and to
// gojsonschema: the fast path must never accept what gojsonschema rejects.
func FuzzFastValidator(f *testing.F) {
	shipped, err := Load(".", Options{})
	if err != nil {
		f.Fatal(err)
	}
	types := append([]*Type{}, shipped.Types...)
	for _, name := range fuzzSchemas {
		types = append(types, loadOne(f, fastSchemas[name]))
	}
	for i, ty := range types {
		g := &gen{r: rand.New(rand.NewSource(int64(i))), root: readDoc(f, ty.File)}
		for range 8 {
			raw, _ := json.Marshal(g.value(g.root, 0))
			f.Add(raw, uint8(i))
		}
	}
	f.Add([]byte(`{"vehicle_id": "a", "detection_time": "2020-01-01T00:00:00Z", "object_value": 1.0}`), uint8(0))
	f.Add([]byte(`{"i": 1e1000001, "n": -0.0}`), uint8(2))
	f.Add([]byte(`{"z": -0, "e": {"k": 15e-1}}`), uint8(6))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		if s := string(data); jsonNumber(s) && !json.Valid(data) {
			t.Fatalf("jsonNumber takes %q", s)
		}
		if !json.Valid(data) {
			return // the file decoder lets no other record through
		}
		ty := types[int(which)%len(types)]
		v, _, err := parse(data)
		if err != nil {
			t.Fatalf("parse refuses valid JSON %q: %v", data, err)
		}
		if ty.fast.valid(v) && !gojson(ty, v) {
			t.Fatalf("%s: fast path accepts a record gojsonschema rejects: %s", ty.File, data)
		}
	})
}

func TestJSONNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-12", "1.5", "1e5", "1E+5", "1e-5", "0.0e0", "01", "+1", "1.", ".5", "-", "1e", "1e+", "--1", "1-", "0x1", "Inf", "", "1 "} {
		want := json.Valid([]byte(s)) && !strings.ContainsAny(s, " ")
		if got := jsonNumber(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}

// TestKeyUnchanged checks the allocation shortcut against the code it
// skips: appendCanonical against canonical.
func TestKeyUnchanged(t *testing.T) {
	g := &gen{r: rand.New(rand.NewSource(3))}
	extra := []any{"plain", "quo\"te", "back\\slash", "tab\t", "<&>", "é€𝄞", json.Number("1.0"), json.Number("-0"),
		json.Number("12345678901234567890"), json.Number("1e2"), json.Number("9223372036854775807")}
	for i := range 3000 {
		var v any
		if i < len(extra) {
			v = extra[i]
		} else {
			v = g.any(0)
		}
		var buf bytes.Buffer
		canonical(&buf, v)
		if got := string(appendCanonical([]byte("x"), v)); got != "x"+buf.String() {
			t.Fatalf("%#v: appendCanonical %s, canonical %s", v, got, buf.String())
		}
	}
}

// TestFastSamples: every valid record of the sample files takes the fast
// path, or the fast path has stopped paying for itself.
func TestFastSamples(t *testing.T) {
	set := shipped(t, Options{})
	files, _ := filepath.Glob("../testdata/sample/*.json")
	if len(files) == 0 {
		t.Fatal("no sample files")
	}
	for _, file := range files {
		ty, _, _ := set.Find(filepath.Base(file))
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string][]json.RawMessage
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		raws := doc[strings.TrimPrefix(ty.Records, "/")]
		for _, raw := range raws {
			v, _, _ := parse(raw)
			if f, g := ty.fast.valid(v), gojson(ty, v); f != g {
				t.Errorf("%s: fast %v, gojsonschema %v: %s", file, f, g, raw)
			}
		}
		if len(raws) == 0 {
			t.Errorf("%s: no records", file)
		}
	}
}

// TestFastRandomSchemas draws schemas from the keywords the fast path
// knows, in every draft, and records for them: the rule must hold for
// schemas nobody wrote by hand too.
func TestFastRandomSchemas(t *testing.T) {
	schemas, records := 400, 200
	if testing.Short() {
		schemas = 50
	}
	r := rand.New(rand.NewSource(11))
	var total tally
	compiled := 0
	for i := range schemas {
		sg := &schemaGen{r: r, draft: []string{"", "http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-06/schema#", "http://json-schema.org/draft-07/schema#"}[r.Intn(4)]}
		doc := sg.schema(0).(map[string]any)
		if sg.draft != "" {
			doc["$schema"] = sg.draft
		}
		doc["definitions"] = map[string]any{"d1": sg.schema(2)}
		text, _ := json.Marshal(doc)
		ty := tryLoad(t, string(text))
		if ty == nil || ty.fast == nil {
			continue
		}
		compiled++
		g := &gen{r: rand.New(rand.NewSource(int64(i))), root: readDoc(t, ty.File)}
		for range records {
			raw, _ := json.Marshal(g.value(g.root, 0))
			differ(t, string(text), ty, raw, &total)
		}
	}
	t.Logf("%d of %d schemas compiled; fast valid %d, valid but slow %d, invalid %d", compiled, schemas, total.both, total.slow, total.invalid)
	if compiled < schemas/4 {
		t.Errorf("only %d schemas compiled", compiled)
	}
}

// tryLoad is loadOne for schemas that may be broken: nil when Load fails
// or gojsonschema panics on them.
func tryLoad(t *testing.T, text string) (ty *Type) {
	defer func() {
		if recover() != nil {
			ty = nil
		}
	}()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"+Suffix), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir, Options{})
	if err != nil {
		return nil
	}
	return s.Types[0]
}

type schemaGen struct {
	r     *rand.Rand
	draft string
}

func (sg *schemaGen) pick(list ...any) any { return list[sg.r.Intn(len(list))] }

func (sg *schemaGen) schema(depth int) any {
	r := sg.r
	if depth > 0 && r.Intn(12) == 0 {
		return r.Intn(2) == 0
	}
	if depth > 0 && r.Intn(10) == 0 {
		return map[string]any{"$ref": sg.pick("#", "#/definitions/d1")}
	}
	m := map[string]any{}
	num := func() any {
		return json.Number(sg.pick("0", "1", "-1", "2.5", "0.5", "3", "10", "1e2", "-0", "12345678901234567890", "0.1").(string))
	}
	count := func() any { return json.Number(sg.pick("0", "1", "2", "3").(string)) }
	names := []any{"a", "b", "c", "x-1"}
	keys := r.Intn(5)
	if depth > 3 {
		keys = r.Intn(2)
	}
	for range keys {
		switch r.Intn(24) {
		case 0, 1, 2:
			types := []any{"null", "boolean", "string", "integer", "number", "array", "object"}
			if r.Intn(3) == 0 {
				a, b := types[r.Intn(7)], types[r.Intn(7)]
				if a != b {
					m["type"] = []any{a, b}
					continue
				}
			}
			m["type"] = types[r.Intn(7)]
		case 3, 4:
			props := map[string]any{}
			for range 1 + r.Intn(3) {
				props[sg.pick(names...).(string)] = sg.schema(depth + 1)
			}
			m["properties"] = props
		case 5:
			m["required"] = []any{sg.pick(names...)}
		case 6:
			if r.Intn(2) == 0 {
				m["additionalProperties"] = r.Intn(2) == 0
			} else {
				m["additionalProperties"] = sg.schema(depth + 1)
			}
		case 7:
			m["patternProperties"] = map[string]any{sg.pick("^a", "\\d$", "^x-").(string): sg.schema(depth + 1)}
		case 8:
			m["propertyNames"] = map[string]any{"maxLength": count()}
		case 9:
			m[sg.pick("minProperties", "maxProperties").(string)] = count()
		case 10:
			if r.Intn(2) == 0 {
				m["dependencies"] = map[string]any{"a": []any{"b"}}
			} else {
				m["dependencies"] = map[string]any{"a": sg.schema(depth + 1)}
			}
		case 11, 12:
			m["items"] = sg.schema(depth + 1)
		case 13:
			m[sg.pick("minItems", "maxItems").(string)] = count()
		case 14:
			m["uniqueItems"] = r.Intn(3) > 0
		case 15:
			m["contains"] = sg.schema(depth + 1)
		case 16:
			m[sg.pick("minLength", "maxLength").(string)] = count()
		case 17:
			m["pattern"] = sg.pick("^a", "é", "^[a-z]*$", "\\d")
		case 18:
			m["format"] = sg.pick("date-time", "email", "ipv4", "date", "uuid", "no-such")
		case 19:
			m[sg.pick("minimum", "maximum", "multipleOf").(string)] = num()
		case 20:
			k := sg.pick("exclusiveMinimum", "exclusiveMaximum").(string)
			if strings.Contains(sg.draft, "04") {
				m[strings.ToLower(k[9:10])+k[10:]] = num()
				m[k] = r.Intn(2) == 0
			} else {
				m[k] = num()
			}
		case 21:
			var list []any
			for range 1 + r.Intn(3) {
				list = append(list, sg.pick(nil, true, "a", "", num(), []any{num()}, map[string]any{"a": num()}))
			}
			if r.Intn(2) == 0 {
				m["enum"] = list
			} else {
				m["const"] = list[0]
			}
		case 22:
			var list []any
			for range 1 + r.Intn(2) {
				list = append(list, sg.schema(depth+1))
			}
			m[sg.pick("allOf", "anyOf").(string)] = list
		case 23:
			m["examples"] = []any{sg.pick("a", num(), map[string]any{"a": num(), "b": "x"}, []any{"a", "a"})}
		}
	}
	return m
}
