package schemas

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// loadErr loads one schema text as t.schema.json beside more files and
// returns Load's error.
func loadErr(t *testing.T, schema string, files ...string) error {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		write(t, dir, files[i], files[i+1])
	}
	write(t, dir, "t.schema.json", schema)
	_, err := Load(dir, Options{})
	return err
}

// TestRefCycles: a loop of subschemas on one value is refused at load,
// naming the file and where the loop is; recursion through properties or
// items is no loop, and validates.
func TestRefCycles(t *testing.T) {
	refused := []struct {
		name, schema, where string
		files               []string
	}{
		{"root", `{"$ref": "#"}`, "$ref cycle # -> #", nil},
		{"allOf", `{"allOf": [{"$ref": "#"}]}`, "$ref cycle # -> #/allOf/0 -> #", nil},
		{"definitions", `{"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},
			"properties": {"x": {"$ref": "#/definitions/a"}}}`, "#/definitions/a -> #/definitions/b -> #/definitions/a", nil},
		{"anyOf and not", `{"anyOf": [{"type": "string"}, {"$ref": "#/definitions/n"}], "definitions": {"n": {"not": {"$ref": "#"}}}}`,
			"#/anyOf/1", nil},
		{"if then", `{"if": {"$ref": "#"}}`, "$ref cycle", nil},
		{"dependencies", `{"dependencies": {"a": {"$ref": "#"}}}`, "#/dependencies/a", nil},
		{"deep", `{"properties": {"a": {"items": {"allOf": [{"$ref": "#/properties/a/items"}]}}}}`, "#/properties/a/items", nil},
		{"other file", `{"allOf": [{"$ref": "common.json#/definitions/c"}]}`, "common.json#/definitions/c",
			[]string{"common.json", `{"definitions": {"c": {"$ref": "t.schema.json#"}}}`}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			err := loadErr(t, c.schema, c.files...)
			if err == nil || !strings.Contains(err.Error(), "t.schema.json") || !strings.Contains(err.Error(), c.where) ||
				!strings.Contains(err.Error(), "validation would never end") {
				t.Fatalf("got %v, want the loop at %q", err, c.where)
			}
		})
	}
	// Recursion that goes deeper with the record.
	tree := `{"$ref": "#/definitions/node", "definitions": {"node": {"type": "object", "required": ["v"],
		"properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/definitions/node"}}}}},
		"x-carpipe": {"on_invalid_record": "skip_record"}}`
	self := `{"properties": {"a": {"$ref": "#"}, "n": {"type": "integer"}}, "x-carpipe": {"on_invalid_record": "skip_record"}}`
	for _, c := range []struct {
		schema, valid, invalid, ptr string
	}{
		{tree, `{"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}, {"v": 4}]}`, `{"v": 1, "kids": [{"v": 2, "kids": [{"v": "x"}]}]}`, "/kids/0/kids/0/v"},
		{self, `{"a": {"a": {"a": {"n": 1}}}}`, `{"a": {"a": {"n": 1.5}}}`, "/a/a/n"},
	} {
		ty := oneType(t, c.schema)
		deep := c.valid
		for range 500 {
			deep = strings.Replace(c.valid, `{"v": 3}`, deep, 1)
		}
		if _, errs := ty.Record([]byte(c.valid)); len(errs) > 0 {
			t.Errorf("%s: %v", c.valid, errs)
		}
		if _, errs := ty.Record([]byte(deep)); len(errs) > 0 {
			t.Errorf("a deep tree: %v", errs)
		}
		if _, errs := ty.Record([]byte(c.invalid)); len(errs) != 1 || errs[0].Pointer != c.ptr {
			t.Errorf("%s: %v, want one error at %s", c.invalid, errs, c.ptr)
		}
	}
}

