package plugintest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// InputHarness gives the suite a fresh, empty input root and a way to put
// files in it behind the plugin's back.
//
// The suite runs its subtests one at a time and starts each with New, so Put,
// Get and Remove act on the root of the latest New.
type InputHarness struct {
	// New returns an initialised input, with its default options, whose root
	// is empty.
	New func(t *testing.T) plugins.Input
	// Put creates or replaces a file at a slash path relative to the root
	// (creating folders), with the given modification time when the backend
	// supports setting it.
	Put func(t *testing.T, path string, data []byte, mtime time.Time)
	// Get reads a file back (ok=false when absent), to check bytes behind the
	// plugin's back.
	Get func(t *testing.T, path string) (data []byte, ok bool)
	// Remove deletes a file behind the plugin's back (to simulate a file
	// vanishing).
	Remove func(t *testing.T, path string)
	// Recursive returns an input on the same root as in that also lists
	// sub-folders, or is nil when the input cannot.
	Recursive func(t *testing.T, in plugins.Input) plugins.Input
	// NoBackslash tells that the backend cannot hold a name with a
	// backslash (Azure turns it into a slash). The suite then checks only
	// that such a name never reaches another file.
	NoBackslash bool
}

// putTime is the modification time the suite gives its files.
var putTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// Input runs the conformance suite every input plugin must pass.
func Input(t *testing.T, h InputHarness) {
	t.Run("ListEmpty", func(t *testing.T) {
		in := h.New(t)
		checkList(t, in, map[string]int64{})
	})

	t.Run("ListTopLevel", func(t *testing.T) {
		in := h.New(t)
		want := map[string]int64{"a.json": 3, "b.csv": 0, "c with space.txt": 11}
		h.Put(t, "a.json", []byte("{}\n"), putTime)
		h.Put(t, "b.csv", nil, putTime)
		h.Put(t, "c with space.txt", []byte("hello world"), putTime)
		checkList(t, in, want)
	})

	t.Run("ListNotRecursiveByDefault", func(t *testing.T) {
		in := h.New(t)
		h.Put(t, "top.json", []byte("top"), putTime)
		h.Put(t, "sub/inner.json", []byte("inner"), putTime)
		h.Put(t, "sub/deeper/more.json", []byte("more"), putTime)
		checkList(t, in, map[string]int64{"top.json": 3})
	})

	t.Run("ListSkipsHidden", func(t *testing.T) {
		in := h.New(t)
		// Uploaders write partial files under a hidden name, then rename.
		h.Put(t, ".partial.json", []byte("half"), putTime)
		h.Put(t, ".hidden/x.json", []byte("x"), putTime)
		h.Put(t, "visible.json", []byte("whole"), putTime)
		checkList(t, in, map[string]int64{"visible.json": 5})
	})

	t.Run("ListManyFiles", func(t *testing.T) {
		in := h.New(t)
		// More than one page of any remote listing (commonly 1000).
		want := map[string]int64{}
		for i := range 2500 {
			p := fmt.Sprintf("f%04d.json", i)
			data := []byte(strings.Repeat("x", i%7))
			h.Put(t, p, data, putTime)
			want[p] = int64(len(data))
		}
		checkList(t, in, want)
	})

	t.Run("OpenExactBytes", func(t *testing.T) {
		in := h.New(t)
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		big := make([]byte, 5<<20)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range big {
			big[i] = byte(r.Uint32())
		}
		files := map[string][]byte{
			"empty.bin":   {},
			"bytes.bin":   all,
			"invalid.txt": []byte("ok \xff\xfe\x00 \xc3\x28 \r\n\r"),
			"big.bin":     big,
		}
		want := map[string]int64{}
		for p, data := range files {
			h.Put(t, p, data, putTime)
			want[p] = int64(len(data))
		}
		checkList(t, in, want)
		for p, data := range files {
			checkBytes(t, p+" read through Open", readAll(t, in, p), data)
		}
	})

	t.Run("BackslashIsPlainCharacter", func(t *testing.T) {
		// A backslash is part of a name, not a folder separator: each of
		// these is its own file, and the listing gives back the name that
		// opens it.
		in := h.New(t)
		files := map[string][]byte{
			`a\b/x.json`: []byte(`under the folder "a\b"`),
			"a/b/x.json": []byte(`under the folder "b" of "a"`),
			`c\d.json`:   []byte(`the file "c\d.json"`),
			"c/d.json":   []byte(`the file "d.json" of "c"`),
		}
		if h.NoBackslash {
			h.Put(t, "a/b/x.json", files["a/b/x.json"], putTime)
			for _, p := range []string{`a\b/x.json`, `a\b\x.json`} {
				if rc, err := in.Open(t.Context(), p); err == nil {
					data, _ := io.ReadAll(rc)
					rc.Close()
					t.Errorf("Open(%q) read %q: the backend holds no such name, so it reached another file", p, data)
				}
			}
			return
		}
		for p, data := range files {
			h.Put(t, p, data, putTime)
		}
		checkList(t, in, map[string]int64{`c\d.json`: int64(len(files[`c\d.json`]))})
		if h.Recursive != nil {
			want := map[string]int64{}
			for p, data := range files {
				want[p] = int64(len(data))
			}
			checkList(t, h.Recursive(t, in), want)
		}
		for p, data := range files {
			checkBytes(t, p+" read through Open", readAll(t, in, p), data)
			checkFile(t, h, p, data)
		}
	})

	t.Run("OpenVanished", func(t *testing.T) {
		in := h.New(t)
		h.Put(t, "gone.json", []byte("x"), putTime)
		checkList(t, in, map[string]int64{"gone.json": 1})
		h.Remove(t, "gone.json")
		rc, err := in.Open(t.Context(), "gone.json")
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, plugins.ErrVanished) {
			t.Errorf("Open of a removed file: err = %v; want one wrapping plugins.ErrVanished", err)
		}
	})

	t.Run("Move", func(t *testing.T) {
		in := h.New(t)
		h.Put(t, "a.json", []byte("payload"), putTime)
		got, err := in.Move(t.Context(), "a.json", "processed")
		if err != nil {
			t.Fatalf("Move: %v", err)
		}
		if got != "processed/a.json" {
			t.Errorf("Move returned %q; want %q", got, "processed/a.json")
		}
		checkFile(t, h, "processed/a.json", []byte("payload"))
		checkGone(t, h, "a.json")
		checkList(t, in, map[string]int64{})
	})

	t.Run("MoveNested", func(t *testing.T) {
		in := h.New(t)
		h.Put(t, "a.json", []byte("payload"), putTime)
		got, err := in.Move(t.Context(), "a.json", "a/b")
		if err != nil {
			t.Fatalf("Move: %v", err)
		}
		if got != "a/b/a.json" {
			t.Errorf("Move returned %q; want %q", got, "a/b/a.json")
		}
		checkFile(t, h, "a/b/a.json", []byte("payload"))
		checkGone(t, h, "a.json")
	})

	t.Run("MoveNeverOverwrites", func(t *testing.T) {
		in := h.New(t)
		h.Put(t, "processed/a.json", []byte("first"), putTime)
		seen := map[string]bool{"processed/a.json": true}
		// Twice, so that the free name is not always the same one.
		for _, data := range []string{"second", "third"} {
			h.Put(t, "a.json", []byte(data), putTime)
			got, err := in.Move(t.Context(), "a.json", "processed")
			if err != nil {
				t.Fatalf("Move of %q: %v", data, err)
			}
			if seen[got] || path.Dir(got) != "processed" {
				t.Errorf("Move of %q returned %q; want a new name in processed/ (taken: %v)", data, got, keys(seen))
			}
			seen[got] = true
			checkFile(t, h, got, []byte(data))
			checkGone(t, h, "a.json")
		}
		checkFile(t, h, "processed/a.json", []byte("first"))
	})

	t.Run("MoveIntoOwnFolder", func(t *testing.T) {
		// Nothing stops a caller from moving a file where it already is;
		// the file must survive it.
		in := h.New(t)
		h.Put(t, "sub/a.json", []byte("payload"), putTime)
		got, err := in.Move(t.Context(), "sub/a.json", "sub")
		if err != nil {
			// Refusing is fine as long as the file is left alone.
			checkFile(t, h, "sub/a.json", []byte("payload"))
			return
		}
		data, ok := h.Get(t, got)
		switch {
		case !ok:
			t.Errorf("Move(%q, %q) = %q, nil but %q does not exist: the file was lost", "sub/a.json", "sub", got, got)
		case path.Dir(got) != "sub":
			t.Errorf("Move(%q, %q) = %q; want a path in sub/", "sub/a.json", "sub", got)
		default:
			checkBytes(t, got, data, []byte("payload"))
		}
	})

	t.Run("Delete", func(t *testing.T) {
		in := h.New(t)
		h.Put(t, "a.json", []byte("x"), putTime)
		h.Put(t, "b.json", []byte("y"), putTime)
		if err := in.Delete(t.Context(), "a.json"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkGone(t, h, "a.json")
		checkFile(t, h, "b.json", []byte("y"))
		checkList(t, in, map[string]int64{"b.json": 1})
	})

	t.Run("DeleteVanished", func(t *testing.T) {
		in := h.New(t)
		h.Put(t, "gone.json", []byte("x"), putTime)
		checkList(t, in, map[string]int64{"gone.json": 1})
		h.Remove(t, "gone.json")
		if err := in.Delete(t.Context(), "gone.json"); !errors.Is(err, plugins.ErrVanished) {
			t.Errorf("Delete of a removed file: err = %v; want one wrapping plugins.ErrVanished", err)
		}
	})

	t.Run("MoveVanished", func(t *testing.T) {
		in := h.New(t)
		h.Put(t, "gone.json", []byte("x"), putTime)
		checkList(t, in, map[string]int64{"gone.json": 1})
		h.Remove(t, "gone.json")
		got, err := in.Move(t.Context(), "gone.json", "processed")
		if !errors.Is(err, plugins.ErrVanished) {
			t.Errorf("Move of a removed file = %q, %v; want an error wrapping plugins.ErrVanished", got, err)
		}
		checkGone(t, h, "processed/gone.json")
	})

	t.Run("RefusesEscapes", func(t *testing.T) {
		in := h.New(t)
		// Files where a plugin that strips "/" or "../" instead of refusing
		// would land, so that such a bug changes something visible.
		inside := map[string][]byte{
			"x":          []byte("root x"),
			"a/x":        []byte("a x"),
			"etc/passwd": []byte("not the real one"),
			"f.json":     []byte("victim"),
		}
		for p, data := range inside {
			h.Put(t, p, data, putTime)
		}
		// A file outside the root. Only a local backend could reach it, and
		// unlike /etc/passwd it is safe to lose when a plugin is broken.
		outDir := t.TempDir()
		outFile := filepath.Join(outDir, "x")
		if err := os.WriteFile(outFile, []byte("outside"), 0o644); err != nil {
			t.Fatal(err)
		}
		outDir, outFile = filepath.ToSlash(outDir), filepath.ToSlash(outFile)

		ctx := t.Context()
		refused := func(call string, err error) {
			t.Helper()
			switch {
			case err == nil:
				t.Errorf("%s succeeded; want it refused", call)
			case errors.Is(err, plugins.ErrVanished):
				// The engine ignores vanished files: a refusal must not look like one.
				t.Errorf("%s: err = %v; want a refusal, not plugins.ErrVanished", call, err)
			}
		}
		bad := []string{"../x", "a/../../x", "/x", outFile}
		for _, p := range append([]string{"/etc/passwd"}, bad...) {
			rc, err := in.Open(ctx, p)
			if err == nil {
				rc.Close()
			}
			refused(fmt.Sprintf("Open(%q)", p), err)
		}
		// Destructive calls never get the real /etc/passwd: a broken plugin
		// running as root would lose it.
		for _, p := range bad {
			got, err := in.Move(ctx, p, "processed")
			refused(fmt.Sprintf("Move(%q, %q) = %q", p, "processed", got), err)
			refused(fmt.Sprintf("Delete(%q)", p), in.Delete(ctx, p))
		}
		for _, d := range []string{"../out", "a/../../out", "/out", outDir + "/out"} {
			got, err := in.Move(ctx, "f.json", d)
			refused(fmt.Sprintf("Move(%q, %q) = %q", "f.json", d, got), err)
		}

		for p, data := range inside {
			checkFile(t, h, p, data)
		}
		for _, p := range []string{"processed/x", "out/f.json"} {
			checkGone(t, h, p)
		}
		if data, err := os.ReadFile(outFile); err != nil || string(data) != "outside" {
			t.Errorf("the file outside the root: %q, %v; want it untouched", data, err)
		}
		if _, err := os.Stat(filepath.Join(outDir, "out")); err == nil {
			t.Errorf("a folder was created outside the root")
		}
		checkList(t, in, map[string]int64{"x": 6, "f.json": 6})
	})
}

