package schemas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/carpipe/carpipe/plugins"
)

// rawType rejects every record, so that its rejects show the raw records
// and their offsets as the decoder cut them.
func rawType(t testing.TB, ptr string) *Type {
	t.Helper()
	dir := t.TempDir()
	schema := fmt.Sprintf(`{"not": {}, "x-carpipe": {"records": %q, "on_invalid_record": "skip_record"}}`, ptr)
	if err := os.WriteFile(filepath.Join(dir, "t.schema.json"), []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir, Options{Workers: 2, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	ty, _, _ := s.Find("t_1.json")
	return ty
}

type cutResult struct {
	raws [][]byte
	offs []int64
	err  error
}

// cutAll decodes data read through wrap, which may cut it in small reads.
func cutAll(ty *Type, data []byte, wrap func(io.Reader) io.Reader) cutResult {
	var res cutResult
	res.err = ty.Decode(context.Background(), func() (io.ReadCloser, error) {
		return io.NopCloser(wrap(bytes.NewReader(data))), nil
	}, plugins.Limits{}, func(b plugins.Batch) error {
		for _, rj := range b.Rejects {
			res.raws = append(res.raws, rj.Payload)
			res.offs = append(res.offs, rj.Offset)
		}
		return nil
	})
	return res
}

func whole(r io.Reader) io.Reader { return r }

var bom = []byte("\xEF\xBB\xBF")

// expected is what encoding/json makes of a file whose records are at
// /r, or at the root when root is set.
type expected struct {
	empty  bool
	errOff int64 // the first invalid byte; -1 for valid JSON
	shape  bool  // valid JSON, but no array at the pointer
	raws   [][]byte
	offs   []int64
}

func oracle(file []byte, root bool) expected {
	body, skipped := file, int64(0)
	if bytes.HasPrefix(file, bom) {
		body, skipped = file[3:], 3
	}
	if len(bytes.Trim(body, " \t\r\n")) == 0 {
		return expected{empty: true}
	}
	e := expected{errOff: -1}
	if i := invalidUTF8(body); i >= 0 {
		e.errOff = skipped + int64(i)
	}
	if off := syntaxAt(body); off >= 0 {
		if off == int64(len(body)) {
			off = int64(len(file)) // the end of the file
		} else {
			off += skipped
		}
		if e.errOff < 0 || off < e.errOff {
			e.errOff = off
		}
	}
	if e.errOff >= 0 {
		return e
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if !root && (!toMember(dec, "r") || members(body, "r") > 1) {
		e.shape = true // no records, or two arrays that could hold them
		return e
	}
	if tok, _ := dec.Token(); tok != json.Delim('[') {
		e.shape = true
		return e
	}
	for dec.More() {
		at := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			panic(err)
		}
		e.raws = append(e.raws, raw)
		e.offs = append(e.offs, skipped+at)
	}
	return e
}

// syntaxAt is where encoding/json finds b invalid: len(b) when it ends too
// early, -1 when it is valid.
func syntaxAt(b []byte) int64 {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	err := dec.Decode(&raw)
	var se *json.SyntaxError
	switch {
	case err == io.ErrUnexpectedEOF:
		return int64(len(b))
	case errors.As(err, &se):
		return se.Offset - 1 // a fresh decoder counts from 1
	case err != nil:
		panic(err)
	}
	rest := b[dec.InputOffset():]
	if i := len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")); i < len(rest) {
		return dec.InputOffset() + int64(i)
	}
	return -1
}

func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// toMember moves dec to the value of the root object's first member key.
func toMember(dec *json.Decoder, key string) bool {
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return false
	}
	for dec.More() {
		if k, _ := dec.Token(); k == key {
			return true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			panic(err)
		}
	}
	return false
}

// members counts the root object's members named key.
func members(body []byte, key string) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return 0
	}
	n := 0
	for dec.More() {
		if k, _ := dec.Token(); k == key {
			n++
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			panic(err)
		}
	}
	return n
}