// TestMirror: Load reads gojsonschema's compiled schema; should its layout
// change, this fails rather than the checks going blind.
func TestMirror(t *testing.T) {
	ty := oneType(t, `{"type": "object", "properties": {"a": {"format": "date-time"}, "b": {"$ref": "#/definitions/d"}},
		"patternProperties": {"^x": {"allOf": [{"type": "string"}]}}, "additionalProperties": {"items": [{}, {}], "additionalItems": false},
		"dependencies": {"a": {"not": {}}}, "definitions": {"d": {"enum": [1, 2]}}}`)
	g, err := mirror(ty.schema)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.types) != 1 || g.types[0] != "object" || len(g.props) != 2 || len(g.patterns) != 1 || g.extra == nil || len(g.deps) != 1 {
		t.Fatalf("root %+v", g)
	}
	for _, p := range g.props {
		switch p.property {
		case "a":
			if p.format != "date-time" || p.where("file:///t.schema.json") != "#/properties/a" {
				t.Errorf("a: format %q at %s", p.format, p.where("file:///t.schema.json"))
			}
		case "b":
			if p.ref == nil || p.ref.enumSize != 2 || p.ref.where("file:///t.schema.json") != "#/definitions/d" {
				t.Errorf("b: %+v", p.ref)
			}
		default:
			t.Errorf("property %q", p.property)
		}
	}
	if x := g.extra; len(x.items) != 2 || x.itemsOne || x.where("file:///t.schema.json") != "#/additionalProperties" {
		t.Errorf("additionalProperties %+v", x)
	}
	if g.patterns["^x"].allOf[0].where("file:///t.schema.json") != "#/patternProperties/^x/allOf/0" || g.deps["a"].not == nil {
		t.Errorf("patterns or dependencies misread")
	}
}

// bigEnumSchema has an enum of n strings on a property, where Enums take
// it over.
func bigEnumSchema(n int) string {
	var b strings.Builder
	b.WriteString(`{"type": "object", "properties": {"code": {"type": "string", "enum": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"c%d"`, i)
	}
	b.WriteString(`]}, "n": {"type": "integer"}}, "x-carpipe": {"on_invalid_record": "skip_record"}}`)
	return b.String()
}

