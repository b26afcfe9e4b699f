package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas/fastcheck"
	"github.com/carpipe/carpipe/schemas/internal/clip"
	"github.com/xeipuuv/gojsonschema"
)

// TimeLayout is how event times are written in keys: UTC, microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// check validates and keys one chunk of raw records.
func (t *Type) check(c *chunk) plugins.Batch {
	var b plugins.Batch
	b.Records = make([]plugins.Record, 0, len(c.raws))
	st := &store{vals: make([]plugins.Value, 0, len(c.raws)*len(t.cols))}
	for _, raw := range c.raws {
		st.block += len(raw) // a few records' texts take less than they do
	}
	st.block = min(st.block, 16<<10)
	for i, raw := range c.raws {
		idx := c.first + i
		rec, errs := t.record(raw, c.counts[i], true, st)
		if len(errs) > 0 {
			b.Rejects = append(b.Rejects, plugins.Reject{
				Index:   idx,
				Pointer: t.Records + "/" + strconv.Itoa(idx),
				Offset:  c.offs[i],
				Errors:  errs,
				Payload: bytes.Clone(raw), // not to pin the arena's slab
			})
			continue
		}
		rec.Index = idx
		b.Records = append(b.Records, rec)
	}
	return b
}

// Record validates one raw record and derives its key, event time and
// column values.
func (t *Type) Record(raw []byte) (plugins.Record, []plugins.FieldError) {
	return t.record(raw, nil, false, nil)
}

// record is Record given the sizes of the record's containers, if known,
// and where to put its values (nil: new allocations). With own, raw is the
// decoder's to change: a valid record's payload is raw itself, compacted
// in place, rather than a copy.
func (t *Type) record(raw []byte, counts []int32, own bool, st *store) (plugins.Record, []plugins.FieldError) {
	v, sh, odd, err := parse(raw, counts)
	if err != nil {
		return plugins.Record{}, []plugins.FieldError{{Message: err.Error()}}
	}
	if odd {
		// What the databases cannot hold is the record's fault whatever
		// the schema says; its member names may not even make pointers.
		return plugins.Record{}, diagnose(raw)
	}
	// The fast check only ever vouches for valid records; gojsonschema
	// has the last word on the others, and words their errors.
	if t.fast == nil || !t.fast.Valid(v) {
		res, err := t.validate(v)
		if err != nil {
			return plugins.Record{}, []plugins.FieldError{{Message: err.Error()}}
		}
		errs := fieldErrors(res.Errors())
		errs = append(errs, t.enumErrors(v)...)
		if len(errs) > 0 {
			return plugins.Record{}, errs
		}
	}
	var rec plugins.Record
	var errs []plugins.FieldError
	if t.dates != nil {
		errs = t.dates.check(v, t.Time, errs)
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return plugins.Record{}, append(errs, fieldError(nil, fmt.Sprintf("the record is %s, not an object: its table has a column for each property", typed(v))))
	}
	if t.Time != "" {
		if tv, ok := obj[t.Time]; ok && tv != nil {
			ts, err := eventTime(tv)
			if err != nil {
				errs = append(errs, fieldError([]string{t.Time}, err.Error()))
			} else {
				rec.EventTime = &ts
			}
		}
	}
	// The time's text, for its key and its column.
	var tsArr [len(TimeLayout)]byte
	var ts []byte
	if rec.EventTime != nil {
		ts = appendTime(tsArr[:0], *rec.EventTime)
	}
	rec.Key, errs = t.key(obj, v, ts, errs)
	var undeclared int
	rec.Values, undeclared, errs = t.values(obj, ts, st, errs)
	if len(errs) > 0 {
		return plugins.Record{}, errs
	}
	// Nothing of v outlives this point: its strings share raw's bytes.
	if !own {
		raw = bytes.Clone(raw)
	}
	rec.Payload = squeeze(raw[:0], raw, &sh)
	if undeclared > 0 {
		rec.Extra = t.extra(rec.Payload, undeclared)
	}
	return rec, nil
}

// validate runs gojsonschema, which panics on numbers beyond big.Rat or
// float64 (1e1000001 under "minimum", 1e400 under "enum"): one such record
// is rejected, the run goes on.
func (t *Type) validate(v any) (res *gojsonschema.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("cannot be checked against the schema, likely a number too large to compare (%v)", r)
		}
	}()
	return t.schema.Validate(gojsonschema.NewRawLoader(v))
}

