package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/schemas/internal/checktest"
)

// FuzzParse holds parse to every valid JSON text, and to the values
// checktest.Decode makes of it: fastcheck's tests check the fast checker
// on those in parse's place.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		"\"caf\xe9\"", "{\"a\xffb\": 1, \"a\xfeb\": 2}", `{"a\u0000": ["\ud800", 1e999999, {"b": "\udc00\u0000"}]}`, "[\"\xed\xa0\x80\", \"\xf4\x8f\xbc\x80\"]",
		`"\udbff\udfff"`, `"\ud834x\udd1e"`, `{"a": 1, "a": [2, {"b": null}]}`, `-0.0e+00`,
		`{"vehicle_id": "a", "detection_time": "2020-01-01T00:00:00Z", "object_value": 1.0}`,
		"[" + strings.Repeat("1 , ", 40) + "2 ]",
	} {
		f.Add([]byte(s))
	}
	for i, ty := range shipped(f, Options{}).Types {
		g := checktest.NewGen(int64(i), checktest.ReadDoc(f, ty.File))
		for range 8 {
			raw, _ := json.Marshal(g.Record())
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		v, sh, odd, err := parse(data, nil)
		if err != nil {
			t.Fatalf("parse refuses valid JSON %q: %v", data, err)
		}
		if errs := diagnose(data); odd != (len(errs) > 0) {
			t.Fatalf("%q: parse finds it odd: %v; diagnose: %v", data, odd, errs)
		}
		var want bytes.Buffer
		json.Compact(&want, data)
		if got := compact(nil, data); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("compact(%q) = %q, want %q", data, got, want.Bytes())
		}
		if got := squeeze(nil, data, &sh); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("squeeze(%q) = %q, want %q", data, got, want.Bytes())
		}
		if in := bytes.Clone(data); !bytes.Equal(squeeze(in[:0], in, &sh), want.Bytes()) {
			t.Fatalf("squeeze(%q) in place = %q, want %q", data, in, want.Bytes())
		}
		if want, ok := checktest.Decode(data); ok && !reflect.DeepEqual(v, want) {
			t.Fatalf("%q: parse makes %#v, checktest.Decode %#v", data, v, want)
		}
	})
}

// TestCounts: the scanner counts each non-empty container's members or
// elements, in the order parse meets them, so that parse makes each map
// and slice once at its size.
func TestCounts(t *testing.T) {
	records := []string{`{"a": [1, 2, {"b": {}, "c": [[], [3]]}], "d": {"e": 1, "e": 2}, "f": []}`, `[]`, `{}`, `1`,
		`[[[1]], {"x": [{"y": 1}, 2, 3]}]`, `{"s": "{[,]}", "t": ",,"}`, `[ 1 , [ 2 , 3 ] ]`}
	file := `{"r": [` + strings.Join(records, ", ") + `]}`
	ty := &Type{Records: "/r", batch: 100}
	s := newScanner(strings.NewReader(file), 1<<20)
	parents, err := ty.seek(s)
	if err != nil {
		t.Fatal(err)
	}
	c := &chunk{}
	if _, err := ty.fill(s, c); err != nil || ty.finish(s, parents) != nil || len(c.raws) != len(records) {
		t.Fatalf("%d records, %v", len(c.raws), err)
	}
	for i, raw := range c.raws {
		if got, want := fmt.Sprint(c.counts[i]), fmt.Sprint(countsOf(raw)); got != want {
			t.Errorf("%s: counts %s, want %s", raw, got, want)
		}
		v, _, _, err := parse(raw, c.counts[i])
		if want, _ := checktest.Decode(raw); err != nil || !reflect.DeepEqual(v, want) {
			t.Errorf("%s: parse with counts makes %#v, %v", raw, v, err)
		}
	}
}

// countsOf counts with encoding/json, which keeps the document's order.
func countsOf(raw []byte) []int32 {
	dec := json.NewDecoder(bytes.NewReader(raw))
	out := []int32{}
	var walk func()
	walk = func() {
		tok, _ := dec.Token()
		d, ok := tok.(json.Delim)
		if !ok {
			return
		}
		slot := len(out)
		out = append(out, 0)
		n := int32(0)
		for dec.More() {
			if d == '{' {
				dec.Token() // the key
			}
			walk()
			n++
		}
		dec.Token()
		if n == 0 {
			out = out[:slot]
		} else {
			out[slot] = n
		}
	}
	walk()
	return out
}
