package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// parse turns one record, already checked to be valid JSON by the file's
// decoder, into the values gojsonschema expects (encoding/json's with
// UseNumber). It is several times faster than encoding/json's reflection
// on interface{}, which dominated the profile. odd is true when the record
// holds what the databases cannot store (see oddNUL); diagnose then says
// where.
//
// One string for the record: its strings and numbers are slices of it. It
// shares raw's bytes, which must not change while v is in use: Record
// keeps nothing of v, and compacts raw only once done with it.
//
// counts, when known, are the sizes of the record's non-empty containers
// in the order they open; a wrong count only costs time.
//
// sh tells where the record has white space between its tokens, for
// squeeze.
func parse(raw []byte, counts []int32) (v any, sh shape, odd bool, err error) {
	p := parser{b: raw, s: unsafe.String(unsafe.SliceData(raw), len(raw)), counts: counts}
	p.many = len(raw) > math.MaxInt32 // past what spaces hold
	v, err = p.value()
	if err != nil {
		return nil, shape{}, false, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, shape{}, false, errors.New("unexpected data after the record")
	}
	return v, p.shape, p.odd != 0, nil
}

type parser struct {
	b   []byte
	s   string // b
	i   int
	odd uint8 // oddNUL | oddSurrogate | oddNumber seen so far

	counts []int32 // see parse
	next   int     // the next container's count
	shape          // see parse
}

// shape is where a record has white space between its tokens: pairs of
// offsets, the first of them only when many. Held in place, not to cost
// an allocation a record.
type shape struct {
	spaces [maxSpaces]int32
	n      int // offsets in spaces
	many   bool
}

// size is the next non-empty container's size, or small when unknown.
func (p *parser) size(small int) int {
	if p.next < len(p.counts) {
		p.next++
		return int(p.counts[p.next-1])
	}
	return small
}

// What PostgreSQL refuses in a jsonb value, and so in a record: SQLite
// would take it, but one verdict must hold for both databases.
const (
	oddNUL       uint8 = 1 << iota // \u0000, in a string or a member name
	oddSurrogate                   // an escaped UTF-16 surrogate without its pair
	oddNumber                      // a number beyond numeric (see numberFits)
)

var errSyntax = errors.New("invalid JSON in record")

// space skips white space, and notes where it was for the payload.
func (p *parser) space() {
	start := p.i
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
			continue
		}
		break
	}
	if p.i > start && !p.many {
		p.spaces[p.n], p.spaces[p.n+1] = int32(start), int32(p.i)
		p.n += 2
		p.many = p.n == maxSpaces
	}
}

// maxSpaces bounds the offsets parse notes: the rest of a record is
// compacted by scanning it.
const maxSpaces = 32

func (p *parser) value() (any, error) {
	p.space()
	if p.i >= len(p.b) {
		return nil, errSyntax
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return s, nil
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		exp := false
		for p.i < len(p.b) {
			c := p.b[p.i]
			if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' {
				p.i++
				continue
			}
			if c == 'e' || c == 'E' {
				exp = true
				p.i++
				continue
			}
			break
		}
		n := p.s[start:p.i]
		if (exp || len(n) >= maxScale) && !numberFits(n) {
			p.odd |= oddNumber
		}
		return json.Number(n), nil
	}
	return nil, errSyntax
}

// PostgreSQL's numeric, which jsonb stores numbers as, holds at most
// 131072 digits before the decimal point and 16383 after (its display
// scale: the digits written after the point, less the exponent), and
// PostgreSQL 15 refuses an exponent of 1073741823 or more in size even on
// zero. Checked with psql against PostgreSQL 15:
//
//	'1e131071'::jsonb ok, '1e131072' overflows; '0.1e131072' ok
//	'1e-16383' ok, '1e-16384' and '0e-16384' overflow; '1.000e-16380' ok, '1.0000e-16380' overflows
//	'0e1073741822' ok, '0e1073741823' overflows
const (
	maxWeight = 131072     // digits before the point
	maxScale  = 16383      // digits after it
	maxExp    = 1073741823 // INT_MAX/2, refused from there on
)

// numberFits reports whether PostgreSQL stores the JSON number s. Numbers
// without an exponent and shorter than maxScale always fit.
func numberFits(s string) bool {
	whole, frac, e, ok := numParts(s)
	if !ok || int64(len(frac))-e > maxScale {
		return false
	}
	w, zero := weight(whole, frac, e)
	return zero || w < maxWeight
}

