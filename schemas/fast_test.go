package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/schemas/internal/checktest"
)

// The fast checker's own tests are in fastcheck; these need Load, Record
// and parse.

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

// TestFastCompiles: Load gives every schema the repository ships or tests
// with a fast checker.
func TestFastCompiles(t *testing.T) {
	for name, ty := range repoSchemas(t) {
		if ty.fast == nil {
			t.Errorf("%s: shipped schema has no fast checker", name)
		}
	}
}

// TestFastRecordUnchanged runs Record with and without the fast path: the
// records, keys and error reports must be the same.
func TestFastRecordUnchanged(t *testing.T) {
	for name, ty := range repoSchemas(t) {
		slow := *ty
		slow.fast = nil
		g := checktest.NewGen(7, checktest.ReadDoc(t, ty.File))
		for range 1000 {
			raw, _ := json.Marshal(g.Record())
			r1, e1 := ty.Record(raw)
			r2, e2 := slow.Record(raw)
			if !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(e1, e2) {
				t.Fatalf("%s %s:\nfast %+v %v\nslow %+v %v", name, raw, r1, e1, r2, e2)
			}
		}
	}
}

// canonical is how the release before typed tables wrote keys; keys it
// stored must still match.
func canonical(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			canonical(buf, k)
			buf.WriteByte(':')
			canonical(buf, x[k])
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			canonical(buf, e)
		}
		buf.WriteByte(']')
	case json.Number:
		buf.Write(appendNumber(buf.AvailableBuffer(), string(x)))
	case string:
		if needsEscape(x) {
			enc := json.NewEncoder(buf)
			enc.SetEscapeHTML(false)
			enc.Encode(x)
			buf.Truncate(buf.Len() - 1) // Encode's newline
			return
		}
		buf.WriteString(`"` + x + `"`)
	default:
		b, _ := json.Marshal(x)
		buf.Write(b)
	}
}

// TestKeyUnchanged holds appendCanonical, which writes keys and json
// columns, to the released spelling of keys.
func TestKeyUnchanged(t *testing.T) {
	g := checktest.NewGen(3, nil)
	extra := []any{"plain", "quo\"te", "back\\slash", "tab\t", "<&>", "é€𝄞", json.Number("1.0"), json.Number("-0"),
		json.Number("12345678901234567890"), json.Number("1e2"), json.Number("9223372036854775807")}
	for i := range 3000 {
		var v any
		if i < len(extra) {
			v = extra[i]
		} else {
			v = g.Any()
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
			v, _, _, _ := parse(raw, nil)
			if f, g := ty.fast.Valid(v), checktest.Accepts(ty.schema, v); f != g {
				t.Errorf("%s: fast %v, gojsonschema %v: %s", file, f, g, raw)
			}
		}
		if len(raws) == 0 {
			t.Errorf("%s: no records", file)
		}
	}
}
