package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("x", Max), strings.Repeat("x", Max)},
		{strings.Repeat("x", Max+1), strings.Repeat("x", Max-3) + "..."},
		{`"a` + strings.Repeat("é", 40) + `"`, `"a` + strings.Repeat("é", 27) + "..."},
		{strings.Repeat("€", 30), strings.Repeat("€", 19) + "..."},
		{strings.Repeat("𝄞", 30), strings.Repeat("𝄞", 14) + "..."},
	} {
		if got := Text(c.in); got != c.want || !utf8.ValidString(got) {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
