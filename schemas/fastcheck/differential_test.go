package fastcheck

import (
	"encoding/json"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/schemas/internal/checktest"
)

// tally counts verdict pairs of one schema.
type tally struct{ both, slow, invalid int }

// differ checks the one rule on raw: fast valid implies gojsonschema valid.
func differ(t testing.TB, name string, s *testSchema, raw []byte, tl *tally) {
	t.Helper()
	v, ok := checktest.Decode(raw)
	if !ok {
		return
	}
	fv := s.fast.Valid(v)
	gv := checktest.Accepts(s.slow, v)
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

// TestDifferential generates records for every schema, valid ones and
// broken ones, and checks that the fast path never accepts a record
// gojsonschema rejects.
func TestDifferential(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 500
	}
	all := repoSchemas(t)
	for name, text := range fastSchemas {
		all[name] = mustLoad(t, text)
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	var total tally
	for i, name := range names {
		s, g := all[name], checktest.NewGen(int64(i)+1, all[name].doc)
		var tl tally
		for range n {
			raw, err := json.Marshal(g.Record())
			if err != nil {
				t.Fatal(err)
			}
			differ(t, name, s, raw, &tl)
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

// TestRandomSchemas draws schemas from the keywords the fast path knows,
// in every draft, and records for them: the rule must hold for schemas
// nobody wrote by hand too.
func TestRandomSchemas(t *testing.T) {
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
		s, err := load(t, string(text)) // an error: a broken schema
		if err != nil || s.fast == nil {
			continue
		}
		compiled++
		g := checktest.NewGen(int64(i), s.doc)
		for range records {
			raw, _ := json.Marshal(g.Record())
			differ(t, string(text), s, raw, &total)
		}
	}
	t.Logf("%d of %d schemas compiled; fast valid %d, valid but slow %d, invalid %d", compiled, schemas, total.both, total.slow, total.invalid)
	if compiled < schemas/4 {
		t.Errorf("only %d schemas compiled", compiled)
	}
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

// fuzzSchemas are the schemas FuzzFastValidator picks from by index, after
// the shipped ones: keep the order, the corpus depends on it.
var fuzzSchemas = []string{"types", "bounds07", "bounds04", "strings", "enums", "objects", "arrays", "combinators", "refs", "booleans", "nulls", "detections"}

// FuzzFastValidator feeds records, as JSON text, to the fast path and to
// gojsonschema: the fast path must never accept what gojsonschema rejects.
func FuzzFastValidator(f *testing.F) {
	all := shipped(f, ".")
	for _, name := range fuzzSchemas {
		all = append(all, mustLoad(f, fastSchemas[name]))
	}
	for i, s := range all {
		g := checktest.NewGen(int64(i), s.doc)
		for range 8 {
			raw, _ := json.Marshal(g.Record())
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
		s := all[int(which)%len(all)]
		// What schemas' parse makes of data, as FuzzParse there checks.
		v, ok := checktest.Decode(data)
		if !ok {
			return
		}
		if s.fast.Valid(v) && !checktest.Accepts(s.slow, v) {
			t.Fatalf("%s: fast path accepts a record gojsonschema rejects: %s", s.file, data)
		}
	})
}
