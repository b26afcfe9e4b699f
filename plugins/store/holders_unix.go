//go:build unix

package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// holdFile locks holder's file in dir for as long as the process lives or
// until release.
func holdFile(ctx context.Context, dir, holder string) (release func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := lockPath(dir, holder)
	for try := 0; ; try++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil && sameFile(f, path) {
			return func() error {
				// Removed first: a missing file is a dead holder.
				err := os.Remove(path)
				return errors.Join(err, f.Close())
			}, nil
		}
		f.Close()
		// A sweep removing the file, or a process checking the holder,
		// holds it for a moment; or the sweep removed the file between
		// open and lock, and it is made again.
		if err != nil && (!errors.Is(err, syscall.EWOULDBLOCK) || try == 50) {
			return nil, err
		}
		if !plugins.Wait(ctx, 10*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// sameFile says whether path still names the open file f.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// holderDead: holder's file is missing or no process locks it. The check
// locks it shared, so that two checkers do not see each other as holder.
func holderDead(dir, holder string) bool {
	f, err := os.Open(lockPath(dir, holder))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil
}

// sweepLockFiles removes the files of dead holders.
func sweepLockFiles(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), lockExt) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.Remove(path)
		}
		f.Close()
	}
}
