//go:build unix

package dir_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/carpipe/carpipe/plugins/inputs/dir"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// TestMoveToRoot: reprocess puts a failed file back at the root, "."; the
// name is free or the next one is picked, never overwritten.
func TestMoveToRoot(t *testing.T) {
	root := t.TempDir()
	d := initDir(t, &dir.Dir{Path: root})
	plugintest.PutFile(t, root, "failed/r.json", []byte("back"), mtime)
	got, err := d.Move(t.Context(), "failed/r.json", ".")
	if err != nil || got != "r.json" {
		t.Fatalf("Move = %q, %v; want r.json", got, err)
	}
	if data, err := os.ReadFile(filepath.Join(root, "r.json")); err != nil || string(data) != "back" {
		t.Fatalf("r.json holds %q, %v", data, err)
	}
	plugintest.PutFile(t, root, "failed/r.json", []byte("second"), mtime)
	if got, err := d.Move(t.Context(), "failed/r.json", "."); err != nil || got != "r-1.json" {
		t.Errorf("Move onto a taken name = %q, %v; want r-1.json", got, err)
	}
	if got, err := d.Move(t.Context(), "r.json", "."); err != nil || got != "r.json" {
		t.Errorf("Move to its own folder = %q, %v", got, err)
	}
	if _, err := d.Move(t.Context(), "r.json", ".."); err == nil {
		t.Error("Move out of the root succeeded")
	}
}
