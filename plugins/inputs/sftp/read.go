package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync/atomic"
	"time"

	sftplib "github.com/pkg/sftp"

	"github.com/carpipe/carpipe/plugins"
)

// open opens the file and streams it through a pipe. A goroutine copies it
// with the library's WriteTo, which keeps up to 64 read requests of 32 KiB
// in flight (2 MiB at most) instead of one round trip per Read; the pipe
// holds nothing, so memory stays bounded whatever the file's size.
func (s *SFTP) open(ctx context.Context, p string) (io.ReadCloser, error) {
	var (
		f    *sftplib.File
		c    *session
		info fs.FileInfo
	)
	err := s.do(ctx, s.Timeout, func(sc *session) error {
		if err := s.folders(sc.sftp, path.Dir(p), false); err != nil {
			if errors.Is(err, errLinked) {
				return fmt.Errorf("%w (%v)", plugins.ErrNotRegular, err)
			}
			return vanished(err, p)
		}
		file, fi, err := openAt(sc, s.remote(p), p, 0)
		f, c, info = file, sc, fi
		return err
	})
	if err != nil {
		return nil, err
	}
	// What the handle is, not what the listing said: a pipe, a device or a
	// folder may have taken the file's place.
	if !info.Mode().IsRegular() {
		_ = s.watch(c, s.Timeout, f.Close)
		return nil, plugins.NotRegular(info.Mode())
	}
	pr, pw := io.Pipe()
	go s.stream(ctx, p, f, c, info, pw)
	return pr, nil
}

// openAt opens a file and positions it at off.
func openAt(c *session, remote, p string, off int64) (*sftplib.File, fs.FileInfo, error) {
	f, err := c.sftp.Open(remote)
	if err != nil {
		return nil, nil, vanished(err, p)
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.Seek(off, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// stream copies f into pw. When the connection is lost mid-way, it opens
// the file again on a new one and goes on from where it stopped, up to
// Retries times, unless the file changed meanwhile.
func (s *SFTP) stream(ctx context.Context, p string, f *sftplib.File, c *session, info fs.FileInfo, pw *io.PipeWriter) {
	var off int64
	for resumed := 0; ; resumed++ {
		n, err := s.copyOut(f, c, pw)
		off += n
		if err == nil {
			pw.Close() // the reader need not wait for the handle's close
		}
		// Bounded: on a hung connection the close would never be answered.
		_ = s.watch(c, s.Timeout, f.Close)
		switch {
		case err == nil:
			return
		case errors.Is(err, io.ErrClosedPipe):
			return // the reader was closed
		case !transient(err) || resumed >= s.Retries || ctx.Err() != nil:
			pw.CloseWithError(fmt.Errorf("%s: reading %s: %w", s.where(), p, err))
			return
		}
		s.log.Warn("SFTP connection lost while reading; resuming", "host", s.addr(), "path", p, "offset", off, "error", err.Error())
		err = s.do(ctx, s.Timeout, func(sc *session) error {
			file, fi, err := openAt(sc, s.remote(p), p, off)
			if err == nil && (fi.Size() != info.Size() || !fi.ModTime().Equal(info.ModTime())) {
				file.Close()
				err = errors.New("the file changed while it was read")
			}
			f, c = file, sc
			return err
		})
		if err != nil {
			pw.CloseWithError(fmt.Errorf("%s: reading %s: %w", s.where(), p, err))
			return
		}
	}
}

// copyOut writes f to w. Its timer runs only while waiting for the server,
// not while the reader is busy, and drops the connection when the server
// stays silent longer than Timeout.
func (s *SFTP) copyOut(f *sftplib.File, c *session, w io.Writer) (int64, error) {
	var fired atomic.Bool
	t := time.AfterFunc(s.Timeout, func() {
		fired.Store(true)
		s.drop(c)
	})
	iw := &idleWriter{w: w, t: t, d: s.Timeout}
	_, err := f.WriteTo(iw)
	t.Stop()
	if err != nil && fired.Load() {
		err = s.timeoutError()
	}
	return iw.n, err
}

// idleWriter stops the timer while the reader takes the data.
type idleWriter struct {
	w io.Writer
	t *time.Timer
	d time.Duration
	n int64
}

func (w *idleWriter) Write(b []byte) (int, error) {
	w.t.Stop()
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.t.Reset(w.d)
	return n, err
}
