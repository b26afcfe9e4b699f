package plugins

import (
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	// Kept exactly: a backslash, a space or a line break is part of a name.
	for _, ok := range []string{"a.json", "sub/a.json", `a\b/x.json`, `c\d.json`, `trailing\`, `\lead.json`, "a b/c\nd.json", "..x", "x..", "...", "été.json"} {
		if got, err := CleanPath(ok); err != nil || got != ok {
			t.Errorf("CleanPath(%q) = %q, %v; want it unchanged", ok, got, err)
		}
	}
	for bad, why := range map[string]string{
		"":             "empty",
		".":            "root",
		"./":           "root",
		"/abs":         "not relative",
		"..":           "escapes",
		"../x":         "escapes",
		"a/../../x":    "escapes",
		"a/../b":       "escapes",
		`..\x`:         "escapes",
		`a\..\..\x`:    "escapes",
		"a//b":         `"a/b" would name the same file`,
		"a/./b":        `"a/b" would name the same file`,
		"./a":          `"a" would name the same file`,
		"a/":           `"a" would name the same file`,
		"a\x00b":       "NUL",
		"bad\xffutf-8": "not valid UTF-8",
	} {
		got, err := CleanPath(bad)
		if err == nil {
			t.Errorf("CleanPath(%q) = %q; want an error (%s)", bad, got, why)
			continue
		}
		if !strings.Contains(err.Error(), why) {
			t.Errorf("CleanPath(%q): %v; want it to say %q", bad, err, why)
		}
		if msg := err.Error(); !strings.ContainsRune(msg, '"') || strings.ContainsRune(msg, 0) || !isUTF8(msg) {
			t.Errorf("CleanPath(%q): error %q does not quote the path as valid UTF-8", bad, msg)
		}
	}
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "?") == s }

func TestCleanDir(t *testing.T) {
	for in, want := range map[string]string{"": ".", ".": ".", "./": ".", "failed": "failed", "a/./b/": "a/b", "done//2024": "done/2024", `a\b`: `a\b`} {
		if got, err := CleanDir(in); err != nil || got != want {
			t.Errorf("CleanDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"..", "/abs", "a/../..", "a/../b", `..\up`, "a\x00"} {
		if got, err := CleanDir(bad); err == nil {
			t.Errorf("CleanDir(%q) = %q, want an error", bad, got)
		}
	}
}
