package plugins

import "testing"

func TestCleanDir(t *testing.T) {
	for in, want := range map[string]string{"": ".", ".": ".", "failed": "failed", "a/./b/": "a/b", `a\b`: "a/b"} {
		if got, err := CleanDir(in); err != nil || got != want {
			t.Errorf("CleanDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"..", "/abs", "a/../..", "a/../b"} {
		if got, err := CleanDir(bad); err == nil {
			t.Errorf("CleanDir(%q) = %q, want an error", bad, got)
		}
	}
}
