package config

import (
	"reflect"
	"testing"
)

func TestExpand(t *testing.T) {
	env := mapEnv(map[string]string{
		"A":     "a",
		"B":     "bee",
		"EMPTY": "",
		"REF":   "${A}", // values from the environment are never expanded again
		"DOLLR": "$$",
	})
	const malformed = " (use ${NAME}, ${NAME:-default} or ${NAME:?message})"
	for _, tc := range []struct {
		in, want string
		probs    []string
	}{
		{"plain", "plain", nil},
		{"${A}", "a", nil},
		{"x${A}y${B}z", "xaybeez", nil},
		{"${EMPTY}", "", nil},
		{"${UNSET}", "", []string{"variable UNSET is not set"}},
		{"${UNSET}-${NOPE}", "-", []string{"variable UNSET is not set", "variable NOPE is not set"}},

		{"${A:-def}", "a", nil},
		{"${UNSET:-def}", "def", nil},
		{"${EMPTY:-def}", "def", nil},
		{"${UNSET:-}", "", nil},
		{"${UNSET:-http://h:80/x}", "http://h:80/x", nil},
		{"${UNSET:-$$}", "$$", nil}, // a default is literal text

		{"${A:?set A}", "a", nil},
		{"${UNSET:?set it please}", "", []string{"variable UNSET is not set: set it please"}},
		{"${EMPTY:?set it please}", "", []string{"variable EMPTY is empty: set it please"}},
		{"${UNSET:?}", "", []string{"variable UNSET is not set"}},

		{"$$", "$", nil},
		{"$$$$", "$$", nil},
		{"$$$", "$$", nil},
		{"$${A}", "${A}", nil},
		{"$", "$", nil},
		{"5$", "5$", nil},
		{"a$b $1", "a$b $1", nil},
		{"${REF}", "${A}", nil},
		{"${DOLLR}", "$$", nil},

		{"${", "", []string{`malformed variable reference: "${" without a closing "}"`}},
		{"ab${A", "ab", []string{`malformed variable reference: "${" without a closing "}"`}},
		{"${}", "", []string{`malformed variable reference "${}"` + malformed}},
		{"${1A}", "", []string{`malformed variable reference "${1A}"` + malformed}},
		{"${A B}", "", []string{`malformed variable reference "${A B}"` + malformed}},
		{"${A-x}", "", []string{`malformed variable reference "${A-x}"` + malformed}},
		{"${A:}", "", []string{`malformed variable reference "${A:}"` + malformed}},
		{"${A:+x}", "", []string{`malformed variable reference "${A:+x}"` + malformed}},
		{"${A:-${B}}", "}", []string{`malformed variable reference "${A:-${B}"` + malformed}},
	} {
		got, probs := Expand(tc.in, env)
		if got != tc.want || !reflect.DeepEqual(probs, tc.probs) {
			t.Errorf("Expand(%q) = %q, %q; want %q, %q", tc.in, got, probs, tc.want, tc.probs)
		}
	}
}