// checkList compares the listing with want (path to size) as a set.
func checkList(t *testing.T, in plugins.Input, want map[string]int64) {
	t.Helper()
	files, err := in.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	got := map[string]int64{}
	var problems []string
	for _, f := range files {
		if _, dup := got[f.Path]; dup {
			problems = append(problems, fmt.Sprintf("%q listed twice", f.Path))
		}
		got[f.Path] = f.Size
		if c, err := plugins.CleanPath(f.Path); err != nil || c != f.Path {
			problems = append(problems, fmt.Sprintf("%q is not a clean slash path relative to the root", f.Path))
		}
	}
	for p, size := range want {
		g, ok := got[p]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%q missing", p))
		case g != size:
			problems = append(problems, fmt.Sprintf("%q has size %d; want %d", p, g, size))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			problems = append(problems, fmt.Sprintf("%q listed but not expected", p))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("and %d more", len(problems)-20))
		}
		t.Errorf("List returned %d files; want %d:\n  %s", len(files), len(want), strings.Join(problems, "\n  "))
	}
}

func readAll(t *testing.T, in plugins.Input, p string) []byte {
	t.Helper()
	rc, err := in.Open(t.Context(), p)
	if err != nil {
		t.Fatalf("Open(%q): %v", p, err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", p, err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("closing %q: %v", p, err)
	}
	return data
}

// checkBytes reports where got and want first differ, not megabytes of both.
func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: %d bytes; want %d, first difference at offset %d", what, len(got), len(want), i)
}

func checkFile(t *testing.T, h InputHarness, p string, want []byte) {
	t.Helper()
	got, ok := h.Get(t, p)
	if !ok {
		t.Errorf("%q is missing", p)
		return
	}
	checkBytes(t, p, got, want)
}

func checkGone(t *testing.T, h InputHarness, p string) {
	t.Helper()
	if _, ok := h.Get(t, p); ok {
		t.Errorf("%q still exists", p)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
