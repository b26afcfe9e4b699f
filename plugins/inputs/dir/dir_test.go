//go:build unix

// Unix only: the tests make a FIFO and rely on hard links.

package dir_test

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/inputs/dir"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

func TestConformance(t *testing.T) {
	h := plugintest.LocalHarness(func(t *testing.T, root string) plugins.Input {
		return initDir(t, &dir.Dir{Path: root})
	})
	h.Recursive = func(t *testing.T, in plugins.Input) plugins.Input {
		return initDir(t, &dir.Dir{Path: in.(*dir.Dir).Path, Recursive: true})
	}
	plugintest.Input(t, h)
}

func initDir(t *testing.T, d *dir.Dir) *dir.Dir {
	t.Helper()
	if err := d.Init(t.Context(), plugins.Env{Name: "in"}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return d
}

// listed returns the listing's paths, sorted, failing on a duplicate.
func listed(t *testing.T, d *dir.Dir) []string {
	t.Helper()
	files, err := d.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	slices.Sort(out)
	if c := slices.Compact(slices.Clone(out)); len(c) != len(out) {
		t.Errorf("List has duplicates: %v", out)
	}
	return out
}

var mtime = time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)

func TestRecursive(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"top.json", "sub/a.json", "sub/deeper/b.json", "sub/.partial.json", ".hidden/c.json", "sub/.hidden/d.json"} {
		plugintest.PutFile(t, root, p, []byte(p), mtime)
	}
	d := initDir(t, &dir.Dir{Path: root, Recursive: true})
	want := []string{"sub/a.json", "sub/deeper/b.json", "top.json"}
	if got := listed(t, d); !slices.Equal(got, want) {
		t.Errorf("recursive List = %v; want %v", got, want)
	}
	// The slash paths it lists are the ones Open takes.
	rc, err := d.Open(t.Context(), "sub/deeper/b.json")
	if err != nil {
		t.Fatalf("Open of a listed path: %v", err)
	}
	rc.Close()
}

