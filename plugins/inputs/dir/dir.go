// Package dir reads files from a local folder.
package dir

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
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

	log *slog.Logger
}

var (
	_ plugins.Input  = (*Dir)(nil)
	_ plugins.Initer = (*Dir)(nil)
)

// Init checks that the folder exists.
func (d *Dir) Init(_ context.Context, env plugins.Env) error {
	d.log = env.Logger
	st, err := os.Stat(d.Path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", d.Path)
	}
	return nil
}

func (d *Dir) logger() *slog.Logger {
	if d.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.log
}

// root opens the folder for one call. Every access goes through it, so that
// no name, "..", or symbolic link swapped in meanwhile reaches outside.
func (d *Dir) root() (*os.Root, error) { return os.OpenRoot(d.Path) }

// List returns the regular files, skipping hidden ones, which uploaders use
// for partial files, and names that no path can give back exactly.
func (d *Dir) List(ctx context.Context) ([]plugins.File, error) {
	r, err := d.root()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []plugins.File
	err = fs.WalkDir(r.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil // vanished or unreadable entry: the next run sees it
		}
		if p == "." {
			return nil
		}
		if strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() && !d.Recursive {
			return fs.SkipDir
		}
		// Links (even to files), pipes, sockets and devices are listed, so
		// that a run accounts for them, but Open refuses them: never read.
		if err := d.checkPath(p); err != nil {
			d.logger().Warn("left alone: its name cannot be given back as a path", "name", p, "error", err.Error())
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		out = append(out, plugins.File{Path: p, Size: info.Size(), ModTime: info.ModTime()})
		return ctx.Err()
	})
	return out, err
}

// checkPath refuses a path that is not exactly one file's name.
func (d *Dir) checkPath(p string) error {
	if _, err := plugins.CleanPath(p); err != nil {
		return err
	}
	if os.PathSeparator != '/' && strings.ContainsRune(p, os.PathSeparator) {
		return fmt.Errorf("path %q holds %q, which separates folders here", p, os.PathSeparator)
	}
	return nil
}

// Open opens a listed file. It opens without waiting (a named pipe would
// otherwise block until a writer comes) and then checks what it opened:
// anything but a regular file is refused with plugins.ErrNotRegular.
func (d *Dir) Open(_ context.Context, p string) (io.ReadCloser, error) {
	if err := d.checkPath(p); err != nil {
		return nil, err
	}
	r, err := d.root()
	if err != nil {
		return nil, err
	}
	defer r.Close() // files opened through it stay open
	if err := realFolders(r, path.Dir(p), false); err != nil {
		switch {
		case errors.Is(err, errLinked):
			return nil, fmt.Errorf("%s: %w (%v)", p, plugins.ErrNotRegular, err)
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, errNotFolder):
			return nil, fmt.Errorf("%w: %s", plugins.ErrVanished, p)
		}
		return nil, err
	}
	f, err := r.OpenFile(p, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, d.openErr(r, p, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(p, fi.Mode())
	}
	if err == nil {
		// The root follows links inside it: a link swapped in for the file
		// would read another one.
		if li, lerr := r.Lstat(p); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			err = notRegular(p, li.Mode())
		}
	}
	if err == nil {
		err = blocking(f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openErr explains a failed open: a vanished file, or one that is not a
// regular file any more (a socket, a link leading out of the root).
func (d *Dir) openErr(r *os.Root, p string, err error) error {
	li, lerr := r.Lstat(p)
	switch {
	case errors.Is(lerr, fs.ErrNotExist):
		return fmt.Errorf("%w: %s", plugins.ErrVanished, p)
	case lerr == nil && !li.Mode().IsRegular():
		return fmt.Errorf("%w: %v", notRegular(p, li.Mode()), err)
	}
	return err
}

func notRegular(p string, m fs.FileMode) error {
	return fmt.Errorf("%s: %w", p, plugins.NotRegular(m))
}

// realFolders checks that every folder of the slash path dir below the root
// is a folder, not a link: the root would follow a link to another folder
// inside it, and a move or a delete there would reach a file never listed.
// A missing folder gives an error wrapping fs.ErrNotExist, unless create
// makes it.
func realFolders(r *os.Root, dir string, create bool) error {
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		fi, err := r.Lstat(sub)
		if create && errors.Is(err, fs.ErrNotExist) {
			if err = r.Mkdir(sub, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
				fi, err = r.Lstat(sub) // made here, or by another process meanwhile
			}
		}
		if err != nil {
			return err
		}
		if err := isFolder(sub, fi); err != nil {
			return err
		}
	}
	return nil
}

var (
	errLinked    = errors.New("is a symbolic link, which carpipe does not follow")
	errNotFolder = errors.New("is not a folder")
)

func isFolder(sub string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s %w", sub, errLinked)
	case !fi.IsDir():
		return fmt.Errorf("%s %w", sub, errNotFolder)
	}
	return nil
}