// compare checks the decoder against encoding/json on one file.
func compare(t *testing.T, ty *Type, file []byte, root bool, wrap func(io.Reader) io.Reader) {
	t.Helper()
	want := oracle(file, root)
	got := cutAll(ty, file, wrap)
	var se *SyntaxError
	isSyntax := errors.As(got.err, &se)
	switch {
	case want.empty:
		if !errors.Is(got.err, ErrEmpty) {
			t.Fatalf("%q: got %v, want ErrEmpty", file, got.err)
		}
	case want.errOff >= 0 && isSyntax:
		if se.Offset != want.errOff {
			t.Fatalf("%q: error at %d, encoding/json at %d: %v", file, se.Offset, want.errOff, got.err)
		}
	case want.errOff >= 0 && got.err != nil:
		// A misplaced or missing records array is refused before the
		// syntax error is reached.
		if !notArray(file, root) {
			t.Fatalf("%q: got %v, want a syntax error at %d", file, got.err, want.errOff)
		}
	case want.errOff >= 0:
		t.Fatalf("%q: accepted, encoding/json refuses it at %d", file, want.errOff)
	case want.shape:
		if got.err == nil || isSyntax {
			t.Fatalf("%q: got %v, want the records array not found", file, got.err)
		}
	case got.err != nil:
		t.Fatalf("%q: got %v, want %d records", file, got.err, len(want.raws))
	default:
		if len(got.raws) != len(want.raws) {
			t.Fatalf("%q: %d records, want %d", file, len(got.raws), len(want.raws))
		}
		for i := range got.raws {
			if !bytes.Equal(got.raws[i], want.raws[i]) || got.offs[i] != want.offs[i] {
				t.Fatalf("%q: record %d is %q at %d, want %q at %d", file, i, got.raws[i], got.offs[i], want.raws[i], want.offs[i])
			}
		}
	}
}

// notArray reports whether the value at the pointer surely is no array.
func notArray(file []byte, root bool) bool {
	if !root {
		return true // the walk to /r may stop early
	}
	b := bytes.TrimLeft(bytes.TrimPrefix(file, bom), " \t\r\n")
	return len(b) > 0 && b[0] != '['
}

