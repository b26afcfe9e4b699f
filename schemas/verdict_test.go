package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// oneType loads one schema text as the file type "t", beside more files.
func oneType(t testing.TB, schema string, files ...string) *Type {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		write(t, dir, files[i], files[i+1])
	}
	write(t, dir, "t.schema.json", schema)
	s, err := Load(dir, Options{Workers: 2, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	ty, _, err := s.Find("t_1.json")
	if err != nil || ty == nil {
		t.Fatalf("t_1.json routes to %v, %v", ty, err)
	}
	return ty
}

// verdictSchema holds a time, a date-time beside an integer, a list of
// date-times and a date-time column: every place a date-time is checked;
// and an integer column.
const verdictSchema = `{"type": "object", "properties": {
	"t": {"type": "string", "format": "date-time"},
	"d": {"anyOf": [{"format": "date-time"}, {"type": "integer"}]},
	"list": {"type": "array", "items": {"format": "date-time"}},
	"k": {"type": "string"}, "i": {"type": "integer"}, "u": {"type": "string", "format": "date-time"}},
	"x-carpipe": {"time": "t", "key": ["k"], "on_invalid_record": "skip_record"}}`

// verdictCase is a record, and the error it must get: its pointer and a
// part of its message; ok when it is valid.
type verdictCase struct {
	record  string
	ok      bool
	pointer string
	msg     string
}

var verdictCases = []verdictCase{
	{record: `{"k": "a", "s": "a\u0001b", "e": "\ud83d\ude00"}`, ok: true},
	{`{"k": "a", "s": "a\u0000b"}`, false, "/s", `"s": string contains U+0000, which the databases cannot store`},
	{`{"k": "a", "a\u0000": 1}`, false, "", `member name "a\u0000" contains U+0000, which the databases cannot store`},
	{`{"k": "a", "o": {"x": {"k\u0000": 1}}}`, false, "/o/x", `"x": member name "k\u0000" contains U+0000`},
	{`{"k": "a", "a": [1, {"b": "x\u0000"}]}`, false, "/a/1/b", `"b": string contains U+0000`},
	{`{"k": "a", "s": "\ud800"}`, false, "/s", `"s": string contains an unpaired surrogate`},
	{`{"k": "a", "s": "\udc00x"}`, false, "/s", "unpaired surrogate"},
	{`{"k": "a", "s": "\ud800\u0041"}`, false, "/s", "unpaired surrogate"},
	{`{"k": "a", "s": "\ud800\u0000"}`, false, "/s", "contains U+0000 and an unpaired surrogate"},
	{`{"k": "a", "\udfff": 1}`, false, "", `member name "\udfff" contains an unpaired surrogate`},
	{`{"k": "a", "n": 1e999999}`, false, "/n", `"n": number 1e999999 is beyond what the databases store: at most 131072 digits before the decimal point and 16383 after`},
	{`{"k": "a", "n": -1e999999}`, false, "/n", "number -1e999999 is beyond"},
	{`{"k": "a", "n": 1e-999999}`, false, "/n", "number 1e-999999 is beyond"},
	{`{"k": "a", "n": [1e131072]}`, false, "/n/0", "number 1e131072 is beyond"},
	{record: `{"k": "a", "n": [1e131071, -9.99e131071, 0e999999, 1.000e-16380, 0.1e131072]}`, ok: true},
	{`{"k": "a", "n": 0.0e-99999}`, false, "/n", "is beyond"},
	{`{"k": "a", "n": 1.0000e-16380}`, false, "/n", "is beyond"},
	{`{"k": "a", "n": 0e1073741823}`, false, "/n", "is beyond"},
	{`{"k": "a", "list": [1600000000]}`, false, "/list/0", `does not match format "date-time", got 1600000000`}, // as stock gojsonschema
	{record: `{"k": "a", "t": "0001-01-01T00:00:00Z"}`, ok: true},
	{record: `{"k": "a", "t": "9999-12-31T23:59:59.999999Z"}`, ok: true},
	{record: `{"k": "a", "t": "2020-01-01T00:00:00+15:59"}`, ok: true},
	{record: `{"k": "a", "t": "2020-01-01T00:00:00-15:59"}`, ok: true},
	{`{"k": "a", "t": "0000-01-01T00:00:00Z"}`, false, "/t", `"t": date-time "0000-01-01T00:00:00Z" is outside years 0001 to 9999 (in UTC), which the databases store`},
	{`{"k": "a", "t": "9999-12-31T23:59:59.9999995Z"}`, false, "/t", "outside years 0001 to 9999"},
	{`{"k": "a", "t": "0001-01-01T00:00:00+01:00"}`, false, "/t", "outside years 0001 to 9999 (in UTC)"},
	{`{"k": "a", "t": "9999-12-31T23:00:00-05:00"}`, false, "/t", "outside years 0001 to 9999 (in UTC)"},
	{`{"k": "a", "t": "2020-01-01T00:00:00+16:00"}`, false, "/t", `"t": date-time "2020-01-01T00:00:00+16:00" has UTC offset +16:00, which PostgreSQL cannot read: offsets go from -15:59 to +15:59`},
	{`{"k": "a", "t": "2020-01-01T00:00:00+01:60"}`, false, "/t", "UTC offset +01:60"},
	{record: `{"k": "a", "d": "2020-01-01T00:00:00Z", "list": ["12:00:00", "2020-01-01", "0001-01-01"]}`, ok: true},
	{record: `{"k": "a", "d": 5}`, ok: true},
	{`{"k": "a", "d": "0000-06-01T00:00:00Z"}`, false, "/d", `"d": date-time "0000-06-01T00:00:00Z" is outside years`},
	{`{"k": "a", "list": ["2020-01-01T00:00:00Z", "0000-01-01"]}`, false, "/list/1", `date "0000-01-01" is outside years 0001 to 9999`},
	{`{"k": "a", "list": ["2020-01-01T00:00:00+20:00"]}`, false, "/list/0", "UTC offset +20:00"},
	// A bigint column holds the integer, however it is spelled.
	{record: `{"k": "a", "i": 9223372036854775807}`, ok: true},
	{record: `{"k": "a", "i": -9.223372036854775808e18}`, ok: true},
	{record: `{"k": "a", "i": 1e2}`, ok: true},
	{`{"k": "a", "i": 1e30}`, false, "/i", `"i": integer 1e30 is outside the range a bigint column holds (-9223372036854775808..9223372036854775807)`},
	{`{"k": "a", "i": 9223372036854775808}`, false, "/i", "integer 9223372036854775808 is outside the range a bigint column holds"},
	{`{"k": "a", "i": -92233720368547758090e-1}`, false, "/i", "integer -92233720368547758090e-1 is outside"},
	{`{"k": "a", "i": 1e131071}`, false, "/i", "integer 1e131071 is outside"},
	// A timestamp column holds a date-time, not the bare date or time the
	// format takes.
	{record: `{"k": "a", "u": "2020-01-01T00:00:00.5+01:00"}`, ok: true},
	{`{"k": "a", "u": "2020-01-01"}`, false, "/u", `"u": expected an RFC 3339 time, got "2020-01-01"`},
	{`{"k": "a", "u": "12:00:00"}`, false, "/u", `expected an RFC 3339 time, got "12:00:00"`},
	{`{"k": "a", "u": "0000-12-31T23:00:00Z"}`, false, "/u", `"u": date-time "0000-12-31T23:00:00Z" is outside years`}, // said once
}

// TestOneVerdict: what the databases cannot store is a record error, with
// its pointer and what was expected, on every path: Record, and Decode as
// run and validate use it.
func TestOneVerdict(t *testing.T) {
	ty := oneType(t, verdictSchema)
	var file strings.Builder
	file.WriteString("[")
	for i, c := range verdictCases {
		if i > 0 {
			file.WriteString(",\n")
		}
		file.WriteString(c.record)
		_, errs := ty.Record([]byte(c.record))
		if c.ok {
			if len(errs) > 0 {
				t.Errorf("%s: %v, want valid", c.record, errs)
			}
			continue
		}
		if len(errs) != 1 || errs[0].Pointer != c.pointer || !strings.Contains(errs[0].Message, c.msg) {
			t.Errorf("%s:\n got %+v\nwant pointer %q, message with %q", c.record, errs, c.pointer, c.msg)
		}
		for _, e := range errs {
			if !utf8.ValidString(e.Message) || strings.ContainsRune(e.Message, 0) || strings.ContainsRune(e.Pointer, 0) {
				t.Errorf("%s: error %q at %q is no text the databases take", c.record, e.Message, e.Pointer)
			}
		}
	}
	file.WriteString("]")
	recs, rejs, err := decodeAll(t, ty, file.String())
	if err != nil {
		t.Fatal(err)
	}
	var bad []int
	for i, c := range verdictCases {
		if !c.ok {
			bad = append(bad, i)
		}
	}
	if len(rejs) != len(bad) || len(recs) != len(verdictCases)-len(bad) {
		t.Fatalf("Decode: %d records and %d rejects, want %d and %d", len(recs), len(rejs), len(verdictCases)-len(bad), len(bad))
	}
	for i, rj := range rejs {
		if rj.Index != bad[i] || rj.Errors[0].Pointer != verdictCases[bad[i]].pointer {
			t.Errorf("reject %d: record %d at %q, want record %d at %q", i, rj.Index, rj.Errors[0].Pointer, bad[i], verdictCases[bad[i]].pointer)
		}
	}
}

// TestUnixTimes: a time given in unix seconds is held to the same years.
func TestUnixTimes(t *testing.T) {
	ty := oneType(t, `{"properties": {"u": {"type": "number"}}, "x-carpipe": {"time": "u"}}`)
	for _, c := range []struct {
		sec  string
		want string // the event time; "" for an error
	}{
		{"0", "1970-01-01T00:00:00.000000Z"},
		{"-62135596800", "0001-01-01T00:00:00.000000Z"},
		{"253402300799.5", "9999-12-31T23:59:59.500000Z"},
		{"253402300799.999999", ""}, // float64 makes it 253402300800
		{"-62135596801", ""},
		{"253402300800", ""},
		{"1e300", ""},
		{"-1e300", ""},
		{"1e400", ""},
	} {
		rec, errs := ty.Record([]byte(`{"u": ` + c.sec + `}`))
		switch {
		case c.want == "" && (len(errs) != 1 || errs[0].Pointer != "/u" || !strings.Contains(errs[0].Message, "unix time "+c.sec+" is outside years 0001 to 9999")):
			t.Errorf("%s: %+v, want an error on /u", c.sec, errs)
		case c.want != "" && (len(errs) > 0 || rec.EventTime.Format(TimeLayout) != c.want):
			t.Errorf("%s: %v %v, want %s", c.sec, rec.EventTime, errs, c.want)
		}
	}
}

// TestKeyLength: a key the databases cannot index is the record's error.
func TestKeyLength(t *testing.T) {
	ty := oneType(t, `{"properties": {"k": {}}, "x-carpipe": {"key": ["k"]}}`)
	fits := strings.Repeat("x", maxKey-4) // ["..."]
	if rec, errs := ty.Record([]byte(`{"k": "` + fits + `"}`)); len(errs) > 0 || len(rec.Key) != maxKey {
		t.Fatalf("a key of %d bytes: %v", len(rec.Key), errs)
	}
	_, errs := ty.Record([]byte(`{"k": "` + fits + `x"}`))
	if len(errs) != 1 || errs[0].Pointer != "" || !strings.Contains(errs[0].Message, fmt.Sprintf("key is %d bytes long, more than the %d bytes the databases can index (key fields: k)", maxKey+1, maxKey)) {
		t.Fatalf("got %+v", errs)
	}
}

// TestShow: values in messages are cut at a character, and bytes that are
// not UTF-8 are escaped, never copied.
func TestShow(t *testing.T) {
	ty := oneType(t, `{"properties": {"e": {"enum": ["x"]}, "p": {"pattern": "^z"}}}`)
	long := `"a` + strings.Repeat("é", 40) + `"`
	_, errs := ty.Record([]byte(`{"e": ` + long + `}`))
	if len(errs) != 1 {
		t.Fatalf("got %+v", errs)
	}
	msg := errs[0].Message
	want := `"e": must be one of "x", got "a` + strings.Repeat("é", 27) + `...`
	if msg != want || !utf8.ValidString(msg) {
		t.Errorf("got  %q\nwant %q", msg, want)
	}
	// Record takes any bytes, though files come checked.
	_, errs = ty.Record([]byte("{\"p\": \"a\xffb\xc3\"}"))
	if len(errs) != 1 || !strings.Contains(errs[0].Message, `got "a\xffb\xc3"`) || !utf8.ValidString(errs[0].Message) {
		t.Errorf("got %+v", errs)
	}
	for _, c := range []struct {
		v    any
		want string
	}{
		{"tab\tquote\"nul\x00", `"tab\tquote\"nul\u0000"`},
		{json.Number(strings.Repeat("9", 100)), strings.Repeat("9", 57) + "..."},
		{map[string]any{"b": []any{true, nil}, "a": json.Number("1")}, `{"a":1,"b":[true,null]}`},
		{strings.Repeat("€", 30), `"` + strings.Repeat("€", 18) + `...`},
	} {
		if got := show(c.v); got != c.want || !utf8.ValidString(got) {
			t.Errorf("show(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestNumberKeys: a key holds a number's exact value, so equal numbers
// make equal keys and different numbers different ones.
func TestNumberKeys(t *testing.T) {
	ty := oneType(t, `{"properties": {"n": {}}, "x-carpipe": {"key": ["n"]}}`)
	key := func(n string) string {
		rec, errs := ty.Record([]byte(`{"n": ` + n + `}`))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", n, errs)
		}
		return rec.Key
	}
	for _, c := range []struct {
		same []string
		key  string
	}{
		{[]string{"1", "1.0", "1e0", "10e-1", "0.1e1", "1.000E+0"}, "[1]"},
		{[]string{"0", "-0", "0.0", "-0.0e5", "0e-7"}, "[0]"},
		{[]string{"12345678901234567890", "1234567890123456789e1", "12345678901234567890.000"}, "[12345678901234567890]"},
		{[]string{"12345678901234567891"}, "[12345678901234567891]"},
		{[]string{"0.1", "1e-1", "0.10"}, "[0.1]"},
		{[]string{"0.10000000000000000001"}, "[0.10000000000000000001]"},
		{[]string{"1e21", "100000000000000000000e1"}, "[1000000000000000000000]"},
		{[]string{"-2.5", "-25e-1"}, "[-2.5]"},
		{[]string{"0.0001"}, "[0.0001]"},
		{[]string{"0.00001", "1e-5"}, "[1e-05]"},
		{[]string{"1.5e-7"}, "[1.5e-07]"},
		{[]string{"1234567.5"}, "[1.2345675e+06]"},
		{[]string{"123456.5"}, "[123456.5]"},
		{[]string{"1e-400"}, "[1e-400]"}, // float64 made it 0
		{[]string{"-1.00000000000000001"}, "[-1.00000000000000001]"},
	} {
		for _, n := range c.same {
			if got := key(n); got != c.key {
				t.Errorf("%s: key %s, want %s", n, got, c.key)
			}
		}
	}
}

// TestNumberTexts holds appendNumber to its promise on random numbers:
// one text per value (compared as big.Rat), and the text float64 gave
// wherever float64 held the number exactly.
func TestNumberTexts(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	texts := map[string]string{} // by value
	spell := func(digits string, exp int) string {
		// digits × 10^exp, written one of several ways.
		switch r.Intn(3) {
		case 0:
			return digits + "e" + strconv.Itoa(exp)
		case 1:
			return fmt.Sprintf("0.%sE%+d", digits, exp+len(digits))
		}
		k := len(digits) + exp
		switch {
		case exp >= 0:
			return digits + strings.Repeat("0", exp)
		case k > 0:
			return digits[:k] + "." + digits[k:]
		}
		return "0." + strings.Repeat("0", -k) + digits
	}
	for range 20000 {
		digits := strconv.Itoa(1 + r.Intn(9))
		for range r.Intn(25) {
			digits += strconv.Itoa(r.Intn(10))
		}
		exp := r.Intn(60) - 40
		n := spell(digits, exp)
		if r.Intn(2) == 0 {
			n = "-" + n
		}
		text := string(appendNumber(nil, n))
		rat, ok := new(big.Rat).SetString(n)
		if !ok {
			t.Fatalf("%s: no number", n)
		}
		if back, ok := new(big.Rat).SetString(text); !ok || back.Cmp(rat) != 0 {
			t.Fatalf("%s: text %s is another number", n, text)
		}
		value := rat.RatString()
		if prev, ok := texts[value]; ok && prev != text {
			t.Fatalf("%s: text %s, and %s for the same value", n, text, prev)
		}
		texts[value] = text
		// What keys were when numbers went through float64.
		var old string
		if rat.IsInt() {
			old = rat.Num().String()
		} else {
			f, _ := rat.Float64()
			old = strconv.FormatFloat(f, 'g', -1, 64)
		}
		if f, exact := rat.Float64(); exact && !math.IsInf(f, 0) && text != old {
			t.Fatalf("%s: text %s, float64 gave %s", n, text, old)
		}
	}
	// Shortest float64 texts, which JSON writers make, keep their keys.
	for range 20000 {
		f := math.Float64frombits(r.Uint64())
		if math.IsInf(f, 0) || math.IsNaN(f) || f == math.Trunc(f) {
			continue
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if got := string(appendNumber(nil, s)); got != s {
			t.Fatalf("%s: text %s", s, got)
		}
	}
}
