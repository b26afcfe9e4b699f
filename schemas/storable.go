package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas/fastcheck"
	"github.com/carpipe/carpipe/schemas/internal/clip"
)

// What a valid record may hold is bounded by what both databases store and
// query: a record past those bounds is invalid, so that validate, skip_record
// and a load all give it the same verdict.

// diagnose finds what parse flagged as odd: each string, member name or
// number the databases cannot store, with its pointer. Only invalid records
// pay for it.
func diagnose(raw []byte) []plugins.FieldError {
	d := diag{p: parser{b: raw, s: string(raw)}}
	d.value(nil)
	return d.errs
}

type diag struct {
	p    parser
	errs []plugins.FieldError
}

func (d *diag) value(path []string) {
	p := &d.p
	p.space()
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		for {
			p.space()
			switch p.b[p.i] {
			case '}':
				p.i++
				return
			case ',':
				p.i++
				p.space()
			}
			p.odd = 0
			at := p.i
			name, _ := p.string()
			odd := p.odd
			written := p.b[at:p.i]
			p.space()
			p.i++ // ':'
			if odd != 0 {
				// The name cannot be part of a pointer: point at its object,
				// and show the name as written, escapes and all.
				d.add(path, "member name "+clip.Text(string(written))+" "+oddWhy(odd))
				p.value()
				continue
			}
			d.value(append(path[:len(path):len(path)], name))
		}
	case c == '[':
		p.i++
		for i := 0; ; i++ {
			p.space()
			switch p.b[p.i] {
			case ']':
				p.i++
				return
			case ',':
				p.i++
			}
			d.value(append(path[:len(path):len(path)], strconv.Itoa(i)))
		}
	case c == '"':
		p.odd = 0
		p.string()
		if p.odd != 0 {
			d.add(path, "string "+oddWhy(p.odd))
		}
	default:
		p.odd = 0
		v, _ := p.value()
		if p.odd&oddNumber != 0 {
			d.add(path, fmt.Sprintf("number %s is beyond what the databases store: at most %d digits before the decimal point and %d after", show(v), maxWeight, maxScale))
		}
	}
}

func (d *diag) add(path []string, msg string) {
	d.errs = append(d.errs, fieldError(path, msg))
}

func oddWhy(odd uint8) string {
	var what []string
	if odd&oddNUL != 0 {
		what = append(what, "U+0000")
	}
	if odd&oddSurrogate != 0 {
		what = append(what, `an unpaired surrogate (an escape from \ud800 to \udfff without its other half)`)
	}
	return "contains " + strings.Join(what, " and ") + ", which the databases cannot store"
}

// The years both databases hold and sort: PostgreSQL refuses year 0 and
// SQLite compares times as text of four-digit years.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// The same years in unix seconds.
var minUnix, maxUnix = minTime.Unix(), maxTime.Unix()

// maxOffset is the first UTC offset PostgreSQL refuses in a timestamptz:
// '2020-01-01T00:00:00+15:59' reads, '...+16:00' does not.
const maxOffset = 16 * time.Hour

// storableTime checks a date-time the stock "date-time" format accepts
// (an RFC 3339 date-time, or a bare date or time): that its year, as
// written and in UTC, is 0001 to 9999 once PostgreSQL has rounded it to
// microseconds, and that PostgreSQL takes its offset. A bare time has no
// year to check.
func storableTime(s string) error {
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if d, err := time.Parse(time.DateOnly, s); err == nil && d.Year() < 1 {
			return fmt.Errorf("date %s is outside years 0001 to 9999, which the databases store", show(s))
		}
		return nil
	}
	return timeInRange(s, ts)
}

// timeInRange is storableTime on s already parsed as RFC 3339. It reads
// the year and offset off the text, which time.Parse has checked, as the
// year is slow to compute.
func timeInRange(s string, ts time.Time) error {
	if sec := ts.Unix(); s[:4] == "0000" || sec < minUnix || sec > maxUnix || sec == maxUnix && ts.Nanosecond() >= 999999500 {
		return fmt.Errorf("date-time %s is outside years 0001 to 9999 (in UTC), which the databases store", show(s))
	}
	if z := s[len(s)-1]; z != 'Z' && z != 'z' {
		off := s[len(s)-6:] // "+hh:mm": time.Parse took nothing else
		h := int(off[1]-'0')*10 + int(off[2]-'0')
		m := int(off[4]-'0')*10 + int(off[5]-'0')
		if m > 59 || time.Duration(h)*time.Hour+time.Duration(m)*time.Minute >= maxOffset {
			return fmt.Errorf("date-time %s has UTC offset %s, which PostgreSQL cannot read: offsets go from -15:59 to +15:59", show(s), off)
		}
	}
	return nil
}

// unixTime turns unix seconds into a time of years 0001 to 9999.
func unixTime(n json.Number) (time.Time, error) {
	f, err := n.Float64()
	if err != nil || f < float64(minTime.Unix()-1) || f > float64(maxTime.Unix()+1) {
		return time.Time{}, fmt.Errorf("unix time %s is outside years 0001 to 9999, which the databases store", show(n))
	}
	sec, frac := math.Modf(f)
	ts := time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
	if ts.Before(minTime) || ts.After(maxTime) {
		return time.Time{}, fmt.Errorf("unix time %s is outside years 0001 to 9999, which the databases store", show(n))
	}
	return ts, nil
}

// appendInt writes the integer JSON number s as decimal digits ("1.0" and
// "1e2" are "1" and "100"), or refuses one a bigint column cannot hold.
func appendInt(b []byte, s string) ([]byte, error) {
	if fastcheck.PlainInt(s) && len(s) < 19 { // at most 18 digits: an int64
		if s == "-0" {
			return append(b, '0'), nil
		}
		return append(b, s...), nil
	}
	// Not to write out 1e131071 only to refuse it.
	whole, frac, e, ok := numParts(s)
	if w, zero := weight(whole, frac, e); ok && (zero || w < 19) {
		n := len(b)
		b = appendNumber(b, s)
		if _, err := strconv.ParseInt(string(b[n:]), 10, 64); err == nil {
			return b, nil
		}
		b = b[:n]
	}
	return b, fmt.Errorf("integer %s is outside the range a bigint column holds (%d..%d)", show(json.Number(s)), math.MinInt64, math.MaxInt64)
}