// key is a JSON array of the key fields' canonical values, so that it reads
// plainly and no two different keys share a text. Without key fields it is
// a digest of the record's canonical form.
func (t *Type) key(obj map[string]any, v any, ts []byte, errs []plugins.FieldError) (string, []plugins.FieldError) {
	if len(t.Key) == 0 {
		var arr [512]byte
		sum := sha256.Sum256(appendCanonical(arr[:0], v))
		return "sha256:" + hex.EncodeToString(sum[:]), errs
	}
	var arr [128]byte // on the stack: the key string is the one allocation
	b := append(arr[:0], '[')
	for i, f := range t.Key {
		if i > 0 {
			b = append(b, ',')
		}
		fv, ok := obj[f]
		switch {
		case !ok || fv == nil:
			errs = append(errs, fieldError([]string{f}, "key field is missing or null"))
		case f == t.Time && ts != nil:
			b = append(b, '"')
			b = append(b, ts...) // nothing in it to escape
			b = append(b, '"')
		default:
			b = appendCanonical(b, fv)
		}
	}
	b = append(b, ']')
	if len(b) > maxKey {
		errs = append(errs, fieldError(nil, fmt.Sprintf("key is %d bytes long, more than the %d bytes the databases can index (key fields: %s)", len(b), maxKey, strings.Join(t.Key, ", "))))
		return "", errs
	}
	return string(b), errs
}

// store holds the values of a chunk's records, and their texts, in a few
// allocations rather than two a record: the garbage collector counts them.
type store struct {
	vals  []plugins.Value
	texts []byte // never written again up to its length
	block int    // the size of a new texts
}

// values returns room for n values.
func (st *store) values(n int) []plugins.Value {
	if st == nil {
		return make([]plugins.Value, n)
	}
	if cap(st.vals)-len(st.vals) < n {
		st.vals = make([]plugins.Value, 0, max(n, 256))
	}
	st.vals = st.vals[:len(st.vals)+n]
	return st.vals[len(st.vals)-n : len(st.vals) : len(st.vals)]
}

// text returns room for about size bytes of text; keep tells what of it
// was used.
func (st *store) text(size int) []byte {
	if st == nil {
		return make([]byte, 0, size)
	}
	if cap(st.texts)-len(st.texts) < size {
		st.texts = make([]byte, 0, max(size, st.block))
	}
	return st.texts[len(st.texts):len(st.texts)]
}

// keep marks b, from text, as used; a b that outgrew its room lives on its
// own.
func (st *store) keep(b []byte) {
	if st != nil && len(b) > 0 && len(st.texts) < cap(st.texts) && unsafe.SliceData(b) == unsafe.SliceData(st.texts[len(st.texts):]) {
		st.texts = st.texts[:len(st.texts)+len(b)]
	}
}

// values spells each declared property for its column (see plugins.Col*),
// and counts the names of obj the schema does not declare. The texts are
// copies: they cannot be slices of raw, which squeeze rewrites.
func (t *Type) values(obj map[string]any, ts []byte, st *store, errs []plugins.FieldError) ([]plugins.Value, int, []plugins.FieldError) {
	vals := st.values(len(t.cols))
	var xsArr [32]any
	var endArr [32]int
	var jsArr [512]byte
	// ends: where each text ends in b; first in js, where the json
	// columns' texts are written to know their size.
	xs, ends, js := xsArr[:0], endArr[:0], jsArr[:0]
	room, present := 0, 0
	for i, c := range t.cols {
		x, ok := obj[c.Property]
		if ok {
			present++
		}
		// A JSON null reaches a typed column only if the schema allows it
		// where carpipe does not look (an allOf, say): it is SQL NULL.
		vals[i] = plugins.Value{Valid: ok && (x != nil || c.Type == plugins.ColJSON)}
		switch {
		case !vals[i].Valid:
		case c.Type == plugins.ColJSON:
			n := len(js)
			js = appendCanonical(js, x)
			room += len(js) - n
		default:
			room += textRoom(c.Type, x)
		}
		xs = append(xs, x)
		ends = append(ends, len(js))
	}
	b := st.text(room)
	from := 0 // in js
	for i, c := range t.cols {
		switch {
		case !vals[i].Valid:
		case c.Type == plugins.ColJSON:
			b = append(b, js[from:ends[i]]...)
		default:
			var err error
			if b, err = t.appendValue(b, c, xs[i], ts); err != nil {
				vals[i].Valid = false
				if fe := fieldError([]string{c.Property}, err.Error()); !slices.Contains(errs, fe) {
					errs = append(errs, fe) // the date check may have said it
				}
			}
		}
		from = ends[i]
		ends[i] = len(b)
	}
	// b is never written again: its texts need no copy.
	st.keep(b)
	text := unsafe.String(unsafe.SliceData(b), len(b))
	from = 0
	for i, end := range ends {
		vals[i].Text = text[from:end]
		from = end
	}
	return vals, len(obj) - present, errs
}

