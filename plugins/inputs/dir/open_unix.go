//go:build unix

package dir

import (
	"os"
	"syscall"
)

// openFlags open a named pipe without waiting for a writer, and never make
// a terminal the process's own.
const openFlags = syscall.O_NONBLOCK | syscall.O_NOCTTY

// blocking clears O_NONBLOCK on a regular file, which some network and
// FUSE file systems would otherwise honour with short reads.
func blocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
