package fastcheck

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/schemas/internal/checktest"
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

// testSchema is one schema file compiled both ways.
type testSchema struct {
	file string
	doc  map[string]any
	slow *gojsonschema.Schema
	fast *Checker // nil: Compile refused the schema
}

// compileFile compiles dir/file as schemas.Load does; errors are
// gojsonschema's.
func compileFile(t testing.TB, dir, file string) (*testSchema, error) {
	path := filepath.Join(dir, file)
	doc, _ := checktest.ReadDoc(t, path).(map[string]any)
	sl := gojsonschema.NewSchemaLoader()
	sl.Draft = gojsonschema.Draft7
	sl.AutoDetect = true
	s, err := sl.Compile(gojsonschema.NewReferenceLoaderFileSystem("file:///"+file, http.Dir(dir)))
	if err != nil {
		return nil, err
	}
	return &testSchema{file: path, doc: doc, slow: s, fast: Compile(doc, file)}, nil
}

// load compiles one schema text as the file x.schema.json, beside a
// common.json to refer to. A gojsonschema panic, which some broken schemas
// cause, is an error.
func load(t testing.TB, text string) (s *testSchema, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("gojsonschema panics: %v", p)
		}
	}()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "common.json"), []byte(`{"definitions": {"id": {"type": "string"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.schema.json"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return compileFile(t, dir, "x.schema.json")
}

func mustLoad(t testing.TB, text string) *testSchema {
	t.Helper()
	s, err := load(t, text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return s
}

// shipped are the schema files of a folder, relative to schemas, in
// file name order.
func shipped(t testing.TB, dir string) []*testSchema {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", dir, "*.schema.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no schema files (%v)", dir, err)
	}
	sort.Strings(files)
	var out []*testSchema
	for _, f := range files {
		s, err := compileFile(t, filepath.Dir(f), filepath.Base(f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// repoSchemas are every schema file the repository ships or tests with,
// by folder (relative to schemas) and type name.
func repoSchemas(t testing.TB) map[string]*testSchema {
	t.Helper()
	out := map[string]*testSchema{}
	for _, dir := range []string{".", "../testdata/views/schemas", "../testdata/run/skip/schemas"} {
		for _, s := range shipped(t, dir) {
			out[dir+"/"+strings.TrimSuffix(filepath.Base(s.file), ".schema.json")] = s
		}
	}
	return out
}

func TestCompile(t *testing.T) {
	for name, s := range repoSchemas(t) {
		if s.fast == nil {
			t.Errorf("%s: shipped schema has no fast checker", name)
		}
	}
	for name, text := range fastSchemas {
		if mustLoad(t, text).fast == nil {
			t.Errorf("%s: no fast checker", name)
		}
	}
}

func TestUnsupported(t *testing.T) {
	for name, text := range unsupportedSchemas {
		t.Run(name, func(t *testing.T) {
			if mustLoad(t, text).fast != nil {
				t.Fatalf("compiled a fast checker for %s", text)
			}
		})
	}
}

func TestJSONNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-12", "1.5", "1e5", "1E+5", "1e-5", "0.0e0", "01", "+1", "1.", ".5", "-", "1e", "1e+", "--1", "1-", "0x1", "Inf", "", "1 "} {
		want := json.Valid([]byte(s)) && !strings.ContainsAny(s, " ")
		if got := jsonNumber(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}