// extra is the members of payload, a compact JSON object, that the schema
// does not declare, in their order and as written: n of them, but for
// repeated names, of which the last counts, as in the record's values.
func (t *Type) extra(payload []byte, n int) []byte {
	undeclared := func(name []byte) (string, bool) {
		if bytes.IndexByte(name, '\\') < 0 {
			return "", !t.declared[string(name)]
		}
		s, _, _ := unescape(name)
		return s, !t.declared[s]
	}
	size, count := 1, 0
	eachMember(payload, func(name []byte, start, end int) {
		if _, ok := undeclared(name); ok {
			size += end - start + 1
			count++
		}
	})
	var last map[string]int // where each name last starts, when some repeat
	if count > n {
		last = map[string]int{}
		eachMember(payload, func(name []byte, start, end int) {
			if s, ok := undeclared(name); ok {
				if s == "" {
					s = string(name)
				}
				last[s] = start
			}
		})
	}
	out := make([]byte, 0, size+1)
	out = append(out, '{')
	eachMember(payload, func(name []byte, start, end int) {
		s, ok := undeclared(name)
		if !ok {
			return
		}
		if last != nil {
			if s == "" {
				s = string(name)
			}
			if last[s] != start {
				return
			}
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, payload[start:end]...)
	})
	return append(out, '}')
}

// eachMember calls fn with each member of the compact JSON object b: its name
// as written, and where it starts and ends in b.
func eachMember(b []byte, fn func(name []byte, start, end int)) {
	for i := 1; i < len(b) && b[i] != '}'; {
		j := stringEnd(b, i)
		end := valueEnd(b, j+1) // past the ':'
		fn(b[i+1:j-1], i, end)
		i = end
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
}

// valueEnd is where the JSON value from b[i] on ends in compact JSON: at
// the ',', '}' or ']' after it.
func valueEnd(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = stringEnd(b, i)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// textRoom is the bytes of x's text in a column of type typ, but for an
// integer appendInt spells longer.
func textRoom(typ string, x any) int {
	switch typ {
	case plugins.ColTimestamp:
		return len(TimeLayout)
	case plugins.ColBoolean:
		return len("false")
	}
	switch x := x.(type) {
	case string:
		return len(x)
	case json.Number:
		return len(x)
	}
	return 0
}

// appendValue spells x, not null, for column c of a type other than json.
// ts is the text of the record's time (TimeLayout), nil without one.
func (t *Type) appendValue(b []byte, c plugins.Column, x any, ts []byte) ([]byte, error) {
	switch c.Type {
	case plugins.ColText:
		if s, ok := x.(string); ok {
			return append(b, s...), nil
		}
	case plugins.ColTimestamp:
		s, ok := x.(string)
		switch {
		case ok && c.Property == t.Time && ts != nil:
			return append(b, ts...), nil
		case ok:
			// Read as the type's time is: an RFC 3339 date-time (the stock
			// format takes a bare date or time too) in UTC, digits past the
			// microsecond truncated.
			v, err := eventTime(s)
			if err != nil {
				return b, err
			}
			return appendTime(b, v), nil
		}
	case plugins.ColInteger:
		if n, ok := x.(json.Number); ok {
			return appendInt(b, string(n))
		}
	case plugins.ColNumber:
		if n, ok := x.(json.Number); ok {
			return append(b, n...), nil
		}
	case plugins.ColBoolean:
		if v, ok := x.(bool); ok {
			return strconv.AppendBool(b, v), nil
		}
	}
	return b, fmt.Errorf("expected a value for its %s column, got %s", c.Type, typed(x))
}

// maxKey bounds a key's text. PostgreSQL's unique index on (file_type,
// record_key) takes at most 2704 bytes a row, after compression; a file
// type's name, a file name, is at most 255 bytes. Checked with psql: a
// 2690-byte key of hex digits overflows it.
const maxKey = 2048

// appendCanonical writes v as JSON with sorted member names and numbers
// spelled by appendNumber: the text of keys and of json columns.
func appendCanonical(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return appendQuote(b, x)
	case json.Number:
		return appendNumber(b, string(x))
	case bool:
		return strconv.AppendBool(b, x)
	case nil:
		return append(b, "null"...)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case map[string]any:
		var arr [16]member // on the stack for the usual objects
		ms := arr[:0]
		for k, v := range x {
			ms = append(ms, member{k, v})
		}
		slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.name, b.name) })
		b = append(b, '{')
		for i, m := range ms {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendQuote(b, m.name), ':')
			b = appendCanonical(b, m.value)
		}
		return append(b, '}')
	}
	j, _ := json.Marshal(v)
	return append(b, j...)
}

