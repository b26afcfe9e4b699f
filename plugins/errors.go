package plugins

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrLoaded means the file is already in the ledger.
var ErrLoaded = errors.New("file already loaded")

// ErrVanished means a listed file was gone when it was read.
var ErrVanished = errors.New("file vanished")

// ErrAmbiguous means several file types claim a file's name.
var ErrAmbiguous = errors.New("ambiguous file type")

// ErrNotRegular means a listed path no longer names a regular file when it
// is opened: a named pipe, device, socket or folder took its place. The file
// is skipped, not failed: there is nothing to load and nothing to move.
var ErrNotRegular = errors.New("not a regular file")

// NotRegular returns an error wrapping ErrNotRegular that says what a file
// of mode m is: "not a regular file (a named pipe)".
func NotRegular(m fs.FileMode) error {
	what := "an irregular file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	case m&fs.ModeSymlink != 0:
		what = "a symbolic link"
	case m.IsDir():
		what = "a folder"
	}
	return fmt.Errorf("%w (%s)", ErrNotRegular, what)
}

// CleanPath checks a path from a listing, or one handed back to Open, Move
// or Delete: slash-separated, relative to the input's root, inside it, and
// written the one way path.Clean writes it, so that two different names
// never reach one file. It returns p unchanged.
//
// A backslash is an ordinary character, as it is on POSIX file systems and
// on FTP, SFTP and object storage servers: "a\b/x.json" and "a/b/x.json" are
// two files. A ".." between backslashes is refused all the same, since a
// Windows server would take it as a way up.
func CleanPath(p string) (string, error) {
	if err := checkPath(p); err != nil {
		return "", err
	}
	switch c := path.Clean(p); {
	case c == ".":
		return "", errors.New("path " + strconv.Quote(p) + " names the input's root, not a file")
	case c != p:
		return "", errors.New("path " + strconv.Quote(p) + " is not written plainly (" + strconv.Quote(c) + " would name the same file)")
	}
	return p, nil
}

// CleanDir is CleanPath for a folder to move files into, as a config names
// it: "" and "." name the input's root, and a folder written loosely
// ("done/", "a//b") is put in its plain form, since no listing is matched
// against it.
func CleanDir(dir string) (string, error) {
	if dir == "" || dir == "." {
		return ".", nil
	}
	if err := checkPath(dir); err != nil {
		return "", err
	}
	return path.Clean(dir), nil
}

// checkPath refuses what no cleaning may fix: a path outside the root, or
// one that is not UTF-8, which io/fs cannot walk and logs cannot show.
func checkPath(p string) error {
	q := strconv.Quote(p)
	switch {
	case p == "":
		return errors.New("path \"\" is empty")
	case strings.ContainsRune(p, 0):
		return errors.New("path " + q + " holds a NUL byte")
	case !utf8.ValidString(p):
		return errors.New("path " + q + " is not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return errors.New("path " + q + " is not relative to the input's root")
	}
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return errors.New("path " + q + " escapes the input's root")
		}
	}
	return nil
}

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
