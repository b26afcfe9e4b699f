package fastcheck

import (
	"encoding/json"
	"math/big"
	"math/rand"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"
)

// stockCheckers is gojsonschema v1.2.0's FormatCheckers as it ships.
var stockCheckers = map[string]gojsonschema.FormatChecker{
	"date": gojsonschema.DateFormatChecker{}, "time": gojsonschema.TimeFormatChecker{},
	"date-time": gojsonschema.DateTimeFormatChecker{}, "hostname": gojsonschema.HostnameFormatChecker{},
	"email": gojsonschema.EmailFormatChecker{}, "idn-email": gojsonschema.EmailFormatChecker{},
	"ipv4": gojsonschema.IPV4FormatChecker{}, "ipv6": gojsonschema.IPV6FormatChecker{},
	"uri": gojsonschema.URIFormatChecker{}, "uri-reference": gojsonschema.URIReferenceFormatChecker{},
	"iri": gojsonschema.URIFormatChecker{}, "iri-reference": gojsonschema.URIReferenceFormatChecker{},
	"uri-template": gojsonschema.URITemplateFormatChecker{}, "uuid": gojsonschema.UUIDFormatChecker{},
	"regex": gojsonschema.RegexFormatChecker{}, "json-pointer": gojsonschema.JSONPointerFormatChecker{},
	"relative-json-pointer": gojsonschema.RelativeJSONPointerFormatChecker{},
}

// formatProbes are values of every kind gojsonschema hands its checkers.
var formatProbes = []any{
	"2020-01-01T00:00:00Z", "2020-01-01T00:00:00.123456789+01:00", "2020-01-01", "12:00:00", "12:00:00Z",
	"12:00:00+01:00", "2020-01-01T00:00:00", "2020-02-30T00:00:00Z", "0000-01-01T00:00:00Z", "",
	"a@b.c", "1.2.3.4", "::1", "http://x/y", "/a/b", "0/a", "example.com", "[a-z]+", "(",
	"f47ac10b-58cc-4372-a567-0e02b2c3d479", "{x}",
	new(big.Rat).SetInt64(1600000000), new(big.Rat).SetFrac64(1, 3), json.Number("1600000000"),
	float64(1600000000), 1600000000, true, nil, map[string]any{}, []any{},
}

// TestStockFormatCheckers: with the package imported, gojsonschema's
// FormatCheckers judge as the stock ones do, and the mandated validator
// refuses a number under "date-time".
func TestStockFormatCheckers(t *testing.T) {
	for name, stock := range stockCheckers {
		if !gojsonschema.FormatCheckers.Has(name) {
			t.Errorf("format %q is gone", name)
		}
		for _, p := range formatProbes {
			if got, want := gojsonschema.FormatCheckers.IsFormat(name, p), stock.IsFormat(p); got != want {
				t.Errorf("format %q on %#v: %v, stock %v", name, p, got, want)
			}
		}
	}
	s := mustLoad(t, `{"properties": {"t": {"format": "date-time"}}}`)
	for _, c := range []struct {
		record string
		want   bool
	}{
		{`{"t": 1600000000}`, false}, {`{"t": 1.5}`, false}, {`{"t": "2020-01-01T00:00:00Z"}`, true},
		{`{"t": "2020-01-01"}`, true}, {`{"t": "12:00:00"}`, true}, {`{"t": "yesterday"}`, false},
		{`{"t": null}`, true}, {`{"t": true}`, true}, {`{"t": {}}`, true},
	} {
		var v any
		d := json.NewDecoder(strings.NewReader(c.record))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		res, err := s.slow.Validate(gojsonschema.NewRawLoader(v))
		if err != nil || res.Valid() != c.want {
			t.Errorf("gojsonschema on %s: valid %v (%v), stock v1.2.0 says %v", c.record, res.Valid(), err, c.want)
		}
		if got := s.fast.Valid(v); got != c.want {
			t.Errorf("fast path on %s: %v, want %v", c.record, got, c.want)
		}
	}
}

// dateTimeCases are the edges where layouts part.
var dateTimeCases = []string{
	"2020-01-01T00:00:00Z", "2020-01-01T00:00:00z", "2020-01-01t00:00:00Z", "2020-01-01 00:00:00Z",
	"2020-01-01T00:00:00.5Z", "2020-01-01T00:00:00.Z", "2020-01-01T00:00:00.123456789123Z",
	"2020-01-01T00:00:00+01:00", "2020-01-01T00:00:00+0100", "2020-01-01T00:00:00+24:00", "2020-01-01T00:00:00+01:60",
	"2020-01-01T00:00:00", "2020-01-01T24:00:00Z", "2020-12-31T23:59:60Z", "2020-02-29T00:00:00Z", "2019-02-29T00:00:00Z",
	"2020-13-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
	"2020-01-01", "2020-1-01", "20200101", "12:00:00", "12:00:00Z", "12:00:00.5+01:00", "12:00", "25:00:00", "12:00:00 ",
	" 2020-01-01", "2020-01-01T00:00:00Z\n", "", "T", "Z", "2020-01-01T00:00:00ZZ", "２０２０-01-01",
}

// TestDateTimeStock: DateTime, which the fast path calls, is the stock
// checker on strings, and stock refuses every non-string.
func TestDateTimeStock(t *testing.T) {
	stock := gojsonschema.DateTimeFormatChecker{}
	r := rand.New(rand.NewSource(5))
	cases := append([]string{}, dateTimeCases...)
	// Mutations of the cases: a character dropped, doubled or replaced.
	for range 20000 {
		s := []byte(dateTimeCases[r.Intn(len(dateTimeCases))])
		if len(s) == 0 {
			continue
		}
		i := r.Intn(len(s))
		switch r.Intn(3) {
		case 0:
			s = append(s[:i], s[i+1:]...)
		case 1:
			s = append(s[:i+1], s[i:]...)
		case 2:
			s[i] = "0123456789:-+.TZtz "[r.Intn(19)]
		}
		cases = append(cases, string(s))
	}
	accepted := 0
	for _, s := range cases {
		got, want := DateTime(s), stock.IsFormat(s)
		if got != want {
			t.Errorf("%q: DateTime %v, stock %v", s, got, want)
		}
		if got {
			accepted++
		}
	}
	if accepted == 0 || accepted == len(cases) {
		t.Fatalf("%d of %d accepted: the cases do not cover both answers", accepted, len(cases))
	}
	for _, p := range formatProbes {
		if _, isStr := p.(string); !isStr && stock.IsFormat(p) {
			t.Errorf("stock date-time accepts %#v", p)
		}
	}
	if !stockDateTimeInChain() {
		t.Fatal("the chain's date-time is not the stock one")
	}
}

func FuzzDateTime(f *testing.F) {
	for _, s := range dateTimeCases {
		f.Add(s)
	}
	stock := gojsonschema.DateTimeFormatChecker{}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := DateTime(s), stock.IsFormat(s); got != want {
			t.Fatalf("%q: DateTime %v, stock %v", s, got, want)
		}
	})
}
