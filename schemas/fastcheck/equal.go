package fastcheck

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// sameCanonical reports whether v, a record's value, is c once both go
// through gojsonschema's enum and const comparison: JSON text of the value
// decoded by encoding/json into float64s. Floats compare by bits, as their
// texts do: "-0" is not "0". Strings compare exactly, which is stricter than
// the texts (invalid UTF-8 turns into U+FFFD): stricter only costs a
// fallback.
func sameCanonical(c, v any) bool {
	switch cv := c.(type) {
	case nil:
		return v == nil
	case bool:
		b, ok := v.(bool)
		return ok && b == cv
	case string:
		s, ok := v.(string)
		return ok && s == cv
	case float64:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		// json.Marshal refuses a number that is not JSON, and gojsonschema
		// then panics: schemas' parse takes 01 or +1 from a record nobody
		// checked.
		if !jsonNumber(string(n)) {
			return false
		}
		f, err := strconv.ParseFloat(string(n), 64) // what encoding/json does
		return err == nil && math.Float64bits(f) == math.Float64bits(cv)
	case []any:
		a, ok := v.([]any)
		if !ok || len(a) != len(cv) {
			return false
		}
		for i := range cv {
			if !sameCanonical(cv[i], a[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok || len(m) != len(cv) {
			return false
		}
		for k, ce := range cv {
			e, ok := m[k]
			if !ok || !sameCanonical(ce, e) {
				return false
			}
		}
		return true
	}
	return false
}

// canonicalText is gojsonschema's marshalWithoutNumber: the JSON text of v
// after a round trip through float64s. Strings and numbers, the members of
// large enums, take a shortcut to the same text.
func canonicalText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if utf8.ValidString(x) {
			b, err := json.Marshal(x) // decoding it gives x back
			return string(b), err
		}
	case json.Number:
		if jsonNumber(string(x)) {
			f, err := strconv.ParseFloat(string(x), 64)
			if err != nil {
				return "", err // encoding/json refuses it too
			}
			b, err := json.Marshal(f)
			return string(b), err
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var d any
	if err := json.Unmarshal(b, &d); err != nil {
		return "", err
	}
	b, err = json.Marshal(d)
	return string(b), err
}

// canonicalValue decodes a schema's enum or const member the way its
// comparison text is made, checking that the text comes back unchanged.
func canonicalValue(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if utf8.ValidString(x) {
			return x, nil
		}
	case json.Number:
		if jsonNumber(string(x)) {
			return strconv.ParseFloat(string(x), 64)
		}
	}
	text, err := canonicalText(v)
	if err != nil {
		return nil, err
	}
	var d any
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		return nil, err
	}
	if back, err := json.Marshal(d); err != nil || string(back) != text {
		return nil, errUnsupported
	}
	return d, nil
}