// TestLargeEnum: an enum of 500,000 values loads without gojsonschema's
// quadratic check, which never sees it, and validates as gojsonschema
// would have, in its words.
func TestLargeEnum(t *testing.T) {
	ty := oneType(t, bigEnumSchema(500000))
	g, err := mirror(ty.schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range all(g) {
		if n.enumSize > 1000 {
			t.Fatalf("gojsonschema compiled an enum of %d values", n.enumSize)
		}
	}
	if ty.enums == nil || ty.fast == nil {
		t.Fatal("the enum is not taken over, or the fast path is gone")
	}
	for _, c := range []struct {
		record, ptr, msg string
	}{
		{`{"code": "c0"}`, "", ""},
		{`{"code": "c499999", "n": 1}`, "", ""},
		{`{"code": "c500000"}`, "/code", `"code": must be one of "c0", "c1", "c2", `},
		{`{"code": "c1", "n": "x"}`, "/n", `"n": expected integer, got string "x"`},
		{`{"code": 5}`, "/code", `"code": expected string, got number 5`}, // no enum error: gojsonschema stops at the type
	} {
		rec, errs := ty.Record([]byte(c.record))
		switch {
		case c.ptr == "" && len(errs) > 0:
			t.Errorf("%s: %v", c.record, errs)
		case c.ptr == "" && rec.Payload == nil:
			t.Errorf("%s: no payload", c.record)
		case c.ptr != "" && (len(errs) != 1 || errs[0].Pointer != c.ptr || !strings.HasPrefix(errs[0].Message, c.msg)):
			t.Errorf("%s: %v, want one error at %s: %s...", c.record, errs, c.ptr, c.msg)
		}
		if c.ptr == "/code" && c.record == `{"code": "c500000"}` && (!strings.HasSuffix(errs[0].Message, `..., got "c500000"`) || len(errs[0].Message) > 300) {
			t.Errorf("message %q: want the first values, cut short", errs[0].Message)
		}
	}
	// Without the fast path, gojsonschema and Enums give the same verdict.
	slow := *ty
	slow.fast = nil
	for _, r := range []string{`{"code": "c123456"}`, `{"code": "nope", "n": 1.5}`} {
		_, e1 := ty.Record([]byte(r))
		_, e2 := slow.Record([]byte(r))
		if fmt.Sprint(e1) != fmt.Sprint(e2) {
			t.Errorf("%s: fast %v, slow %v", r, e1, e2)
		}
	}
}

// TestEnumProblems: what gojsonschema would refuse in a large enum, and
// large enums where Enums cannot take them, are load errors.
func TestEnumProblems(t *testing.T) {
	many := func(n int, dup bool) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			if dup && i == n-1 {
				i = 7
			}
			fmt.Fprintf(&b, "%d", i)
		}
		return "[" + b.String() + "]"
	}
	for _, c := range []struct {
		name, schema, want string
		files              []string
	}{
		{"duplicate", `{"properties": {"a": {"enum": ` + many(2000, true) + `}}}`, "enum items must be unique: #/properties/a/enum repeats 7", nil},
		{"duplicate by value", `{"properties": {"a": {"enum": ` + "[0.0," + many(2000, false)[1:] + `}}}`, "", nil},
		{"under anyOf", `{"anyOf": [{"enum": ` + many(25000, false) + `}, {"type": "string"}]}`, "enum at #/anyOf/0/enum has 25000 values", nil},
		{"in a property named enum", `{"properties": {"enum": {"anyOf": [{"enum": ` + many(25000, false) + `}]}}}`,
			"enum at #/properties/enum/anyOf/0/enum has 25000 values", nil},
		{"behind a ref", `{"properties": {"a": {"$ref": "#/definitions/e"}}, "definitions": {"e": {"enum": ` + many(25000, false) + `}}}`,
			"enum at #/definitions/e/enum has 25000 values", nil},
		{"other file", `{"properties": {"a": {"$ref": "common.json#/definitions/e"}}}`, "common.json: enum at #/definitions/e/enum has 25000 values",
			[]string{"common.json", `{"definitions": {"e": {"enum": ` + many(25000, false) + `}}}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := loadErr(t, c.schema, c.files...)
			if c.name == "duplicate by value" {
				// 0.0 and 0 are one value to gojsonschema: refused too.
				c.want = "enum items must be unique: #/properties/a/enum repeats 0"
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "t.schema.json") {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// TestEnumLinear: loading an enum does work in proportion to its size,
// counted in allocations; that gojsonschema never compiles it, whose check
// is quadratic and allocates nothing, TestLargeEnum shows.
func TestEnumLinear(t *testing.T) {
	allocs := func(n int) float64 {
		dir := t.TempDir()
		write(t, dir, "t.schema.json", bigEnumSchema(n))
		return testing.AllocsPerRun(1, func() {
			if _, err := Load(dir, Options{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	a, b := allocs(50000), allocs(100000)
	if r := b / a; r < 1.8 || r > 2.2 {
		t.Fatalf("%.0f allocations for 50,000 values, %.0f for 100,000: %.2f times, want about 2", a, b, r)
	}
}

// TestLoadContext: loading gives up when its context ends.
func TestLoadContext(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "t.schema.json", bigEnumSchema(100000))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadContext(ctx, dir, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := LoadContext(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLoadEnum loads a schema with an enum of 500,000 values.
func BenchmarkLoadEnum(b *testing.B) {
	dir := b.TempDir()
	write(b, dir, "t.schema.json", bigEnumSchema(500000))
	for range b.N {
		if _, err := Load(dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDrafts: $schema names draft-04, -06 or -07, however spelt around the
// URL, and that draft applies; anything else is refused by name.
func TestDrafts(t *testing.T) {
	// const is draft-06: draft-04 ignores it.
	schema := func(s string) string {
		return `{"$schema": ` + s + `, "properties": {"a": {"const": 5}}, "x-carpipe": {"on_invalid_record": "skip_record"}}`
	}
	for _, c := range []struct {
		value  string
		draft4 bool
	}{
		{`"http://json-schema.org/draft-07/schema#"`, false},
		{`"https://json-schema.org/draft-07/schema"`, false},
		{`" http://json-schema.org/draft-06/schema# "`, false},
		{`"\thttps://json-schema.org/draft-06/schema#\n"`, false},
		{`"http://json-schema.org/draft-04/schema#"`, true},
		{`"https://json-schema.org/draft-04/schema"`, true},
		{`"https://json-schema.org/draft-04/schema# "`, true},
	} {
		ty := oneType(t, schema(c.value))
		_, errs := ty.Record([]byte(`{"a": 6}`))
		if (len(errs) == 0) != c.draft4 {
			t.Errorf("$schema %s: const gives %v, want draft-04: %v", c.value, errs, c.draft4)
		}
	}
	for _, c := range []struct{ value, want string }{
		{`"http://json-schema.org/draft/2020-12/schema"`, "names draft 2020-12"},
		{`"https://json-schema.org/draft/2019-09/schema#"`, "names draft 2019-09"},
		{`"http://json-schema.org/draft-07/schema# x"`, `$schema "http://json-schema.org/draft-07/schema# x" names no draft carpipe validates`},
		{`"http://json-schema.org/draft-07/schema##"`, "names no draft"},
		{`"http://json-schema.org/draft-05/schema#"`, "names no draft"},
		{`"HTTP://JSON-SCHEMA.ORG/draft-07/schema#"`, "names no draft"},
		{`"http://example.com/my-schema#"`, "names no draft"},
		{`""`, `$schema "" names no draft`},
		{`7`, "$schema is number 7, not a URL naming a draft"},
	} {
		err := loadErr(t, schema(c.value))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "t.schema.json") {
			t.Errorf("$schema %s: got %v, want %q", c.value, err, c.want)
		}
	}
	// A file a schema refers to is held to the same rules.
	err := loadErr(t, `{"properties": {"a": {"$ref": "common.json#/definitions/a"}}}`,
		"common.json", `{"$schema": "http://json-schema.org/draft/2020-12/schema", "definitions": {"a": {}}}`)
	if err == nil || !strings.Contains(err.Error(), "common.json: $schema") {
		t.Errorf("referenced file: got %v", err)
	}
	ty := oneType(t, `{"properties": {"a": {"$ref": "common.json#/definitions/a"}}, "x-carpipe": {"on_invalid_record": "skip_record"}}`,
		"common.json", `{"$schema": " https://json-schema.org/draft-04/schema ", "definitions": {"a": {"minimum": 5, "exclusiveMinimum": true}}}`)
	if _, errs := ty.Record([]byte(`{"a": 5}`)); len(errs) != 1 {
		t.Errorf("draft-04 exclusiveMinimum in common.json: %v", errs)
	}
}

// TestFileNames: a schema file's name is taken literally, "%", "#" and
// "+" included, and its refs still resolve.
func TestFileNames(t *testing.T) {
	for _, name := range []string{"a%20b", "x#y", "a+b", "é ü", "q?r", "c:d"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "common.json", `{"definitions": {"id": {"type": "string", "minLength": 2}}}`)
			write(t, dir, name+Suffix, `{"type": "object", "properties": {"id": {"$ref": "common.json#/definitions/id"},
				"n": {"$ref": "#/definitions/n"}}, "definitions": {"n": {"type": "integer"}},
				"x-carpipe": {"key": ["id"], "on_invalid_record": "skip_record"}}`)
			s, err := Load(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ty, _, err := s.Find(name + "_1600000000.json")
			if err != nil || ty == nil || ty.Name() != name {
				t.Fatalf("routes to %v, %v", ty, err)
			}
			if _, errs := ty.Record([]byte(`{"id": "ab", "n": 1}`)); len(errs) > 0 {
				t.Fatal(errs)
			}
			if _, errs := ty.Record([]byte(`{"id": "a", "n": 1.5}`)); len(errs) != 2 {
				t.Fatalf("want errors on id and n: %v", errs)
			}
		})
	}
	// A $ref names a file as a URL does.
	dir := t.TempDir()
	write(t, dir, "a b.json", `{"type": "string"}`)
	write(t, dir, "t.schema.json", `{"properties": {"a": {"$ref": "a%20b.json"}}}`)
	if _, err := Load(dir, Options{}); err != nil {
		t.Fatalf("$ref a%%20b.json: %v", err)
	}
}

// TestFileTimes: a file name's time outside years 0001 to 9999 is an
// error of Route, which still names the type.
func TestFileTimes(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "trip_summary.schema.json", `{"x-carpipe": {"match": "^trip_summary_(?P<timestamp>-?\\d+)\\.json$"}}`)
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want string // the time, or the error
	}{
		{"trip_summary_0.json", "1970-01-01T00:00:00Z"},
		{"trip_summary_253402300799.json", "9999-12-31T23:59:59Z"},
		{"trip_summary_-62135596800.json", "0001-01-01T00:00:00Z"},
		{"trip_summary_99999999999999.json", `file name "trip_summary_99999999999999.json": its time "99999999999999" (unix seconds) is outside years 0001 to 9999`},
		{"trip_summary_253402300800.json", "is outside years 0001 to 9999"},
		{"trip_summary_-62135596801.json", "is outside years 0001 to 9999"},
		{"trip_summary_99999999999999999999999.json", "is outside years 0001 to 9999"},
	} {
		ty, ts, err := s.Route(c.name)
		if ty == nil || ty.Name() != "trip_summary" {
			t.Errorf("%s: type %v", c.name, ty)
			continue
		}
		got := fmt.Sprint(err)
		if err == nil {
			got = ts.Format(time.RFC3339)
		} else if ts != nil {
			t.Errorf("%s: a time %v with the error", c.name, ts)
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
