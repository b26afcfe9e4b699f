package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas/internal/checktest"
)

func TestIdent(t *testing.T) {
	long := "a23456789_123456789_123456789_123456789_123456789_123456789_1234567"
	for in, want := range map[string]string{
		"vehicle_id":  "vehicle_id",
		"Speed km/h":  "speed_km_h",
		"2nd":         "_2nd",
		"":            "_",
		"größe":       "gr__e",
		`quote"d`:     "quote_d",
		"a.b-c":       "a_b_c",
		long:          long[:63],
		"SELECT":      "select",
		"_already_ok": "_already_ok",
	} {
		if got := Ident(in); got != want {
			t.Errorf("Ident(%q) = %q, want %q", in, got, want)
		}
	}
}

func digestOf(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestShippedTables: the shipped types' tables, as the README shows them.
func TestShippedTables(t *testing.T) {
	got := shipped(t, Options{}).Tables()
	want := []plugins.Table{{
		Name: "objects_detection", FileType: "objects_detection",
		Columns: []plugins.Column{
			{Name: "detection_time", Property: "detection_time", Type: plugins.ColTimestamp},
			{Name: "detections", Property: "detections", Type: plugins.ColJSON},
			{Name: "object_type", Property: "object_type", Type: plugins.ColText},
			{Name: "object_value", Property: "object_value", Type: plugins.ColInteger},
			{Name: "vehicle_id", Property: "vehicle_id", Type: plugins.ColText},
		},
		Key: []int{4, 0}, HasTime: true, Digest: digestOf(t, "objects_detection.schema.json"),
	}, {
		Name: "vehicles_status", FileType: "vehicles_status",
		Columns: []plugins.Column{
			{Name: "report_time", Property: "report_time", Type: plugins.ColTimestamp},
			{Name: "status", Property: "status", Type: plugins.ColText},
			{Name: "vehicle_id", Property: "vehicle_id", Type: plugins.ColText},
		},
		Key: []int{2, 0}, HasTime: true, Digest: digestOf(t, "vehicles_status.schema.json"),
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tables\n%+v\nwant\n%+v", got, want)
	}
}

// loadDir loads schema files given as name, content pairs.
func loadDir(t *testing.T, files ...string) (*Set, error) {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		write(t, dir, files[i]+Suffix, files[i+1])
	}
	return Load(dir, Options{})
}

func tableNamesOf(s *Set) []string {
	var names []string
	for _, tb := range s.Tables() {
		names = append(names, tb.Name)
	}
	return names
}

// TestTableNames: a table is named after its type, or by x-carpipe.table;
// carpipe's own tables, and names taken before, make a new one.
func TestTableNames(t *testing.T) {
	plain := `{"type": "object"}`
	named := func(table string) string { return `{"type": "object", "x-carpipe": {"table": "` + table + `"}}` }
	for _, c := range []struct {
		name  string
		files []string // name, schema
		want  []string // table of each type, in name order
	}{
		{"type names", []string{"vehicles_status", plain, "Objects-Detection", plain}, []string{"objects_detection", "vehicles_status"}},
		{"given", []string{"vehicles_status", named("vehicle_status")}, []string{"vehicle_status"}},
		{"carpipe's", []string{"files", plain, "runs", plain, "file_types", plain, "records", plain},
			[]string{"file_types_data", "files_data", "records_data", "runs_data"}},
		// "A-b" sorts first, but "a_b" already is its table's name: it keeps it.
		{"same identifier", []string{"A-b", plain, "a_b", plain, "a.b", plain}, []string{"a_b_2", "a_b_3", "a_b"}},
		{"given wins", []string{"a", plain, "b", named("a")}, []string{"a_2", "a"}},
		{"reserved prefix", []string{"_tmp", plain, "2020", plain}, []string{"t__2020", "t__tmp"}},
		{"long", []string{strings.Repeat("x", 70), plain, strings.Repeat("x", 63) + "y", plain},
			[]string{strings.Repeat("x", 63), strings.Repeat("x", 61) + "_2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := loadDir(t, c.files...)
			if err != nil {
				t.Fatal(err)
			}
			if got := tableNamesOf(s); !slices.Equal(got, c.want) {
				t.Errorf("tables %v, want %v", got, c.want)
			}
		})
	}
}

// TestTableRefused: x-carpipe.table must be a plain identifier of the
// user's, and one type's.
func TestTableRefused(t *testing.T) {
	for table, want := range map[string]string{
		"":                         `table "" is not a plain SQL identifier`,
		"Vehicles":                 `table "Vehicles" is not a plain SQL identifier`,
		"_hidden":                  `table "_hidden" is not a plain SQL identifier`,
		"9lives":                   `table "9lives" is not a plain SQL identifier`,
		"a-b":                      `table "a-b" is not a plain SQL identifier`,
		strings.Repeat("a", 64):    "at most 63 bytes",
		"files":                    `table "files" is one of carpipe's own tables`,
		"records":                  `table "records" is one of carpipe's own tables`,
		"atlas_schema_revisions":   `table "atlas_schema_revisions" is one of carpipe's own tables`,
		"file_types":               `table "file_types" is one of carpipe's own tables`,
		"carpipe_revisions":        `table "carpipe_revisions" is one of carpipe's own tables`,
		"carpipe_migrations":       `table "carpipe_migrations" is one of carpipe's own tables`,
		`x"; drop table files; --`: "not a plain SQL identifier",
	} {
		err := loadErr(t, `{"x-carpipe": {"table": `+strconvQuote(table)+`}}`)
		if err == nil || !strings.Contains(err.Error(), "t.schema.json: x-carpipe: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("table %q: %v, want an error naming the file with %q", table, err, want)
		}
	}
	if err := loadErr(t, `{"x-carpipe": {"table": 5}}`); err == nil || !strings.Contains(err.Error(), "x-carpipe") {
		t.Errorf("table 5: %v", err)
	}
	_, err := loadDir(t, "a", `{"x-carpipe": {"table": "same"}}`, "b", `{"x-carpipe": {"table": "same"}}`)
	if err == nil || !strings.Contains(err.Error(), "a.schema.json and ") || !strings.Contains(err.Error(), `b.schema.json both name table "same"`) {
		t.Errorf("one table for two types: %v", err)
	}
	s, err := loadDir(t, "a", `{"x-carpipe": {"table": "my_table_1"}}`)
	if err != nil || s.Types[0].Table != "my_table_1" {
		t.Fatalf("a plain name: %v", err)
	}
}

func strconvQuote(s string) string {
	var b []byte
	return string(appendQuote(b, s))
}

// TestColumns: a column per declared property, in name order; names that
// are already plain keep them, others map to free ones, and none starts
// with "_", which carpipe's columns do.
func TestColumns(t *testing.T) {
	s, err := loadDir(t, "t", `{"properties": {
		"A": {}, "a": {"type": "integer"}, "a_2": {"type": "boolean"}, "_id": {"type": "number"},
		"p__id": {"type": "string"}, "x": {"type": "string", "format": "email"}, "y": {"type": "array"},
		"ts": {"type": "string", "format": "date-time"}, "o": {"type": "object"}, "mixed": {"type": ["string", "null"]},
		"n": {"type": "null"}, "r": {"$ref": "#/definitions/i"}, "2nd": {"type": "integer"}},
		"definitions": {"i": {"type": "integer"}},
		"x-carpipe": {"key": ["ts", "A"], "time": "ts"}}`)
	if err != nil {
		t.Fatal(err)
	}
	tb := s.Tables()[0]
	want := []plugins.Column{
		{Name: "p__2nd", Property: "2nd", Type: plugins.ColInteger},
		// "A" is not plain, so "a" keeps its name and "A" takes the next free one.
		{Name: "a_3", Property: "A", Type: plugins.ColJSON},
		{Name: "p__id_2", Property: "_id", Type: plugins.ColNumber},
		{Name: "a", Property: "a", Type: plugins.ColInteger},
		{Name: "a_2", Property: "a_2", Type: plugins.ColBoolean},
		{Name: "mixed", Property: "mixed", Type: plugins.ColJSON},
		{Name: "n", Property: "n", Type: plugins.ColJSON},
		{Name: "o", Property: "o", Type: plugins.ColJSON},
		{Name: "p__id", Property: "p__id", Type: plugins.ColText},
		{Name: "r", Property: "r", Type: plugins.ColJSON}, // the type behind a $ref is not looked for
		{Name: "ts", Property: "ts", Type: plugins.ColTimestamp},
		{Name: "x", Property: "x", Type: plugins.ColText},
		{Name: "y", Property: "y", Type: plugins.ColJSON},
	}
	if !slices.Equal(tb.Columns, want) {
		t.Errorf("columns\n%v\nwant\n%v", tb.Columns, want)
	}
	if !slices.Equal(tb.Key, []int{10, 1}) || !tb.HasTime {
		t.Errorf("key %v, has time %v; want [10 1], true", tb.Key, tb.HasTime)
	}
	s, err = loadDir(t, "t", `{"type": "object"}`)
	if err != nil {
		t.Fatal(err)
	}
	if tb := s.Tables()[0]; len(tb.Columns) != 0 || len(tb.Key) != 0 || tb.HasTime {
		t.Errorf("no properties: %+v", tb)
	}
}

// TestKeyDeclared: a key field must be a declared property, as the table's
// unique index is made of its columns.
func TestKeyDeclared(t *testing.T) {
	for _, schema := range []string{
		`{"x-carpipe": {"key": ["id"]}}`,
		`{"properties": {"ID": {}}, "x-carpipe": {"key": ["id"]}}`,
		`{"allOf": [{"properties": {"id": {}}}], "x-carpipe": {"key": ["id"]}}`,
	} {
		err := loadErr(t, schema)
		if err == nil || !strings.Contains(err.Error(), `t.schema.json: x-carpipe: key field "id" must be a declared property of the record schema`) {
			t.Errorf("%s: %v", schema, err)
		}
	}
	// A time needs no column of its own: _event_time holds it.
	if err := loadErr(t, `{"x-carpipe": {"time": "at"}}`); err != nil {
		t.Errorf("an undeclared time without properties: %v", err)
	}
}

// TestDigest: a table's digest is the schema file's, and changes with it.
func TestDigest(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "t.schema.json")
	digest := func() string {
		s, err := Load(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Tables()[0].Digest
	}
	write(t, dir, "t.schema.json", `{"type": "object"}`)
	first := digest()
	if first != digestOf(t, file) || !strings.HasPrefix(first, "sha256:") || len(first) != len("sha256:")+64 {
		t.Errorf("digest %s, want the file's %s", first, digestOf(t, file))
	}
	if again := digest(); again != first {
		t.Errorf("digest %s, then %s", first, again)
	}
	write(t, dir, "t.schema.json", `{"type":  "object"}`)
	if changed := digest(); changed == first || changed != digestOf(t, file) {
		t.Errorf("digest %s after a change, was %s", changed, first)
	}
}

// valuesSchema has a column of each type.
const valuesSchema = `{"type": "object", "properties": {
	"at": {"type": "string", "format": "date-time"}, "ts": {"type": "string", "format": "date-time"},
	"s": {"type": "string"}, "i": {"type": "integer"}, "f": {"type": "number"}, "b": {"type": "boolean"},
	"j": {}, "o": {"type": "object"}, "_u": {"type": "string"}},
	"x-carpipe": {"time": "at", "key": ["s"]}}`

// TestValues: each column's text, as plugins.Col* spells it, and the
// members the schema does not declare.
func TestValues(t *testing.T) {
	ty := oneType(t, valuesSchema)
	// The columns in name order: _u at b f i j o s ts.
	null := plugins.Value{}
	v := func(s string) plugins.Value { return plugins.Value{Text: s, Valid: true} }
	for _, c := range []struct {
		record string
		want   []plugins.Value
		extra  string
	}{
		{`{"s": "k"}`, []plugins.Value{null, null, null, null, null, null, null, v("k"), null}, ""},
		{`{"s": "a\"b\u00e9\n", "_u": "u", "b": false, "i": 42, "f": 1.50e3, "j": "x"}`,
			[]plugins.Value{v("u"), null, v("false"), v("1.50e3"), v("42"), v(`"x"`), null, v("a\"bé\n"), null}, ""},
		// Integers however spelled; numbers as written.
		{`{"s": "k", "i": 1e2, "f": -0.0}`, []plugins.Value{null, null, null, v("-0.0"), v("100"), null, null, v("k"), null}, ""},
		{`{"s": "k", "i": 1.0}`, []plugins.Value{null, null, null, null, v("1"), null, null, v("k"), null}, ""},
		{`{"s": "k", "i": -0}`, []plugins.Value{null, null, null, null, v("0"), null, null, v("k"), null}, ""},
		{`{"s": "k", "i": -9223372036854775808, "b": true}`,
			[]plugins.Value{null, null, v("true"), null, v("-9223372036854775808"), null, null, v("k"), null}, ""},
		{`{"s": "k", "i": 12345678901234567e2}`,
			[]plugins.Value{null, null, null, null, v("1234567890123456700"), null, null, v("k"), null}, ""},
		// Times in UTC, to the microsecond, digits past it truncated as
		// the event time's; the time column is the event time.
		{`{"s": "k", "at": "2020-01-01T01:00:00+01:00", "ts": "2019-12-31T23:30:00.1234567891-00:30"}`,
			[]plugins.Value{null, v("2020-01-01T00:00:00.000000Z"), null, null, null, null, null, v("k"), v("2020-01-01T00:00:00.123456Z")}, ""},
		{`{"s": "k", "ts": "9999-12-31T23:59:59.9999991Z"}`,
			[]plugins.Value{null, null, null, null, null, null, null, v("k"), v("9999-12-31T23:59:59.999999Z")}, ""},
		{`{"s": "k", "ts": "0001-01-01T00:00:00Z"}`,
			[]plugins.Value{null, null, null, null, null, null, null, v("k"), v("0001-01-01T00:00:00.000000Z")}, ""},
		// json: canonical, JSON null kept.
		{`{"s": "k", "j": null, "o": {"z": [1.0, {"d": null, "c": "x\"y\u0001"}], "a": 1e2, "é": true}}`,
			[]plugins.Value{null, null, null, null, null, v("null"), v(`{"a":100,"z":[1,{"c":"x\"y\u0001","d":null}],"é":true}`), v("k"), null}, ""},
		{`{"s": "k", "j": [ ]}`, []plugins.Value{null, null, null, null, null, v("[]"), null, v("k"), null}, ""},
		// Undeclared members: in their order, as written; of a repeated
		// name the last, as for a declared one.
		{`{"z": 1.0, "s": "k", "y": {"b": 2, "a": "\u00e9"}, "Y": [ true ]}`,
			[]plugins.Value{null, null, null, null, null, null, null, v("k"), null}, `{"z":1.0,"y":{"b":2,"a":"\u00e9"},"Y":[true]}`},
		{`{"x": 1, "s": "j", "y": "a,}]\"", "x": {"v": [2]}, "s": "k", "\u0069": 3, "\u0078": 4}`,
			[]plugins.Value{null, null, null, null, v("3"), null, null, v("k"), null}, `{"y":"a,}]\"","\u0078":4}`},
		{`{"s": "k", "x": 1, "x": 2}`, []plugins.Value{null, null, null, null, null, null, null, v("k"), null}, `{"x":2}`},
	} {
		rec, errs := ty.Record([]byte(c.record))
		if len(errs) > 0 {
			t.Errorf("%s: %v", c.record, errs)
			continue
		}
		if !slices.Equal(rec.Values, c.want) {
			t.Errorf("%s: values\n%+v\nwant\n%+v", c.record, rec.Values, c.want)
		}
		if string(rec.Extra) != c.extra || (c.extra == "") != (rec.Extra == nil) {
			t.Errorf("%s: extra %q, want %q", c.record, rec.Extra, c.extra)
		}
	}
}

// TestValuesDecoded: Decode gives each record the values Record does,
// though it compacts the records in place.
func TestValuesDecoded(t *testing.T) {
	ty := oneType(t, valuesSchema)
	records := []string{
		`{ "s" : "a" , "at" : "2020-01-01T00:00:00Z" ,	"ts": "2020-01-01T00:00:00+02:00", "j" : { "x" : [ 1 , 2 ] } , "more" : { "k" : "v" } }`,
		"{\n  \"s\": \"b\",\n  \"i\": 7,\n  \"f\": 0.5,\n  \"b\": true,\n  \"o\": {\"b\": 1, \"a\": 2},\n  \"_u\": \"\\u00e9\"\n}",
		`{"s":"c"}`,
		`{"s": "d", "i": 1e30}`,
		`{ "s" : "e" , "extra" : "x" , "i" : 1e1 }`,
	}
	data := "[" + strings.Join(records, ",\n") + "]"
	recs, rejs, err := decodeAll(t, ty, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || len(rejs) != 1 || rejs[0].Index != 3 || rejs[0].Errors[0].Pointer != "/i" {
		t.Fatalf("%d records, rejects %+v; want 4 records and record 3 rejected at /i", len(recs), rejs)
	}
	for _, rec := range recs {
		want, errs := ty.Record([]byte(records[rec.Index]))
		if errs != nil {
			t.Fatal(errs)
		}
		if !slices.Equal(rec.Values, want.Values) || string(rec.Extra) != string(want.Extra) || string(rec.Payload) != string(want.Payload) {
			t.Errorf("record %d: Decode gives %+v %s %s\nRecord gives %+v %s %s", rec.Index, rec.Values, rec.Extra, rec.Payload, want.Values, want.Extra, want.Payload)
		}
		if len(rec.Values) != 9 || cap(rec.Values) != 9 {
			t.Errorf("record %d: %d values, room for %d; want 9", rec.Index, len(rec.Values), cap(rec.Values))
		}
	}
	if got := recs[0].Values[5].Text; got != `{"x":[1,2]}` {
		t.Errorf("record 0: j is %s", got)
	}
	if got := string(recs[3].Extra); got != `{"extra":"x"}` {
		t.Errorf("record 4: extra %s", got)
	}
}

// TestNotAnObject: a table holds objects; a schema may allow other records,
// but they are errors.
func TestNotAnObject(t *testing.T) {
	ty := oneType(t, `{"x-carpipe": {"on_invalid_record": "skip_record"}}`)
	for _, r := range []string{`[1]`, `"s"`, `5`, `null`} {
		_, errs := ty.Record([]byte(r))
		if len(errs) != 1 || errs[0].Pointer != "" || !strings.Contains(errs[0].Message, "not an object: its table has a column for each property") {
			t.Errorf("%s: %+v", r, errs)
		}
	}
}

// TestValuesGenerated: for generated records, each value reads back as
// the member it spells, and the extra members as themselves.
func TestValuesGenerated(t *testing.T) {
	const schema = `{"type": "object", "properties": {"s": {"type": "string"}, "i": {"type": "integer"},
		"f": {"type": "number"}, "b": {"type": "boolean"}, "t": {"type": "string", "format": "date-time"},
		"j": {}, "o": {"type": "object", "properties": {"n": {"type": "integer"}}}},
		"additionalProperties": true}`
	ty := oneType(t, schema)
	doc, err := decodeDoc([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	g := checktest.NewGen(7, doc)
	r := rand.New(rand.NewSource(7))
	valid, extras := 0, 0
	for range 4000 {
		data, _ := json.Marshal(g.Record())
		if r.Intn(2) == 0 {
			var b bytes.Buffer
			json.Indent(&b, data, "", strings.Repeat(" ", r.Intn(3)))
			data = b.Bytes()
		}
		rec, errs := ty.Record(data)
		if errs != nil {
			continue
		}
		valid++
		v, _ := checktest.Decode(rec.Payload)
		obj := v.(map[string]any)
		for i, c := range ty.cols {
			x, ok := obj[c.Property]
			got := rec.Values[i]
			if !ok || x == nil && c.Type != plugins.ColJSON {
				if got.Valid {
					t.Errorf("%s: %s is %q, want NULL", data, c.Property, got.Text)
				}
				continue
			}
			if !got.Valid || !spells(c.Type, got.Text, x) {
				t.Errorf("%s: %s column %s is %+v", data, c.Type, c.Property, got)
			}
		}
		want := map[string]any{}
		for k, x := range obj {
			if !ty.declared[k] {
				want[k] = x
			}
		}
		if len(want) == 0 {
			if rec.Extra != nil {
				t.Errorf("%s: extra %s, want none", data, rec.Extra)
			}
			continue
		}
		extras++
		if e, ok := checktest.Decode(rec.Extra); !ok || !sameJSON(e, want) {
			t.Errorf("%s: extra %s", data, rec.Extra)
		}
	}
	if valid < 1000 || extras < 300 {
		t.Fatalf("only %d valid records, %d with extra members", valid, extras)
	}
}

// spells reports whether text is how a column of type typ spells x.
func spells(typ, text string, x any) bool {
	switch typ {
	case plugins.ColText:
		return text == x
	case plugins.ColNumber:
		return text == string(x.(json.Number))
	case plugins.ColInteger:
		n, err := strconv.ParseInt(text, 10, 64)
		return err == nil && strconv.FormatInt(n, 10) == text && sameJSON(json.Number(text), x)
	case plugins.ColBoolean:
		return text == strconv.FormatBool(x.(bool))
	case plugins.ColTimestamp:
		want, err := time.Parse(time.RFC3339Nano, x.(string))
		got, err2 := time.Parse(TimeLayout, text)
		return err == nil && err2 == nil && len(text) == len(TimeLayout) && got.Equal(want.Truncate(time.Microsecond))
	}
	y, ok := checktest.Decode([]byte(text))
	return ok && sameJSON(y, x) && string(appendCanonical(nil, y)) == text
}

// sameJSON compares JSON values, numbers by their value.
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, okx := new(big.Rat).SetString(string(x))
		ry, oky := new(big.Rat).SetString(string(y))
		return okx && oky && rx.Cmp(ry) == 0
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, sameJSON)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			if f, ok := y[k]; !ok || !sameJSON(e, f) {
				return false
			}
		}
		return true
	}
	return a == b
}
