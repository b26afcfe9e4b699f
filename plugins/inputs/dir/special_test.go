//go:build unix

package dir_test

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/inputs/dir"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// openSoon calls Open, failing the test if it does not return within a
// generous bound: a blocked open would hang the run.
func openSoon(t *testing.T, d *dir.Dir, p string) (io.ReadCloser, error) {
	t.Helper()
	type result struct {
		rc  io.ReadCloser
		err error
	}
	done := make(chan result, 1)
	go func() {
		rc, err := d.Open(t.Context(), p)
		done <- result{rc, err}
	}()
	select {
	case r := <-done:
		return r.rc, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Open(%q) still blocked after 10s", p)
		return nil, nil
	}
}

// noReader checks that nothing holds the FIFO open for reading: a writer
// that does not wait is then refused.
func noReader(t *testing.T, fifo string) {
	t.Helper()
	fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		syscall.Close(fd)
		t.Errorf("%s is still open for reading after Open refused it", fifo)
	} else if !errors.Is(err, syscall.ENXIO) {
		t.Fatalf("opening %s for writing: %v", fifo, err)
	}
}

// TestOpenRefusesWhatReplacedAFile: between the listing and the reading, a
// named pipe, a link to one, a socket or a folder takes the file's place.
// Open returns at once with plugins.ErrNotRegular, keeping nothing open.
func TestOpenRefusesWhatReplacedAFile(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		swap       func(t *testing.T, root, p string)
	}{
		{"named pipe", "a named pipe", func(t *testing.T, root, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"link to a named pipe", "a named pipe", func(t *testing.T, root, p string) {
			if err := syscall.Mkfifo(filepath.Join(root, ".pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(".pipe", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"link to another file", "a symbolic link", func(t *testing.T, root, p string) {
			plugintest.PutFile(t, root, ".other.json", []byte("other"), mtime)
			if err := os.Symlink(".other.json", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"socket", "a socket", func(t *testing.T, root, p string) {
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}},
		{"folder", "a folder", func(t *testing.T, root, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			plugintest.PutFile(t, root, "a.json", []byte("{}"), mtime)
			d := initDir(t, &dir.Dir{Path: root})
			if got := listed(t, d); !slices.Equal(got, []string{"a.json"}) {
				t.Fatalf("List = %v", got)
			}
			p := filepath.Join(root, "a.json")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			tc.swap(t, root, p)
			rc, err := openSoon(t, d, "a.json")
			if err == nil {
				rc.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, plugins.ErrNotRegular) || errors.Is(err, plugins.ErrVanished) {
				t.Errorf("Open: %v; want plugins.ErrNotRegular", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "a.json: not a regular file ("+tc.want+")") {
				t.Errorf("Open: %q; want it to say a.json is not a regular file (%s)", msg, tc.want)
			}
			for _, fifo := range []string{p, filepath.Join(root, ".pipe")} {
				if fi, err := os.Stat(fifo); err == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
					noReader(t, fifo)
				}
			}
		})
	}
}

// TestOpenReadsBlocking: the file Open returns reads like any other, having
// been opened without waiting.
func TestOpenReadsBlocking(t *testing.T) {
	root := t.TempDir()
	data := []byte(strings.Repeat("0123456789", 100_000))
	plugintest.PutFile(t, root, "a.json", data, mtime)
	d := initDir(t, &dir.Dir{Path: root})
	rc, err := openSoon(t, d, "a.json")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || len(got) != len(data) {
		t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(data))
	}
	f := rc.(*os.File)
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	raw.Control(func(fd uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		flags = int(r)
	})
	if flags&syscall.O_NONBLOCK != 0 {
		t.Error("the file handed out is still in non-blocking mode")
	}
}

// TestLinkToPipeNeverRead: a link to a named pipe is a link: listed, never
// read, and opening it does not block.
func TestLinkToPipeNeverRead(t *testing.T) {
	root := t.TempDir()
	plugintest.PutFile(t, root, "real.json", []byte("{}"), mtime)
	if err := syscall.Mkfifo(filepath.Join(root, ".pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".pipe", filepath.Join(root, "pipe.json")); err != nil {
		t.Fatal(err)
	}
	d := initDir(t, &dir.Dir{Path: root})
	if got := listed(t, d); !slices.Equal(got, []string{"pipe.json", "real.json"}) {
		t.Errorf("List = %v; want pipe.json and real.json", got)
	}
	if _, err := d.Open(t.Context(), "pipe.json"); !errors.Is(err, plugins.ErrNotRegular) {
		t.Errorf("Open = %v; want ErrNotRegular", err)
	}
}

// outside returns a folder next to the root, and checks at the end that
// nothing was put into it.
func outside(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	t.Cleanup(func() {
		if got := plugintest.Names(t, out); len(got) != 0 {
			t.Errorf("the folder outside the root now holds %v", got)
		}
	})
	return out
}

// TestMoveRefusesLinkedTargets: a move folder, or one of its parents, that
// is a symbolic link is refused, whether it leads outside the root or back
// inside; the file stays where it is.
func TestMoveRefusesLinkedTargets(t *testing.T) {
	for _, tc := range []struct {
		name, dir, link, target string // link (relative to the root) points to target ("" for outside)
	}{
		{"target outside", "processed", "processed", ""},
		{"parent outside", "done/2024", "done", ""},
		{"target inside", "processed", "processed", "kept"},
		{"target is the root", "processed", "processed", "."},
		{"nested link", "done/2024", "done/2024", "../kept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			out := outside(t)
			plugintest.PutFile(t, root, "a.json", []byte("payload"), mtime)
			if err := os.MkdirAll(filepath.Join(root, "kept"), 0o755); err != nil {
				t.Fatal(err)
			}
			target := tc.target
			if target == "" {
				target = out
			}
			link := filepath.Join(root, filepath.FromSlash(tc.link))
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			d := initDir(t, &dir.Dir{Path: root})
			got, err := d.Move(t.Context(), "a.json", tc.dir)
			if err == nil {
				t.Fatalf("Move into %s = %q; want it refused", tc.dir, got)
			}
			if errors.Is(err, plugins.ErrVanished) || !strings.Contains(err.Error(), tc.link+" is a symbolic link") {
				t.Errorf("Move into %s: %v; want a refusal naming %s as a symbolic link", tc.dir, err, tc.link)
			}
			if data, err := os.ReadFile(filepath.Join(root, "a.json")); err != nil || string(data) != "payload" {
				t.Errorf("a.json: %q, %v; want it left in place", data, err)
			}
			if got := plugintest.Names(t, filepath.Join(root, "kept")); len(got) != 0 {
				t.Errorf("kept/ holds %v", got)
			}
		})
	}
}

// TestLinkedFolderSwappedIn: a listed file's folder is replaced by a link
// to another folder holding a file of the same name. Neither Open, Move
// nor Delete may reach that other file.
func TestLinkedFolderSwappedIn(t *testing.T) {
	for _, target := range []string{"inside", "outside"} {
		t.Run(target, func(t *testing.T) {
			root := t.TempDir()
			out := outside(t)
			plugintest.PutFile(t, root, "sub/a.json", []byte("listed"), mtime)
			other := filepath.Join(root, "processed")
			if target == "outside" {
				other = filepath.Join(out, "processed")
				t.Cleanup(func() { os.RemoveAll(other) })
			}
			plugintest.PutFile(t, other, "a.json", []byte("other"), mtime)
			d := initDir(t, &dir.Dir{Path: root, Recursive: true})
			if got := listed(t, d); !slices.Contains(got, "sub/a.json") {
				t.Fatalf("List = %v", got)
			}
			if err := os.RemoveAll(filepath.Join(root, "sub")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, filepath.Join(root, "sub")); err != nil {
				t.Fatal(err)
			}

			rc, err := openSoon(t, d, "sub/a.json")
			if err == nil {
				data, _ := io.ReadAll(rc)
				rc.Close()
				t.Errorf("Open read %q through a linked folder", data)
			} else if !errors.Is(err, plugins.ErrNotRegular) {
				t.Errorf("Open: %v; want plugins.ErrNotRegular", err)
			}
			if got, err := d.Move(t.Context(), "sub/a.json", "processed"); err == nil || errors.Is(err, plugins.ErrVanished) {
				t.Errorf("Move = %q, %v; want a refusal", got, err)
			}
			if got, err := d.Move(t.Context(), "sub/a.json", "done"); err == nil || errors.Is(err, plugins.ErrVanished) {
				t.Errorf("Move = %q, %v; want a refusal", got, err)
			}
			if err := d.Delete(t.Context(), "sub/a.json"); err == nil || errors.Is(err, plugins.ErrVanished) {
				t.Errorf("Delete: %v; want a refusal", err)
			}
			if data, err := os.ReadFile(filepath.Join(other, "a.json")); err != nil || string(data) != "other" {
				t.Errorf("the other file: %q, %v; want it untouched", data, err)
			}
			os.RemoveAll(other) // for outside's check
		})
	}
}

// TestOpenOutsideRefused: a link out of the root is never followed, even
// when it replaces a listed file.
func TestOpenOutsideRefused(t *testing.T) {
	root := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	plugintest.PutFile(t, root, "a.json", []byte("{}"), mtime)
	d := initDir(t, &dir.Dir{Path: root})
	listed(t, d)
	os.Remove(filepath.Join(root, "a.json"))
	if err := os.Symlink(secret, filepath.Join(root, "a.json")); err != nil {
		t.Fatal(err)
	}
	rc, err := openSoon(t, d, "a.json")
	if err == nil {
		data, _ := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("Open read %q from outside the root", data)
	}
	if !errors.Is(err, plugins.ErrNotRegular) || !strings.Contains(err.Error(), "a.json: not a regular file (a symbolic link)") {
		t.Errorf("Open: %v; want plugins.ErrNotRegular for a symbolic link", err)
	}
}
