package dir_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins/inputs/dir"
)

// next waits for a signal, failing after a generous deadline.
func next(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no signal", what)
	}
}

// drained reports whether no signal is pending.
func drained(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// touch makes an empty file: one Create event, so that no event of an
// earlier step is still on its way when the next step is checked.
func touch(t *testing.T, p string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestWatch(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := (&dir.Dir{Path: root}).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !drained(ch) {
		t.Fatal("a signal before any change")
	}
	touch(t, filepath.Join(root, "a.json"))
	next(t, ch, "new file")
	// Renamed in, as uploaders finish a partial file kept elsewhere.
	tmp := filepath.Join(t.TempDir(), "b.json")
	touch(t, tmp)
	if err := os.Rename(tmp, filepath.Join(root, "b.json")); err != nil {
		t.Fatal(err)
	}
	next(t, ch, "file moved in")
	// Written to.
	if err := os.WriteFile(filepath.Join(root, "a.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	next(t, ch, "file written")
	cancel()
	for range ch { // closed once ctx ends
	}
}

func TestWatchRecursive(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "old"), 0o755)
	ch, err := (&dir.Dir{Path: root, Recursive: true}).Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(root, "old", "a.json"))
	next(t, ch, "file in an existing sub-folder")
	// A folder made after Watch started is watched before its creation is
	// signalled.
	os.Mkdir(filepath.Join(root, "new"), 0o755)
	next(t, ch, "new folder")
	if !drained(ch) {
		t.Fatal("a signal no event explains")
	}
	touch(t, filepath.Join(root, "new", "b.json"))
	next(t, ch, "file in a new sub-folder")
}

func TestWatchMissingFolder(t *testing.T) {
	if _, err := (&dir.Dir{Path: filepath.Join(t.TempDir(), "nope")}).Watch(t.Context()); err == nil {
		t.Fatal("watching a missing folder worked")
	}
}