// Move links the file under a free name in dir and then unlinks the
// original, so that a file already there is never overwritten. dir and its
// parents must be real folders inside the root, not links.
func (d *Dir) Move(_ context.Context, p, dir string) (string, error) {
	if err := d.checkPath(p); err != nil {
		return "", err
	}
	dir, err := plugins.CleanDir(dir)
	if err != nil {
		return "", err
	}
	if dir != "." {
		if err := d.checkPath(dir); err != nil {
			return "", err
		}
	}
	if path.Dir(p) == dir {
		return p, nil // already there
	}
	r, err := d.root()
	if err != nil {
		return "", err
	}
	defer r.Close()
	if err := d.source(r, p); err != nil {
		return "", err
	}
	if err := realFolders(r, dir, true); err != nil {
		return "", fmt.Errorf("moving %s into %s: %w", p, dir, err)
	}
	name := path.Base(p)
	ext := path.Ext(name)
	for i := 0; ; i++ {
		cand := name
		if i > 0 {
			cand = strings.TrimSuffix(name, ext) + "-" + strconv.Itoa(i) + ext
		}
		dst := path.Join(dir, cand)
		err := r.Link(p, dst)
		if errors.Is(err, fs.ErrExist) {
			if sameFile(r, p, dst) {
				// An earlier move stopped half-way.
				return dst, r.Remove(p)
			}
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := r.Lstat(p); serr != nil {
				return "", fmt.Errorf("%w: %s", plugins.ErrVanished, p)
			}
			return "", err
		}
		if err != nil {
			// No hard links here (some network file systems): rename, having
			// checked the name is free.
			if _, serr := r.Lstat(dst); serr == nil {
				continue
			}
			if err := r.Rename(p, dst); err != nil {
				return "", err
			}
			return dst, nil
		}
		if err := r.Remove(p); err != nil {
			return "", err
		}
		return dst, nil
	}
}

// source checks the file to move or delete: there, not a folder, and not
// reached through a linked folder.
func (d *Dir) source(r *os.Root, p string) error {
	err := realFolders(r, path.Dir(p), false)
	var fi fs.FileInfo
	if err == nil {
		fi, err = r.Lstat(p)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errNotFolder):
		return fmt.Errorf("%w: %s", plugins.ErrVanished, p)
	case err != nil:
		return fmt.Errorf("%s: %w", p, err)
	case fi.IsDir():
		return fmt.Errorf("%s is a folder", p)
	}
	return nil
}

// Delete removes a file.
func (d *Dir) Delete(_ context.Context, p string) error {
	if err := d.checkPath(p); err != nil {
		return err
	}
	r, err := d.root()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := d.source(r, p); err != nil {
		return err
	}
	err = r.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", plugins.ErrVanished, p)
	}
	return err
}

// sameFile reports whether a and b are two names of one file, in two
// different folders: a name left by a half-done move, not the same entry.
func sameFile(r *os.Root, a, b string) bool {
	sa, err := r.Lstat(a)
	if err != nil {
		return false
	}
	sb, err := r.Lstat(b)
	if err != nil || !os.SameFile(sa, sb) {
		return false
	}
	da, err := r.Stat(path.Dir(a))
	if err != nil {
		return false
	}
	db, err := r.Stat(path.Dir(b))
	return err == nil && !(os.SameFile(da, db) && path.Base(a) == path.Base(b))
}
