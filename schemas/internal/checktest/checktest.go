// Package checktest is what the tests of schemas and of schemas/fastcheck
// share: a record generator, gojsonschema's verdict, and the values
// schemas' parse makes, read with encoding/json.
package checktest

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xeipuuv/gojsonschema"
)

// ReadDoc reads a schema file as schemas.Load does: numbers as json.Number.
func ReadDoc(t testing.TB, file string) any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Accepts is gojsonschema's verdict on v; a panic (it has a few on numbers
// big.Rat or float64 cannot hold) counts as a rejection.
func Accepts(s *gojsonschema.Schema, v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	res, err := s.Validate(gojsonschema.NewRawLoader(v))
	return err == nil && res.Valid()
}

// mark is the first of 256 private-use runes that carry invalid UTF-8
// bytes through encoding/json, which would turn them into U+FFFD.
const mark = 0x10FF00

// Decode reads JSON into the values schemas' parse makes of it:
// encoding/json's with UseNumber, but a string keeps its invalid UTF-8
// bytes. ok is false for invalid JSON, and where data could already spell
// a mark rune.
func Decode(data []byte) (v any, ok bool) {
	text := make([]byte, 0, len(data))
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r >= mark:
			return nil, false
		case r == utf8.RuneError && n == 1:
			text = utf8.AppendRune(text, mark+rune(data[i]))
		default:
			text = append(text, data[i:i+n]...)
		}
		i += n
	}
	if bytes.Contains(bytes.ToLower(text), []byte(`\udbff`)) {
		return nil, false // the escaped high half of a mark
	}
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	return unmark(v), true
}

func unmark(v any) any {
	switch x := v.(type) {
	case string:
		return unmarkString(x)
	case []any:
		for i, e := range x {
			x[i] = unmark(e)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[unmarkString(k)] = unmark(e)
		}
		return out
	}
	return v
}

func unmarkString(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r >= mark }) {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r >= mark {
			b = append(b, byte(r-mark))
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b)
}
