package ftp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	ftplib "github.com/jlaffaye/ftp"

	"github.com/carpipe/carpipe/plugins"
)

// maxIdle bounds the connections kept open between calls. The engine
// reads two files at once, and lists or moves meanwhile.
const maxIdle = 4

// errStale asks retry for a fresh connection, not counted as a try.
var errStale = errors.New("stale connection")

// conn is one logged-in control connection, used by one call at a time.
type conn struct {
	sc     *ftplib.ServerConn
	ctx    context.Context // of the call using it: data connections dial with it
	reused bool            // taken from the idle pool

	// listing, while an MLSD listing runs, gets the entries its data
	// connection shows as neither files nor folders.
	listing map[string]string

	mu   sync.Mutex
	ctrl net.Conn // raw sockets, closed to abort a call
	data net.Conn
}

// abort closes the sockets at once, without a QUIT.
func (c *conn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctrl != nil {
		c.ctrl.Close()
	}
	if c.data != nil {
		c.data.Close()
	}
}

func (c *conn) quit() {
	if c.sc != nil {
		c.sc.Quit() // sends QUIT and closes, without waiting for the reply
	}
	c.abort()
}

// dial connects and logs in. Every socket is dialed here, so that each gets
// the timeout, and TLS when asked.
func (f *FTP) dial(ctx context.Context) (*conn, error) {
	c := &conn{ctx: ctx}
	d := &net.Dialer{Timeout: f.Timeout, KeepAlive: 30 * time.Second}
	dialSocket := func(network, addr string) (net.Conn, error) {
		raw, err := d.DialContext(c.ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		control := c.ctrl == nil
		if control {
			c.ctrl = raw
		} else {
			c.data = raw
		}
		c.mu.Unlock()
		var nc net.Conn = &deadlineConn{Conn: raw, timeout: f.Timeout}
		if control {
			if f.tlsMode() == TLSImplicit {
				nc = tls.Client(nc, f.tlsConf)
			}
			return nc, nil // explicit TLS: the library upgrades it after AUTH TLS
		}
		if f.tlsConf != nil {
			nc = tls.Client(nc, f.tlsConf)
		}
		if c.listing != nil {
			nc = &typeWatch{Conn: nc, odd: c.listing}
		}
		return quietClose{nc}, nil
	}
	opts := []ftplib.DialOption{
		ftplib.DialWithDialFunc(dialSocket),
		ftplib.DialWithDisabledMLSD(f.noMLSD.Load()),
	}
	switch f.tlsMode() {
	case TLSExplicit:
		opts = append(opts, ftplib.DialWithExplicitTLS(f.tlsConf))
	case TLSImplicit:
		opts = append(opts, ftplib.DialWithTLS(f.tlsConf))
	}
	stop := context.AfterFunc(ctx, c.abort)
	defer stop()
	sc, err := ftplib.Dial(f.addr, opts...)
	if err != nil {
		c.abort()
		return nil, fmt.Errorf("connecting to %s: %w", f.addr, err)
	}
	c.sc = sc
	if err := sc.Login(f.User, f.Password); err != nil {
		c.abort()
		return nil, f.redact(fmt.Errorf("logging in to %s as %q: %w", f.addr, f.User, err))
	}
	return c, nil
}

// get returns an idle connection, or a new one when there is none or
// fresh is set.
func (f *FTP) get(ctx context.Context, fresh bool) (*conn, error) {
	if !fresh {
		f.mu.Lock()
		if n := len(f.idle); n > 0 {
			c := f.idle[n-1] // the latest used, the least likely dropped
			f.idle = f.idle[:n-1]
			f.mu.Unlock()
			c.ctx, c.reused = ctx, true
			return c, nil
		}
		f.mu.Unlock()
	}
	return f.dial(ctx)
}

// put gives back a connection in a known state.
func (f *FTP) put(c *conn) {
	f.mu.Lock()
	if !f.closed && len(f.idle) < maxIdle {
		f.idle = append(f.idle, c)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	c.quit()
}

// dropIdle closes the idle connections: one was found dropped by the
// server, as all are when it restarts.
func (f *FTP) dropIdle() {
	f.mu.Lock()
	idle := f.idle
	f.idle = nil
	f.mu.Unlock()
	for _, c := range idle {
		c.abort()
	}
}

// retry runs op on a connection, trying again with exponential backoff
// after a network error or a 4xx reply, at most f.Retries times. An idle
// connection that the server dropped is replaced at once, without counting
// a try. op returns keep when it holds on to the connection.
func (f *FTP) retry(ctx context.Context, what string, op func(*conn) (keep bool, err error)) error {
	fresh := false
	for try := 0; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := f.get(ctx, fresh)
		fresh = false
		if err == nil {
			var keep bool
			stop := context.AfterFunc(ctx, c.abort)
			keep, err = op(c)
			stop()
			if err == nil || usable(err) {
				if !keep {
					f.put(c)
				}
			} else {
				c.abort()
			}
			if err == nil {
				return nil
			}
			if ctx.Err() == nil && (errors.Is(err, errStale) || c.reused && !usable(err)) {
				f.dropIdle()
				fresh = true
				continue
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transient(err) || try >= f.Retries {
			return fmt.Errorf("ftp %s: %w", what, err)
		}
		try++
		wait := backoff(try)
		f.log.Warn("ftp: temporary failure; trying again", "op", what, "try", try, "wait", wait.String(), "error", err.Error())
		if !plugins.Wait(ctx, wait) {
			return ctx.Err()
		}
	}
}

func backoff(try int) time.Duration {
	d := 250 * time.Millisecond << (try - 1)
	return min(d, 10*time.Second)
}

func code(err error) int {
	var re *textproto.Error
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}

// permanent tells a 5xx reply: the server refused.
func permanent(err error) bool { return code(err) >= 500 }

// unsupported tells the replies of a server that lacks a command.
func unsupported(err error) bool {
	c := code(err)
	return c == ftplib.StatusBadCommand || c == ftplib.StatusNotImplemented
}

// usable tells whether the connection is still in step after err.
func usable(err error) bool {
	if errors.Is(err, ftplib.ErrInvalidCommand) {
		return true // nothing was sent
	}
	c := code(err)
	return c != 0 && c != ftplib.StatusNotAvailable
}

// transient tells the errors worth another try: 4xx replies and network
// failures, but not a certificate or TLS refusal, nor an unknown host.
func transient(err error) bool {
	if c := code(err); c != 0 {
		return c >= 400 && c < 500
	}
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		ierr x509.CertificateInvalidError
		rerr tls.RecordHeaderError
		derr *net.DNSError
		oerr *net.OpError
		nerr net.Error
	)
	switch {
	case errors.As(err, &verr), errors.As(err, &uerr), errors.As(err, &herr), errors.As(err, &ierr), errors.As(err, &rerr):
		return false
	case errors.As(err, &derr):
		return !derr.IsNotFound
	case errors.As(err, &oerr) && oerr.Op == "remote error":
		return false // a TLS alert from the server
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return errors.As(err, &nerr)
}

// deadlineConn gives every read and write f.Timeout, so that a server that
// stops answering fails the call instead of hanging it.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	d.Conn.SetReadDeadline(time.Now().Add(d.timeout))
	return d.Conn.Read(p)
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	d.Conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.Conn.Write(p)
}

// quietClose wraps a data connection. Its Close is called once the
// transfer is over; a TLS close_notify the server no longer reads must not
// make a whole transfer look failed: the server's reply on the control
// connection tells.
type quietClose struct{ net.Conn }

func (q quietClose) Close() error {
	q.Conn.Close()
	return nil
}

// typeWatch reads an MLSD listing as it goes by, noting the entries whose
// type fact is not "file": the library takes any type it does not know
// (OS.unix=slink, OS.unix=fifo, a folder's "DIR") for a file.
type typeWatch struct {
	net.Conn
	odd  map[string]string // name to type
	line []byte            // the part of a line read so far
}

func (w *typeWatch) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.line = append(w.line, p[:n]...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		w.note(strings.TrimSuffix(string(w.line[:i]), "\r"))
		w.line = w.line[i+1:]
	}
	return n, err
}

// note reads one "fact=value;fact=value; name" line, as the library does:
// the name follows the first space.
func (w *typeWatch) note(line string) {
	facts, name, ok := strings.Cut(line, " ")
	if !ok {
		return
	}
	for _, fact := range strings.Split(facts, ";") {
		if k, v, ok := strings.Cut(fact, "="); ok && strings.EqualFold(k, "type") && !strings.EqualFold(v, "file") {
			w.odd[name] = v
		}
	}
}