// numParts splits the JSON number s into the digits before and after its
// point, without sign, and its exponent; ok is false for an exponent
// PostgreSQL refuses (see maxExp).
func numParts(s string) (whole, frac string, e int64, ok bool) {
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	mant = strings.TrimPrefix(mant, "-")
	whole, frac, _ = strings.Cut(mant, ".")
	if exp != "" {
		neg := exp[0] == '-'
		exp = strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
		if len(exp) > 10 {
			return "", "", 0, false
		}
		if exp != "" {
			v, err := strconv.ParseInt(exp, 10, 64)
			if err != nil || v >= maxExp {
				return "", "", 0, false
			}
			e = v
		}
		if neg {
			e = -e
		}
	}
	return whole, frac, e, true
}

// weight is the power of ten of the number's first significant digit;
// zero tells it has none.
func weight(whole, frac string, e int64) (w int64, zero bool) {
	digits := whole + frac
	k := strings.IndexFunc(digits, func(r rune) bool { return r != '0' })
	if k < 0 {
		return 0, true
	}
	return int64(len(whole)-1-k) + e, false
}

func (p *parser) literal(s string) error {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return errSyntax
	}
	p.i += len(s)
	return nil
}

func (p *parser) object() (any, error) {
	p.i++ // {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return map[string]any{}, nil
	}
	m := make(map[string]any, p.size(8))
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, errSyntax
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, errSyntax
		}
		p.i++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		m[k] = v // the last of repeated keys wins, as in encoding/json
		p.space()
		if p.i >= len(p.b) {
			return nil, errSyntax
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, nil
		default:
			return nil, errSyntax
		}
	}
}

func (p *parser) array() (any, error) {
	p.i++ // [
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return []any{}, nil
	}
	a := make([]any, 0, p.size(0))
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.space()
		if p.i >= len(p.b) {
			return nil, errSyntax
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, errSyntax
		}
	}
}

func (p *parser) string() (string, error) {
	start := p.i
	p.i++ // "
	plain := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			p.i++
			if plain {
				return p.s[start+1 : p.i-1], nil
			}
			s, odd, err := unescape(p.b[start+1 : p.i-1])
			p.odd |= odd
			return s, err
		}
		if c == '\\' {
			plain = false
			p.i++
		}
		p.i++
	}
	return "", errSyntax
}

// squeeze appends src to dst without the white space between its tokens,
// at the places sh tells, and returns src itself when it has none. dst may
// be src[:0]: bytes only ever move towards the start.
func squeeze(dst, src []byte, sh *shape) []byte {
	if sh.n == 0 && !sh.many {
		return src
	}
	from := 0
	for k := 0; k < sh.n; k += 2 {
		dst = append(dst, src[from:sh.spaces[k]]...)
		from = int(sh.spaces[k+1])
	}
	if sh.many {
		return compact(dst, src[from:])
	}
	return append(dst, src[from:]...)
}

// compact appends src, JSON from outside a string, to dst without the
// white space between its tokens. dst may share src's array, ending at
// most where src starts.
func compact(dst, src []byte) []byte {
	i, from := 0, 0 // from: the first byte not yet appended
	for i < len(src) {
		c := src[i]
		if c == '"' {
			i = stringEnd(src, i)
			continue
		}
		if c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			i++
			continue
		}
		dst = append(dst, src[from:i]...)
		for i++; i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r'); i++ {
		}
		from = i
	}
	return append(dst, src[from:]...)
}

// stringEnd is where the JSON string at b[i] ends: past its closing quote,
// the first not escaped by an odd number of backslashes.
func stringEnd(b []byte, i int) int {
	for i++; ; i++ {
		i += bytes.IndexByte(b[i:], '"')
		k := i - 1
		for b[k] == '\\' {
			k--
		}
		if (i-1-k)%2 == 0 {
			return i + 1
		}
	}
}

// unescape decodes a string's escapes as encoding/json does, an unpaired
// surrogate becoming U+FFFD; odd reports that or U+0000.
func unescape(s []byte) (str string, odd uint8, err error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return "", 0, errSyntax
		}
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return "", 0, errSyntax
			}
			i += 4
			if r == 0 {
				odd |= oddNUL
			}
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2, ok = hex4(s, i+3)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
					odd |= oddSurrogate
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", 0, errSyntax
		}
	}
	return string(out), odd, nil
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s[i:i+4]), 16, 32)
	return rune(v), err == nil
}