// TestListsButNeverReadsSymlinksAndFifos: links, pipes and linked folders
// are listed, so that a run accounts for each, but never read: Open refuses
// them, and a linked folder is not followed, even when recursive.
func TestListsButNeverReadsSymlinksAndFifos(t *testing.T) {
	root := t.TempDir()
	plugintest.PutFile(t, root, "real.json", []byte("{}"), mtime)
	plugintest.PutFile(t, root, "sub/s.json", []byte("{}"), mtime)
	if err := os.Symlink("real.json", filepath.Join(root, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(root, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "pipe.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rec := range []bool{false, true} {
		want := []string{"link.json", "linkdir", "pipe.json", "real.json"}
		if rec {
			want = append(want, "sub/s.json")
		}
		d := initDir(t, &dir.Dir{Path: root, Recursive: rec})
		if got := listed(t, d); !slices.Equal(got, want) {
			t.Errorf("recursive=%v: List = %v; want %v", rec, got, want)
		}
		for _, p := range []string{"link.json", "linkdir", "pipe.json"} {
			if rc, err := d.Open(t.Context(), p); !errors.Is(err, plugins.ErrNotRegular) {
				if rc != nil {
					rc.Close()
				}
				t.Errorf("Open(%s) = %v; want ErrNotRegular", p, err)
			}
		}
	}
}

func TestInit(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file.json")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(base, "missing"), file} {
		if err := (&dir.Dir{Path: p}).Init(t.Context(), plugins.Env{Name: "in"}); err == nil {
			t.Errorf("Init with path %s succeeded; want an error", p)
		}
	}
	if err := (&dir.Dir{Path: base}).Init(t.Context(), plugins.Env{Name: "in"}); err != nil {
		t.Errorf("Init with a folder: %v", err)
	}
}

func TestModTime(t *testing.T) {
	root := t.TempDir()
	plugintest.PutFile(t, root, "a.json", []byte("{}"), mtime)
	files, err := initDir(t, &dir.Dir{Path: root}).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || !files[0].ModTime.Equal(mtime) || files[0].Size != 2 {
		t.Errorf("List = %+v; want a.json, size 2, modified %v", files, mtime)
	}
}

// TestMoveFreeNames pins the documented naming: -1, -2, … before the extension.
func TestMoveFreeNames(t *testing.T) {
	root := t.TempDir()
	d := initDir(t, &dir.Dir{Path: root})
	plugintest.PutFile(t, root, "processed/r.json", []byte("0"), mtime)
	for _, want := range []string{"processed/r-1.json", "processed/r-2.json"} {
		plugintest.PutFile(t, root, "r.json", []byte(want), mtime)
		got, err := d.Move(t.Context(), "r.json", "processed")
		if err != nil || got != want {
			t.Errorf("Move = %q, %v; want %q", got, err, want)
		}
	}
	if got := plugintest.Names(t, filepath.Join(root, "processed")); !slices.Equal(got, []string{"r-1.json", "r-2.json", "r.json"}) {
		t.Errorf("processed/ holds %v", got)
	}
}

// A crash between the hard link and the unlink leaves the file under both
// names; moving it again must finish the move, not make a second copy.
func TestMoveHealsInterruptedMove(t *testing.T) {
	for _, tc := range []struct {
		name  string
		taken bool // processed/x.json already holds a different file
		want  string
	}{
		{"free name", false, "processed/x.json"},
		{"after a taken name", true, "processed/x-1.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			d := initDir(t, &dir.Dir{Path: root})
			plugintest.PutFile(t, root, "x.json", []byte("payload"), mtime)
			wantNames := []string{filepath.Base(tc.want)}
			if tc.taken {
				plugintest.PutFile(t, root, "processed/x.json", []byte("other"), mtime)
				wantNames = []string{"x-1.json", "x.json"}
			}
			link := filepath.Join(root, filepath.FromSlash(tc.want))
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(filepath.Join(root, "x.json"), link); err != nil {
				t.Fatal(err)
			}

			got, err := d.Move(t.Context(), "x.json", "processed")
			if err != nil || got != tc.want {
				t.Fatalf("Move = %q, %v; want %q", got, err, tc.want)
			}
			if got := plugintest.Names(t, filepath.Join(root, "processed")); !slices.Equal(got, wantNames) {
				t.Errorf("processed/ holds %v; want %v", got, wantNames)
			}
			if data, err := os.ReadFile(link); err != nil || string(data) != "payload" {
				t.Errorf("%s: %q, %v; want the payload", tc.want, data, err)
			}
			if _, err := os.Lstat(filepath.Join(root, "x.json")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the original is still there (Lstat: %v)", err)
			}
		})
	}
}

// TestListSkipsNamesWithoutAPath: a name no path can give back exactly
// (not UTF-8, or one a Windows server would take as a way up) is left
// alone with a warning, and never stands for another file.
func TestListSkipsNamesWithoutAPath(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"ok.json", "bad\xff.json", `x\..\..\up.json`, "bad\xfe/x.json", `a\b/x.json`} {
		plugintest.PutFile(t, root, p, []byte("x"), mtime)
	}
	var logs plugintest.Buffer
	d := &dir.Dir{Path: root, Recursive: true}
	if err := d.Init(t.Context(), plugins.Env{Name: "in", Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if got, want := listed(t, d), []string{`a\b/x.json`, "ok.json"}; !slices.Equal(got, want) {
		t.Errorf("List = %q; want %q", got, want)
	}
	for _, name := range []string{`bad\xff.json`, `name=x\..\..\up.json`, `bad\xfe`} {
		if !strings.Contains(logs.String(), name) {
			t.Errorf("no warning names %s:\n%s", name, logs.String())
		}
	}
	if !utf8.ValidString(logs.String()) {
		t.Errorf("the log is not valid UTF-8:\n%q", logs.String())
	}
}