// fuzzSeeds are hand cases; the testdata files come on top.
var fuzzSeeds = []string{
	`[]`, ` [ ] `, `[{}]`, `[1,2,3]`, `[ 1 , "a" , null , true , false , [] , {} ]`,
	`[-0, 0.5e+10, 1E-2, -12.34e5, 123456789012345678901234567890]`,
	`["\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00", "é€😀"]`,
	`[01]`, `[1.]`, `[.5]`, `[+1]`, `[1e]`, `[1e+]`, `[-]`, `[--1]`, `[0x10]`,
	`[tru]`, `[nul]`, `[falsy]`, `[True]`, `[NaN]`,
	"[\"a\x01\"]", `["\x"]`, `["\u12g4"]`, `["\u12"]`, `["abc`, `["\`,
	`[1,]`, `[,1]`, `[1 2]`, `[1}`, `[{]`, `[{"a"}]`, `[{"a":}]`, `[{"a":1,}]`, `[{,}]`, `[{"a" 1}]`,
	`[{"a":1 "b":2}]`, `[{"a":1,"a":2}]`, `[[[[[]]]]]`, `[[[[[]]]]`, `[] x`, `[] []`, `[]]`,
	"[\"\xff\"]", "[\"caf\xe9\"]", "[\xc3\xa9]", "\xEF\xBB\xBF[1]", "\xEF\xBB[1]", "[1] \xff",
	`{"r": [1]}`, `{"r": {}}`, `{"r": "x"}`, `{"r": 1x}`, `{"a": [1,], "r": []}`, `{"r": [], "z": [1,]}`,
	`{"r"`, `{"r":`, `{"r": [`, `{"r": [1`, `{"r": [1,`, `{"r": []`, `{"r": [],`, `{"r": [], "z"`,
	`{"r\u0000": 1, "\u0072": [2]}`, `{"x": 1, "r": [3], "r": [4]}`, `{"r": [] } x`,
	"", " ", "\n\t\r ", "\xEF\xBB\xBF", "\xEF\xBB\xBF \n",
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(2))
	}
	files, _ := filepath.Glob("../testdata/*/*/*.json")
	more, _ := filepath.Glob("../testdata/*/*/*/*.json")
	for _, name := range append(files, more...) {
		if strings.HasSuffix(name, Suffix) {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(2))
		if i := bytes.IndexByte(data, '['); i >= 0 {
			f.Add(data[i:], uint8(0)) // the records array and what follows
		}
	}
	root, member := rawType(f, ""), rawType(f, "/r")
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		ty, file, isRoot := root, data, true
		switch mode % 3 {
		case 1: // records in the middle of a document
			ty, isRoot = member, false
			file = append(append([]byte(`{"a": [1, {"b": 2}], "r": `), data...), `, "z": {"y": []}}`...)
		case 2: // any document, records at /r
			ty, isRoot = member, false
		}
		compare(t, ty, file, isRoot, whole)
		compare(t, ty, file, isRoot, iotest.OneByteReader)
	})
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	root, member := rawType(t, ""), rawType(t, "/r")
	for _, s := range fuzzSeeds {
		for _, wrap := range []func(io.Reader) io.Reader{whole, iotest.OneByteReader, iotest.HalfReader} {
			compare(t, root, []byte(s), true, wrap)
			compare(t, member, []byte(s), false, wrap)
		}
	}
}

// TestSyntaxErrors pins the offsets and messages of syntax errors; every
// offset is that of the offending byte, as encoding/json reports it.
func TestSyntaxErrors(t *testing.T) {
	ty, _, _ := shipped(t, Options{}).Find("vehicles_status_1600000000.json")
	cases := []struct {
		data string
		off  int64
		msg  string
	}{
		{`{"vehicle_status": [{"a":1}, {"b":1,,}]}`, 36, "invalid character ',' looking for beginning of object key string"},
		{`{"vehicle_status": [{"a":1} , {"b":1}, {"c":tru}]}`, 47, "invalid character '}' in literal true (expecting 'e')"},
		{`{"vehicle_status": tru}`, 22, "invalid character '}' in literal true (expecting 'e')"},
		{`{"vehicle_status": "ab\x"}`, 23, "invalid character 'x' in string escape code"},
		{`{"vehicle_status": [{"a":1}, {"b":1}} ]}`, 36, "invalid character '}' after array element"},
		{`{"vehicle_status": [{"a":1}, {"b":1}] ]}`, 38, "invalid character ']' after object key:value pair"},
		{`{"vehicle_status": [} ]}`, 20, "invalid character '}' looking for beginning of value"},
		{`{"vehicle_status": [1x]}`, 21, "expected comma after array element"},
		{`{"vehicle_status": [01]}`, 21, "expected comma after array element"},
		{`{"vehicle_status": [1,]}`, 22, "invalid character ']' looking for beginning of value"},
		{`{"vehicle_status": [,1]}`, 20, "invalid character ',' looking for beginning of value"},
		{`{"vehicle_status": [1] , }`, 25, "invalid character '}' looking for beginning of object key string"},
		{`{"vehicle_status": [1] , "x": [1,2,] }`, 35, "invalid character ']' looking for beginning of value"},
		{`{"x": [1,2,], "vehicle_status": [1] }`, 11, "invalid character ']' looking for beginning of value"},
		{`{"x": [1,2], "vehicle_status": [1] } x`, 37, "unexpected data after the end of the JSON document"},
		{`{"vehicle_status": [1]}, `, 23, "unexpected data after the end of the JSON document"},
		{"{\"x\": [1,2], \"vehicle_status\": [1] } \xff", 37, "invalid UTF-8"},
		{"{\"vehicle_status\": [\"a\xc3\"]}", 22, "invalid UTF-8"},
		{"{\"vehicle_status\": [\xc3\xa9]}", 20, "invalid character 'Ã' looking for beginning of value"},
		{"{\"vehicle_status\": [\"a\x01\"]}", 22, `invalid character '\x01' in string literal`},
		{`{"x": [1,2], "vehicle_status": [1] `, 35, "unexpected end of file"},
		{`{"x": [1,2], "vehicle_status": [1`, 33, "unexpected end of file"},
		{`{"x": [1,2], "vehicle_status": [{"a":`, 37, "unexpected end of file"},
		{`{"x": [1,2], "vehicle_status"`, 29, "unexpected end of file"},
		{`{"x": [1,2], "vehicle_status" 1`, 30, "invalid character '1' after object key"},
		{`{"x": [1,2] "y": 1}`, 12, `invalid character '"' after object key:value pair`},
		{`{"vehicle_status": [-]}`, 21, "invalid character ']' in numeric literal"},
		{`{"vehicle_status": [1.]}`, 22, "invalid character ']' after decimal point in numeric literal"},
		{`{"vehicle_status": [1e+]}`, 23, "invalid character ']' in exponent of numeric literal"},
		{`{"vehicle_status": [1, "\u12x4"]}`, 28, `invalid character 'x' in \u hexadecimal character escape`},
		{`{"vehicle_status": [nulx]}`, 23, "invalid character 'x' in literal null (expecting 'l')"},
		{` x`, 1, "invalid character 'x' looking for beginning of value"},
		{`{,`, 1, "invalid character ',' looking for beginning of object key string"},
		{"\xEF\xBB\xBF{\"vehicle_status\": [1,]}", 25, "invalid character ']' looking for beginning of value"},
		{"\xEF\xBB{}", 0, "invalid UTF-8"},
	}
	for _, c := range cases {
		_, _, err := decodeAll(t, ty, c.data)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Offset != c.off || se.Msg != c.msg {
			t.Errorf("%q: got %v, want byte %d: %s", c.data, err, c.off, c.msg)
		}
	}
}

// TestReadBoundaries cuts records read one byte at a time, or in big
// records and long strings across the buffer, as it cuts them in one read.
func TestReadBoundaries(t *testing.T) {
	ty := rawType(t, "/r")
	big := `{"s": "` + strings.Repeat("é€😀 \\ \u00e9 ", 20000) + `", "n": [` + strings.Repeat("-1.5e+3, ", 20000) + `0]}`
	if len(big) < 2*bufSize {
		t.Fatal("big record fits the buffer")
	}
	files := []string{
		"\xEF\xBB\xBF{\"r\": [" + big + ", " + big + "]}",
		`{"r": [` + strings.Repeat(`{"id": "véhicule-€-😀", "n": 12.5e-3, "ok": true, "x": null}, `, 3000) + `1]}`,
		`{"r": [` + big + `, {"a": tru}]}`,
	}
	for _, file := range files {
		want := oracle([]byte(file), false)
		got := cutAll(ty, []byte(file), iotest.OneByteReader)
		if want.errOff < 0 && (got.err != nil || len(got.raws) != len(want.raws)) {
			t.Fatalf("got %d records, %v; want %d", len(got.raws), got.err, len(want.raws))
		}
		for _, wrap := range []func(io.Reader) io.Reader{whole, iotest.OneByteReader, iotest.HalfReader} {
			compare(t, ty, []byte(file), false, wrap)
		}
	}
}

// TestDepth keeps encoding/json's nesting limit, counted from the root.
func TestDepth(t *testing.T) {
	ty := rawType(t, "/r")
	for _, depth := range []int{10000, 10001} {
		n := depth - 2 // the root object and the records array
		file := `{"r": [` + strings.Repeat(`[{"a":`, n/2) + strings.Repeat("[", n%2) + "1" +
			strings.Repeat("]", n%2) + strings.Repeat("}]", n/2) + `]}`
		_, _, err := decodeAll(t, ty, file)
		if valid := json.Valid([]byte(file)); valid != (err == nil) {
			t.Fatalf("depth %d: got %v, encoding/json valid: %v", depth, err, valid)
		}
		compare(t, ty, []byte(file), false, whole)
	}
}

// TestDuplicateRecordsMember: a second member of a name on the records
// pointer's path fails the file, naming the member and where it is; a
// repeated name elsewhere is no one's concern.
func TestDuplicateRecordsMember(t *testing.T) {
	cases := []struct {
		ptr, file string
		want      string // "" when the file loads
	}{
		{"/vehicle_status", `{"vehicle_status": [1], "vehicle_status": [2]}`,
			`at line 1, column 25 (byte 24): member "vehicle_status" appears twice in an object on the records pointer /vehicle_status; carpipe cannot tell which holds the records`},
		{"/vehicle_status", "{\"vehicle_status\": [1],\n  \"x\": {},\n  \"vehicle_status\": 5}", `at line 3, column 3 (byte 37): member "vehicle_status"`},
		{"/r", `{"r": [1], "\u0072": [2]}`, `member "r" appears twice`},
		{"/a/b", `{"a": {"b": [1], "c": 1, "b": [2]}}`, `member "b" appears twice in an object on the records pointer /a/b`},
		{"/a/b", `{"a": {"b": [1]}, "a": {"b": [2]}}`, `member "a" appears twice`},
		{"/a/1/b", `{"a": [0, {"b": [1], "b": []}]}`, `member "b" appears twice`},
		{"/r", `{"r": [1], "x": 1, "x": 2}`, ""},
		{"/r", `{"x": {"r": 1, "r": 2}, "r": [1]}`, ""},
		{"/a/b", `{"a": {"b": [1]}, "b": [2]}`, ""},
	}
	for _, c := range cases {
		ty := rawType(t, c.ptr)
		got := cutAll(ty, []byte(c.file), whole)
		var fe *FileError
		switch {
		case c.want == "" && got.err != nil:
			t.Errorf("%s: %v", c.file, got.err)
		case c.want != "" && (!errors.As(got.err, &fe) || !strings.Contains(got.err.Error(), c.want)):
			t.Errorf("%s:\n got %v\nwant %s", c.file, got.err, c.want)
		}
	}
}

// TestMaxRecord: a record larger than max_record_size fails the file as
// the scan passes the limit, having read little more than it.
func TestMaxRecord(t *testing.T) {
	ty := rawType(t, "/r")
	const limit = 1 << 10
	exact := `{"s": "` + strings.Repeat("x", limit-9) + `"}` // limit bytes
	if len(exact) != limit {
		t.Fatal(len(exact))
	}
	fields := "{" + strings.Repeat(`"k": 1, `, limit/8) + `"z": 0}`
	for _, c := range []struct {
		file string
		want string
	}{
		{`{"r": [` + exact + `, ` + exact + `]}`, ""},
		{`{"r": [1, ` + exact[:limit-2] + `x"}]}`, "at line 1, column 11 (byte 10): record 1 is larger than max_record_size (1 KiB)"},
		{`{"r": [` + fields + `]}`, "record 0 is larger than max_record_size (1 KiB)"},
		{`{"r": [[` + strings.Repeat("1,", limit) + `1]]}`, "record 0 is larger than max_record_size (1 KiB)"},
		{`{"r": ["` + strings.Repeat("é", limit) + `"]}`, "record 0 is larger than max_record_size (1 KiB)"},
		{`{"` + strings.Repeat("k", limit) + `": 1, "r": [1]}`, "at line 1, column 2 (byte 1): a member name is larger than max_record_size (1 KiB)"},
		{`{"r": [1], "` + strings.Repeat("k", limit) + `": 1}`, "at line 1, column 12 (byte 11): a member name is larger than max_record_size (1 KiB)"},
	} {
		for _, wrap := range []func(io.Reader) io.Reader{whole, iotest.OneByteReader, iotest.HalfReader} {
			var n int
			err := ty.Decode(context.Background(), func() (io.ReadCloser, error) {
				return io.NopCloser(wrap(strings.NewReader(c.file))), nil
			}, plugins.Limits{MaxRecord: limit}, func(b plugins.Batch) error { n += len(b.Rejects); return nil })
			var fe *FileError
			switch {
			case c.want == "" && (err != nil || n != 2):
				t.Errorf("%.40s: %d records, %v", c.file, n, err)
			case c.want != "" && (!errors.As(err, &fe) || !strings.Contains(err.Error(), c.want)):
				t.Errorf("%.40s: got %v, want %q", c.file, err, c.want)
			}
		}
	}
	// A record of 8 MiB, with a 1 KiB limit, is refused after little more
	// than the limit is read.
	big := &countingReader{r: io.MultiReader(strings.NewReader(`{"r": ["`), repeatReader('a', 8<<20), strings.NewReader(`"]}`))}
	err := ty.Decode(context.Background(), func() (io.ReadCloser, error) { return io.NopCloser(big), nil },
		plugins.Limits{MaxRecord: limit}, func(plugins.Batch) error { return nil })
	if !strings.Contains(fmt.Sprint(err), "record 0 is larger than max_record_size (1 KiB)") {
		t.Fatalf("got %v", err)
	}
	if big.n > limit+2*bufSize {
		t.Fatalf("read %d bytes to refuse a record over %d", big.n, limit)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// repeatReader is n bytes of c.
func repeatReader(c byte, n int64) io.Reader {
	return io.LimitReader(byteReader(c), n)
}

type byteReader byte

func (b byteReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{64 << 20: "64 MiB", 1 << 10: "1 KiB", 3 << 30: "3 GiB", 1000: "1000 bytes", 1536: "1536 bytes", 1: "1 bytes"} {
		if got := sizeText(n); got != want {
			t.Errorf("%d: %s, want %s", n, got, want)
		}
	}
}

// bigRecord is a vehicles_status file of one record of about size bytes:
// many small fields, or one long string.
func bigRecord(size int, fields bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"vehicle_status": [{"vehicle_id": "a", "report_time": "2020-01-01T00:00:00Z", "status": "`)
	if !fields {
		b.WriteString(strings.Repeat("x", size))
	}
	b.WriteString(`"`)
	for i := 0; fields && b.Len() < size; i++ {
		fmt.Fprintf(&b, `, "f%d": %d`, i, i)
	}
	b.WriteString("}]}")
	return b.Bytes()
}

// decodeAlloc decodes data and returns the bytes it allocated.
func decodeAlloc(t testing.TB, ty *Type, data []byte) uint64 {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	n := 0
	err := ty.Decode(context.Background(), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		plugins.Limits{}, func(b plugins.Batch) error { n += len(b.Records); return nil })
	runtime.ReadMemStats(&m1)
	if err != nil || n != 1 {
		t.Fatalf("%d records, %v", n, err)
	}
	return m1.TotalAlloc - m0.TotalAlloc
}

// TestBigRecordMemory: a record costs a small multiple of its size, all
// allocations counted: its text twice (blocks, then joined), and its values
// (a map entry and a boxed number per field, some 50 bytes for fields of
// 20). Its payload is its text, compacted in place. Its undeclared members
// are copied once more as its extra; a declared string once more as its
// column's text.
func TestBigRecordMemory(t *testing.T) {
	ty, _, _ := shipped(t, Options{Workers: 1}).Find("vehicles_status_1600000000.json")
	for _, c := range []struct {
		fields bool
		most   float64 // allocations over the record's size
	}{{true, 10}, {false, 4.5}} {
		data := bigRecord(8<<20, c.fields)
		if got := float64(decodeAlloc(t, ty, data)) / float64(len(data)); got > c.most {
			t.Errorf("fields %v: a record of %d MiB allocates %.1f times its size, want at most %v", c.fields, len(data)>>20, got, c.most)
		}
	}
}

// BenchmarkBigRecord decodes one record of 30 MiB, of 1.5 million fields.
func BenchmarkBigRecord(b *testing.B) {
	ty, _, _ := shipped(b, Options{Workers: 1}).Find("vehicles_status_1600000000.json")
	data := bigRecord(30<<20, true)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var total uint64
	for range b.N {
		total += decodeAlloc(b, ty, data)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(len(data)), "alloc/size")
}