type member struct {
	name  string
	value any
}

// appendTime is ts.AppendFormat(b, TimeLayout), fast for the usual
// times: UTC, years 0 to 9999.
func appendTime(b []byte, ts time.Time) []byte {
	if y := ts.Year(); y < 0 || y > 9999 || ts.Location() != time.UTC {
		return ts.AppendFormat(b, TimeLayout)
	}
	return plugins.AppendTime(b, ts, 'T')
}

// appendQuote writes s as a JSON string, without encoding/json's HTML
// escapes.
func appendQuote(b []byte, s string) []byte {
	if needsEscape(s) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		return append(b, buf.Bytes()[:buf.Len()-1]...) // without Encode's newline
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return true
		}
	}
	return false
}

// appendNumber writes the JSON number s as key text: one text per value,
// every digit kept. Integers are written in full ("-0" is "0"; 1.0, 1e0 and
// 1 are "1"); other numbers in the layout strconv.FormatFloat(f, 'g', -1,
// 64) gives a float64 ("0.1", "1e-05", "1.2345675e+06"), but with all of
// the number's digits, so that 0.1 and 0.10000000000000000001 differ. Keys
// made when numbers went through float64 keep their text wherever float64
// held the number exactly.
func appendNumber(b []byte, s string) []byte {
	if fastcheck.PlainInt(s) {
		if s == "-0" {
			return append(b, '0')
		}
		return append(b, s...) // JSON has no leading zeros
	}
	neg := strings.HasPrefix(s, "-")
	mant, exp, _ := strings.Cut(strings.ToLower(strings.TrimPrefix(s, "-")), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	e, err := strconv.ParseInt(strings.TrimPrefix(exp, "+"), 10, 32)
	if exp != "" && err != nil {
		return append(b, s...) // beyond numberFits: never a valid record's
	}
	digits := strings.TrimRight(whole+frac, "0")
	k := len(digits) - len(strings.TrimLeft(digits, "0"))
	digits = digits[k:]
	if digits == "" {
		return append(b, '0')
	}
	if neg {
		b = append(b, '-')
	}
	n := len(digits)
	dp := len(whole) - k + int(e) // the number is 0.digits × 10^dp
	if dp >= n {
		b = append(b, digits...)
		for range dp - n {
			b = append(b, '0')
		}
		return b
	}
	if x := dp - 1; x < -4 || x >= 6 {
		b = append(b, digits[0])
		if n > 1 {
			b = append(append(b, '.'), digits[1:]...)
		}
		b = append(b, 'e')
		if x < 0 {
			b, x = append(b, '-'), -x
		} else {
			b = append(b, '+')
		}
		if x < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(x), 10)
	}
	if dp > 0 {
		return append(append(append(b, digits[:dp]...), '.'), digits[dp:]...)
	}
	b = append(b, "0."...)
	for range -dp {
		b = append(b, '0')
	}
	return append(b, digits...)
}

// eventTime reads an RFC 3339 string or unix seconds, of years 0001 to 9999.
func eventTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		ts, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return ts, fmt.Errorf("expected an RFC 3339 time, got %s", show(v))
		}
		if err := timeInRange(x, ts); err != nil {
			return ts, err
		}
		return ts.UTC().Truncate(time.Microsecond), nil
	case json.Number:
		ts, err := unixTime(x)
		if err != nil {
			return ts, err
		}
		return ts.Truncate(time.Microsecond), nil
	}
	return time.Time{}, fmt.Errorf("expected an RFC 3339 time or unix seconds, got %s", show(v))
}

