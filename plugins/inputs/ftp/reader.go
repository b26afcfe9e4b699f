package ftp

import (
	"context"
	"errors"
	"fmt"
	"io"

	ftplib "github.com/jlaffaye/ftp"

	"github.com/carpipe/carpipe/plugins"
)

// drainMax is how much of an unread rest Close reads to keep the
// connection: a JSON decoder stops before trailing white space.
const drainMax = 64 << 10

// reader streams one RETR. When the transfer breaks, it resumes where it
// stopped (REST) on a new connection, at most f.Retries times.
type reader struct {
	f      *FTP
	ctx    context.Context
	remote string

	c      *conn
	resp   *ftplib.Response
	stop   func() bool // unregisters the abort on ctx
	off    int64
	tries  int
	err    error // sticky: io.EOF or the failure
	closed bool
}

// start issues RETR from r.off on a connection the reader keeps.
func (r *reader) start() error {
	return r.f.retry(r.ctx, "retr "+r.remote, func(c *conn) (bool, error) {
		resp, err := c.sc.RetrFrom(r.remote, uint64(r.off))
		if err != nil {
			return false, r.f.vanished(c, r.remote, err)
		}
		r.c, r.resp = c, resp
		r.stop = context.AfterFunc(r.ctx, c.abort)
		return true, nil
	})
}

func (r *reader) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.resp == nil {
			if err := r.start(); err != nil {
				r.err = err
				break
			}
		}
		n, err := r.resp.Read(p)
		r.off += int64(n)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF):
			// The server's reply tells whether all was sent.
			if err = r.finish(); err == nil {
				r.err = io.EOF
				return n, io.EOF
			}
		default:
			r.drop()
		}
		if cerr := r.ctx.Err(); cerr != nil {
			r.err = cerr
		} else if !transient(err) || r.tries >= r.f.Retries {
			r.err = fmt.Errorf("ftp retr %s: %w", r.remote, err)
		} else {
			r.tries++
			wait := backoff(r.tries)
			r.f.log.Warn("ftp: transfer broke; resuming", "path", r.remote, "offset", r.off, "try", r.tries, "wait", wait.String(), "error", err.Error())
			if !plugins.Wait(r.ctx, wait) {
				r.err = r.ctx.Err()
			}
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, r.err
}

// finish ends a transfer read to its end and gives the connection back.
func (r *reader) finish() error {
	c, resp := r.c, r.resp
	r.c, r.resp = nil, nil
	err := resp.Close() // reads the final reply
	r.stop()
	if err != nil {
		c.abort()
		return err
	}
	r.f.put(c)
	return nil
}

// drop abandons the transfer with its connection.
func (r *reader) drop() {
	r.stop()
	r.c.abort()
	r.c, r.resp = nil, nil
}

// Close ends the transfer. A short unread rest is drained so that the
// connection stays usable; a longer one closes the connection, since the
// server's reply to an aborted transfer varies.
func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.resp == nil {
		return nil
	}
	if _, err := io.CopyN(io.Discard, r.resp, drainMax); errors.Is(err, io.EOF) {
		r.finish()
		return nil
	}
	r.drop()
	return nil
}
