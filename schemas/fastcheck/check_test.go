package fastcheck

import (
	"testing"

	"github.com/carpipe/carpipe/schemas/internal/checktest"
)

// TestEdges pins exact verdicts on gojsonschema's quirks: both
// validators must agree, so each case also shows the fast path is taken.
func TestEdges(t *testing.T) {
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
		{"strings", `{"t": "2020-01-01"}`, true}, // stock "date-time" takes a bare date
		{"strings", `{"t": "12:00:00"}`, true},   // and a bare time
		{"strings", `{"t": "2020-01-01T00:00"}`, false},
		{"strings", `{"t": 5}`, false}, // and no number
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
	schemas := map[string]*testSchema{}
	for name, text := range fastSchemas {
		schemas[name] = mustLoad(t, text)
	}
	for _, c := range cases {
		s := schemas[c.schema]
		v, ok := checktest.Decode([]byte(c.record))
		if !ok {
			t.Fatalf("cannot decode %s", c.record)
		}
		if g := checktest.Accepts(s.slow, v); g != c.want {
			t.Errorf("%s %s: gojsonschema says %v, the test %v", c.schema, c.record, g, c.want)
		}
		if f := s.fast.Valid(v); f != c.want {
			t.Errorf("%s %s: fast says %v, want %v", c.schema, c.record, f, c.want)
		}
	}
}
