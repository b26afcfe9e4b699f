package schemas

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// parse turns one record, already checked to be valid JSON by the file's
// decoder, into the values gojsonschema expects (encoding/json's with
// UseNumber), and its compact text. It is several times faster than
// encoding/json's reflection on interface{}, which dominated the profile.
func parse(raw []byte) (any, []byte, error) {
	return parseNames(raw, nil)
}

// parseNames is parse taking object keys found in names from there, not
// allocating them again for every record.
func parseNames(raw []byte, names map[string]string) (any, []byte, error) {
	p := parser{b: raw, out: make([]byte, 0, len(raw)), names: names}
	v, err := p.value()
	if err != nil {
		return nil, nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, nil, errors.New("unexpected data after the record")
	}
	return v, p.out, nil
}

type parser struct {
	b     []byte
	i     int
	out   []byte // the compact copy
	names map[string]string
}

var errSyntax = errors.New("invalid JSON in record")

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

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
		s, err := p.string(false)
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
		for p.i < len(p.b) {
			c := p.b[p.i]
			if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
				p.i++
				continue
			}
			break
		}
		p.out = append(p.out, p.b[start:p.i]...)
		return json.Number(p.b[start:p.i]), nil
	}
	return nil, errSyntax
}

func (p *parser) literal(s string) error {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return errSyntax
	}
	p.i += len(s)
	p.out = append(p.out, s...)
	return nil
}

func (p *parser) object() (any, error) {
	p.i++ // {
	p.out = append(p.out, '{')
	m := make(map[string]any, 8)
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.out = append(p.out, '}')
		return m, nil
	}
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, errSyntax
		}
		k, err := p.string(true)
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, errSyntax
		}
		p.i++
		p.out = append(p.out, ':')
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
			p.out = append(p.out, ',')
		case '}':
			p.i++
			p.out = append(p.out, '}')
			return m, nil
		default:
			return nil, errSyntax
		}
	}
}

func (p *parser) array() (any, error) {
	p.i++ // [
	p.out = append(p.out, '[')
	a := []any{}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.out = append(p.out, ']')
		return a, nil
	}
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
			p.out = append(p.out, ',')
		case ']':
			p.i++
			p.out = append(p.out, ']')
			return a, nil
		default:
			return nil, errSyntax
		}
	}
}

func (p *parser) string(key bool) (string, error) {
	start := p.i
	p.i++ // "
	plain := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			p.i++
			p.out = append(p.out, p.b[start:p.i]...)
			if plain {
				if key {
					if s, ok := p.names[string(p.b[start+1:p.i-1])]; ok {
						return s, nil
					}
				}
				return string(p.b[start+1 : p.i-1]), nil
			}
			return unescape(p.b[start+1 : p.i-1])
		}
		if c == '\\' {
			plain = false
			p.i++
		}
		p.i++
	}
	return "", errSyntax
}

func unescape(s []byte) (string, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return "", errSyntax
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
				return "", errSyntax
			}
			i += 4
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
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errSyntax
		}
	}
	return string(out), nil
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s[i:i+4]), 16, 32)
	return rune(v), err == nil
}
