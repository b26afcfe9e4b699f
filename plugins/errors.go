package plugins

import (
	"errors"
	"path"
	"strings"
)

// ErrLoaded means the file is already in the ledger.
var ErrLoaded = errors.New("file already loaded")

// ErrVanished means a listed file was gone when it was read.
var ErrVanished = errors.New("file vanished")

// ErrAmbiguous means several file types claim a file's name.
var ErrAmbiguous = errors.New("ambiguous file type")

// CleanPath turns a path from a listing into a slash-separated path relative
// to the input's root, refusing anything that would leave the root.
func CleanPath(p string) (string, error) {
	p = strings.ReplaceAll(p, "\\", "/")
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", errors.New("path " + quote(p) + " is not relative to the input's root")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", errors.New("path " + quote(p) + " escapes the input's root")
		}
	}
	c := path.Clean(p)
	if c == "." {
		return "", errors.New("path " + quote(p) + " names the input's root")
	}
	return c, nil
}

// CleanDir is CleanPath for a folder to move files into, where "." (or
// "") names the input's root.
func CleanDir(dir string) (string, error) {
	if dir == "" || dir == "." {
		return ".", nil
	}
	return CleanPath(dir)
}

func quote(s string) string { return "\"" + s + "\"" }

// ErrFatal marks an error that ends the run, such as a lost database
// connection, as opposed to one that only fails the file at hand.
var ErrFatal = errors.New("fatal")

// Fatal wraps err so that errors.Is(err, ErrFatal) holds.
func Fatal(err error) error { return mark(err, ErrFatal) }

// ErrRetry marks an error after which the same file may load if tried
// again, such as a deadlock or serialization failure between writers.
var ErrRetry = errors.New("retry")

// Retry wraps err so that errors.Is(err, ErrRetry) holds.
func Retry(err error) error { return mark(err, ErrRetry) }

// mark makes err also match kind, keeping its message.
func mark(err, kind error) error {
	if err == nil || errors.Is(err, kind) {
		return err
	}
	return marked{err, kind}
}

type marked struct {
	error
	kind error
}

func (m marked) Unwrap() []error { return []error{m.error, m.kind} }

// ErrNotMigrated means a database lacks carpipe's tables, or some of its
// migrations: carpipe migrate (or run) brings it up to date.
var ErrNotMigrated = errors.New("not migrated")

// NotMigrated is an error with msg that matches ErrNotMigrated.
func NotMigrated(msg string) error { return mark(errors.New(msg), ErrNotMigrated) }
