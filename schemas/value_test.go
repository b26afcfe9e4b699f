package schemas

import (
	"encoding/json"
	"reflect"
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
		"\"caf\xe9\"", "{\"a\xffb\": 1, \"a\xfeb\": 2}", "[\"\xed\xa0\x80\", \"\xf4\x8f\xbc\x80\"]",
		`"\udbff\udfff"`, `"\ud834x\udd1e"`, `{"a": 1, "a": [2, {"b": null}]}`, `-0.0e+00`,
		`{"vehicle_id": "a", "detection_time": "2020-01-01T00:00:00Z", "object_value": 1.0}`,
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
		v, _, _, err := parse(data)
		if err != nil {
			t.Fatalf("parse refuses valid JSON %q: %v", data, err)
		}
		if want, ok := checktest.Decode(data); ok && !reflect.DeepEqual(v, want) {
			t.Fatalf("%q: parse makes %#v, checktest.Decode %#v", data, v, want)
		}
	})
}
