package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	gocloud "gocloud.dev/blob"

	"github.com/carpipe/carpipe/plugins"
)

// errStalled is the cause of a read cancelled for waiting too long for data.
var errStalled = fmt.Errorf("no data within the timeout: %w", context.DeadlineExceeded)

// reader streams an object. A read that waits longer than the timeout fails
// (only time spent inside Read counts, not the caller's time between reads);
// a read broken by a transient error resumes where it stopped, with a range
// request, if the object is unchanged.
type reader struct {
	b         *Blob
	ctx       context.Context // the caller's
	path, key string
	left      int // resumes left

	r     *gocloud.Reader
	rctx  context.Context // r's
	stop  context.CancelCauseFunc
	timer *time.Timer

	off  int64
	size int64
	mod  time.Time
	err  error // sticky
}

func (b *Blob) openReader(ctx context.Context, p, key string) (*reader, error) {
	r := &reader{b: b, ctx: ctx, path: p, key: key, left: b.Retries}
	err := b.retry(ctx, "opening", func(context.Context) error { return r.open() })
	if err != nil {
		return nil, b.vanished("opening "+p, p, err)
	}
	r.size, r.mod = r.r.Size(), r.r.ModTime()
	return r, nil
}

// open opens the object at r.off, under a watchdog that cancels the request
// when it waits longer than the timeout.
func (r *reader) open() error {
	ctx, stop := context.WithCancelCause(r.ctx)
	timer := time.AfterFunc(r.b.Timeout, func() { stop(errStalled) })
	var gr *gocloud.Reader
	var err error
	if r.off == 0 {
		gr, err = r.b.bucket.NewReader(ctx, r.key, nil)
	} else {
		gr, err = r.b.bucket.NewRangeReader(ctx, r.key, r.off, -1, nil)
	}
	timer.Stop()
	if err != nil {
		if context.Cause(ctx) == errStalled {
			err = errStalled
		}
		stop(nil)
		return err
	}
	r.r, r.rctx, r.stop, r.timer = gr, ctx, stop, timer
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		r.timer.Reset(r.b.Timeout)
		n, err := r.r.Read(p)
		r.timer.Stop()
		r.off += int64(n)
		if err == nil || err == io.EOF {
			return n, err
		}
		if context.Cause(r.rctx) == errStalled {
			err = errStalled
		}
		if err := r.resume(err); err != nil {
			r.err = err
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume reopens the object where the broken read stopped, or returns the
// error to report.
func (r *reader) resume(cause error) error {
	wait := r.b.backoff
	for {
		if r.left == 0 || !transient(r.ctx, cause) {
			return r.b.vanished("reading "+r.path, r.path, cause)
		}
		r.left--
		r.b.log.Warn("read broken; resuming", "path", r.path, "offset", r.off, "error", r.b.redact(cause.Error()))
		r.close()
		if !sleep(r.ctx, wait) {
			return r.b.fail("reading "+r.path, cause)
		}
		wait = min(2*wait, maxBackoff)
		cause = r.open()
		if cause != nil {
			r.r = nil
			continue
		}
		if r.r.Size() != r.size || !r.r.ModTime().Equal(r.mod) {
			// The listed version is gone; the next run lists the new one.
			return fmt.Errorf("%w: %s was replaced while it was read", plugins.ErrVanished, r.path)
		}
		return nil
	}
}

func (r *reader) close() error {
	if r.r == nil {
		return nil
	}
	r.timer.Stop()
	err := r.r.Close()
	r.stop(nil)
	r.r = nil
	return err
}

func (r *reader) Close() error {
	if r.err == nil {
		r.err = errors.New("reading " + r.path + ": reader closed")
	}
	if err := r.close(); err != nil {
		return r.b.fail("closing "+r.path, err)
	}
	return nil
}
