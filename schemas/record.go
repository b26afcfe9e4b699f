package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/xeipuuv/gojsonschema"
)

// TimeLayout is how event times are written in keys: UTC, microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// check validates and keys one chunk of raw records.
func (t *Type) check(c *chunk) plugins.Batch {
	var b plugins.Batch
	b.Records = make([]plugins.Record, 0, len(c.raws))
	for i, raw := range c.raws {
		idx := c.first + i
		rec, errs := t.Record(raw)
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

// Record validates one raw record and derives its key and event time.
func (t *Type) Record(raw []byte) (plugins.Record, []plugins.FieldError) {
	v, compact, err := parse(raw)
	if err != nil {
		return plugins.Record{}, []plugins.FieldError{{Message: err.Error()}}
	}
	// The fast check only ever vouches for valid records; gojsonschema
	// has the last word on the others, and words their errors.
	if t.fast == nil || !t.fast.Valid(v) {
		res, err := t.validate(v)
		if err != nil {
			return plugins.Record{}, []plugins.FieldError{{Message: err.Error()}}
		}
		if !res.Valid() {
			return plugins.Record{}, fieldErrors(res.Errors())
		}
	}
	var rec plugins.Record
	var errs []plugins.FieldError
	obj, _ := v.(map[string]any)
	if t.Time != "" {
		if tv, ok := obj[t.Time]; ok && tv != nil {
			ts, err := eventTime(tv)
			if err != nil {
				errs = append(errs, plugins.FieldError{Pointer: "/" + escape(t.Time), Message: fmt.Sprintf("%q: %v", t.Time, err)})
			} else {
				rec.EventTime = &ts
			}
		}
	}
	rec.Key, errs = t.key(obj, v, rec.EventTime, errs)
	if len(errs) > 0 {
		return plugins.Record{}, errs
	}
	rec.Payload = compact
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
func (t *Type) key(obj map[string]any, v any, ts *time.Time, errs []plugins.FieldError) (string, []plugins.FieldError) {
	if len(t.Key) == 0 {
		var buf bytes.Buffer
		canonical(&buf, v)
		sum := sha256.Sum256(buf.Bytes())
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
			errs = append(errs, plugins.FieldError{Pointer: "/" + escape(f), Message: fmt.Sprintf("%q: key field is missing or null", f)})
		case f == t.Time && ts != nil:
			b = append(b, '"')
			b = appendTime(b, *ts) // nothing in it to escape
			b = append(b, '"')
		default:
			b = appendCanonical(b, fv)
		}
	}
	b = append(b, ']')
	return string(b), errs
}

// appendCanonical is canonical without a buffer for the usual key values.
func appendCanonical(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		if !needsEscape(x) {
			b = append(b, '"')
			b = append(b, x...)
			return append(b, '"')
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return strconv.AppendInt(b, i, 10)
		}
	}
	var buf bytes.Buffer
	canonical(&buf, v)
	return append(b, buf.Bytes()...)
}

// appendTime is ts.AppendFormat(b, TimeLayout), fast for the usual
// times: UTC, years 0 to 9999.
func appendTime(b []byte, ts time.Time) []byte {
	if y := ts.Year(); y < 0 || y > 9999 || ts.Location() != time.UTC {
		return ts.AppendFormat(b, TimeLayout)
	}
	return plugins.AppendTime(b, ts, 'T')
}

// canonical writes v as JSON with sorted keys and normalised numbers.
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
		buf.WriteString(number(x))
	case string:
		quote(buf, x)
	default:
		b, _ := json.Marshal(x)
		buf.Write(b)
	}
}

// quote writes s as a JSON string, without encoding/json's HTML escapes.
func quote(buf *bytes.Buffer, s string) {
	if needsEscape(s) {
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		buf.Truncate(buf.Len() - 1) // Encode's newline
		return
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return true
		}
	}
	return false
}

// number makes 1, 1.0 and 1e0 the same text.
func number(n json.Number) string {
	if i, err := n.Int64(); err == nil {
		return strconv.FormatInt(i, 10)
	}
	if r, ok := new(big.Rat).SetString(string(n)); ok {
		if r.IsInt() {
			return r.Num().String()
		}
		if f, _ := r.Float64(); !math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	return string(n)
}

// eventTime reads an RFC 3339 string or unix seconds.
func eventTime(v any) (time.Time, error) {
	var ts time.Time
	switch x := v.(type) {
	case string:
		var err error
		ts, err = time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return ts, fmt.Errorf("expected an RFC 3339 time, got %s", show(v))
		}
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return ts, fmt.Errorf("expected unix seconds, got %s", show(v))
		}
		sec, frac := math.Modf(f)
		ts = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3)
	default:
		return ts, fmt.Errorf("expected an RFC 3339 time or unix seconds, got %s", show(v))
	}
	return ts.UTC().Truncate(time.Microsecond), nil
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
		ptr := ""
		for _, s := range segs {
			ptr += "/" + escape(s)
		}
		msg := message(e)
		if n := len(segs); n > 0 {
			if _, err := strconv.Atoi(segs[n-1]); err != nil {
				msg = strconv.Quote(segs[n-1]) + ": " + msg
			}
		}
		out = append(out, plugins.FieldError{Pointer: ptr, Message: msg})
	}
	return out
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
		return fmt.Sprintf("must be one of %v, got %s", d["allowed"], show(e.Value()))
	case "const":
		return fmt.Sprintf("must be %v, got %s", d["allowed"], show(e.Value()))
	case "pattern":
		return fmt.Sprintf("does not match pattern %q, got %s", d["pattern"], show(e.Value()))
	case "additional_property_not_allowed":
		return fmt.Sprintf("property %q is not allowed", d["property"])
	}
	return strings.ToLower(e.Description()[:1]) + e.Description()[1:]
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

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

func escape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