func fieldErrors(errs []gojsonschema.ResultError) []plugins.FieldError {
	out := make([]plugins.FieldError, 0, len(errs))
	for _, e := range errs {
		segs := strings.Split(e.Context().String("\x00"), "\x00")[1:] // drop "(root)"
		if e.Type() == "required" {
			if p, ok := e.Details()["property"].(string); ok {
				segs = append(segs, p)
			}
		}
		out = append(out, fieldError(segs, message(e)))
	}
	return out
}

// fieldError points at segs inside the record; a message about a member
// starts with its name.
func fieldError(segs []string, msg string) plugins.FieldError {
	ptr := ""
	for _, s := range segs {
		ptr += "/" + escape(s)
	}
	if n := len(segs); n > 0 {
		if _, err := strconv.Atoi(segs[n-1]); err != nil {
			msg = strconv.Quote(segs[n-1]) + ": " + msg
		}
	}
	// Member names come from the record: valid UTF-8 once the file is read,
	// but Record takes any bytes.
	return plugins.FieldError{Pointer: strings.ToValidUTF8(ptr, "\uFFFD"), Message: msg}
}

// message rewords gojsonschema's errors as plain sentences with the value.
func message(e gojsonschema.ResultError) string {
	d := e.Details()
	switch e.Type() {
	case "invalid_type":
		return fmt.Sprintf("expected %v, got %s", d["expected"], typed(e.Value()))
	case "required":
		return "is required"
	case "format":
		return fmt.Sprintf("does not match format %q, got %s", d["format"], show(e.Value()))
	case "enum":
		return enumMessage(fmt.Sprint(d["allowed"]), e.Value())
	case "const":
		return fmt.Sprintf("must be %s, got %s", cutList(fmt.Sprint(d["allowed"])), show(e.Value()))
	case "pattern":
		return fmt.Sprintf("does not match pattern %q, got %s", d["pattern"], show(e.Value()))
	case "additional_property_not_allowed":
		return fmt.Sprintf("property %q is not allowed", d["property"])
	}
	desc := e.Description()
	r, n := utf8.DecodeRuneInString(desc)
	return string(unicode.ToLower(r)) + desc[n:]
}

// enumMessage is an enum error; allowed is gojsonschema's list of the
// values' JSON texts.
func enumMessage(allowed string, v any) string {
	return fmt.Sprintf("must be one of %s, got %s", cutList(allowed), show(v))
}

// maxList is how much of a list of allowed values a message shows.
const maxList = 200

// cutList shortens a list of JSON texts joined by ", " to its first ones:
// an enum may have half a million.
func cutList(s string) string {
	if len(s) <= maxList {
		return s
	}
	i := strings.LastIndex(s[:maxList], ", ")
	if i < 0 {
		i = maxList
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
	}
	return s[:i] + ", ..."
}

// typed shows a value with its JSON type: string "3".
func typed(v any) string {
	switch v.(type) {
	case string:
		return "string " + show(v)
	case json.Number, float64, int:
		return "number " + show(v)
	case bool:
		return "boolean " + show(v)
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return show(v)
}

// showMax is how many bytes of a value a message shows.
const showMax = clip.Max

// show writes v for a message as JSON, cut at a character boundary past
// showMax bytes. Bytes that are not UTF-8 are shown escaped (\xff), never
// copied: messages must be valid UTF-8 whatever the record holds.
func show(v any) string {
	return clip.Text(string(appendShow(make([]byte, 0, showMax+8), v)))
}

// appendShow writes v, stopping soon after b outgrows showMax.
func appendShow(b []byte, v any) []byte {
	if len(b) > showMax {
		return b
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case string:
		return append(appendShowString(append(b, '"'), x), '"')
	case json.Number:
		return appendShowString(b, string(x[:min(len(x), showMax+1)]))
	case float64:
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if len(b) > showMax {
				return b
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendShow(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if len(b) > showMax {
				return b
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendShow(b, k), ':')
			b = appendShow(b, x[k])
		}
		return append(b, '}')
	}
	return appendShowString(b, fmt.Sprint(v))
}

// appendShowString writes s with JSON's escapes, and \xNN for a byte that
// is not UTF-8.
func appendShowString(b []byte, s string) []byte {
	for i := 0; i < len(s) && len(b) <= showMax; {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\x`...)
			b = append(b, hexDigits[s[i]>>4], hexDigits[s[i]&15])
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20:
			b = append(b, `\u00`...)
			b = append(b, hexDigits[r>>4], hexDigits[r&15])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

const hexDigits = "0123456789abcdef"

func escape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
