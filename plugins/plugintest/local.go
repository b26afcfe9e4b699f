package plugintest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// LocalHarness runs the suite against an input whose files live in a local
// folder: the dir input, or a test server serving one. newInput gets a
// fresh root (from LocalRoot) for every subtest.
func LocalHarness(newInput func(t *testing.T, root string) plugins.Input) InputHarness {
	var root string // of the latest New; the suite runs one subtest at a time
	return InputHarness{
		New: func(t *testing.T) plugins.Input {
			root = LocalRoot(t)
			return newInput(t, root)
		},
		Put: func(t *testing.T, p string, data []byte, mtime time.Time) { PutFile(t, root, p, data, mtime) },
		Get: func(t *testing.T, p string) ([]byte, bool) {
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
			if errors.Is(err, fs.ErrNotExist) {
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
			return data, true
		},
		Remove: func(t *testing.T, p string) {
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(p))); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// LocalRoot returns an empty folder "in" whose parent also holds a file
// "x", the target of the suite's "../x" and "a/../../x"; at the end of the
// test it checks that nothing outside the root changed.
func LocalRoot(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "in")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	canary := filepath.Join(base, "x")
	if err := os.WriteFile(canary, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if data, err := os.ReadFile(canary); err != nil || string(data) != "outside" {
			t.Errorf("the file next to the root: %q, %v; want it untouched", data, err)
		}
		if got := Names(t, base); !slices.Equal(got, []string{"in", "x"}) {
			t.Errorf("next to the root: %v; want only [in x]", got)
		}
	})
	return root
}

// PutFile writes a file under root (making its folders) with its mtime.
func PutFile(t *testing.T, root, p string, data []byte, mtime time.Time) {
	t.Helper()
	a := filepath.Join(root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(a), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// Names lists a folder's entries, sorted.
func Names(t *testing.T, folder string) []string {
	t.Helper()
	es, err := os.ReadDir(folder)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
