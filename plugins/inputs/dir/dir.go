// Package dir reads files from a local folder.
package dir

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/carpipe/carpipe/plugins"
)

//go:embed sample.yaml
var sample string

func init() {
	plugins.Default.AddInput(plugins.InputSpec{
		Name:   "dir",
		Doc:    "Reads files from a local folder (a mounted volume in containers).",
		Sample: sample,
		New:    func() plugins.Input { return &Dir{} },
	})
}

// Dir is a local folder.
type Dir struct {
	Path      string `yaml:"path" required:"true" carpipe:"path" doc:"the folder to read"`
	Recursive bool   `yaml:"recursive" doc:"also read sub-folders (the on_success/on_failure folders are never read)"`
}

var (
	_ plugins.Input  = (*Dir)(nil)
	_ plugins.Initer = (*Dir)(nil)
)

// Init checks that the folder exists.
func (d *Dir) Init(context.Context, plugins.Env) error {
	st, err := os.Stat(d.Path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", d.Path)
	}
	return nil
}

// List returns the regular files, skipping hidden ones, which uploaders use
// for partial files.
func (d *Dir) List(ctx context.Context) ([]plugins.File, error) {
	var out []plugins.File
	err := filepath.WalkDir(d.Path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == d.Path {
				return err
			}
			return nil // vanished or unreadable entry: the next run sees it
		}
		if p == d.Path {
			return nil
		}
		if strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			if !d.Recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(d.Path, p)
		out = append(out, plugins.File{Path: filepath.ToSlash(rel), Size: info.Size(), ModTime: info.ModTime()})
		return ctx.Err()
	})
	return out, err
}

func (d *Dir) abs(p string) (string, error) {
	c, err := plugins.CleanPath(p)
	if err != nil {
		return "", err
	}
	return filepath.Join(d.Path, filepath.FromSlash(c)), nil
}

// Open opens a listed file.
func (d *Dir) Open(_ context.Context, p string) (io.ReadCloser, error) {
	a, err := d.abs(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(a)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", plugins.ErrVanished, p)
	}
	return f, err
}

// Move links the file under a free name in dir and then unlinks the
// original, so that a file already there is never overwritten.
func (d *Dir) Move(_ context.Context, p, dir string) (string, error) {
	p, err := plugins.CleanPath(p)
	if err != nil {
		return "", err
	}
	if dir, err = plugins.CleanDir(dir); err != nil {
		return "", err
	}
	if path.Dir(p) == dir {
		return p, nil // already there
	}
	src, destDir := filepath.Join(d.Path, filepath.FromSlash(p)), filepath.Join(d.Path, filepath.FromSlash(dir))
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return "", err
	}
	name := path.Base(p)
	ext := path.Ext(name)
	for i := 0; ; i++ {
		cand := name
		if i > 0 {
			cand = strings.TrimSuffix(name, ext) + "-" + strconv.Itoa(i) + ext
		}
		dst := filepath.Join(destDir, cand)
		err := os.Link(src, dst)
		if errors.Is(err, fs.ErrExist) {
			if same(src, dst) {
				if sameEntry(src, dst) { // dir is a link back to the file's folder
					return p, nil
				}
				// An earlier move stopped half-way.
				return path.Join(dir, cand), os.Remove(src)
			}
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(src); serr != nil {
				return "", fmt.Errorf("%w: %s", plugins.ErrVanished, p)
			}
			return "", err
		}
		if err != nil {
			// No hard links here (some network file systems): rename, having
			// checked the name is free.
			if _, serr := os.Lstat(dst); serr == nil {
				continue
			}
			if err := os.Rename(src, dst); err != nil {
				return "", err
			}
			return path.Join(dir, cand), nil
		}
		if err := os.Remove(src); err != nil {
			return "", err
		}
		return path.Join(dir, cand), nil
	}
}

// Delete removes a file.
func (d *Dir) Delete(_ context.Context, p string) error {
	a, err := d.abs(p)
	if err != nil {
		return err
	}
	err = os.Remove(a)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", plugins.ErrVanished, p)
	}
	return err
}

func same(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// sameEntry reports whether two paths name one directory entry.
func sameEntry(a, b string) bool {
	da, err1 := filepath.EvalSymlinks(filepath.Dir(a))
	db, err2 := filepath.EvalSymlinks(filepath.Dir(b))
	return err1 == nil && err2 == nil && da == db && filepath.Base(a) == filepath.Base(b)
}
