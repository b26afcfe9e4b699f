// Package ftp reads files from a folder on an FTP or FTPS server.
package ftp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ftplib "github.com/jlaffaye/ftp"

	"github.com/carpipe/carpipe/plugins"
)

//go:embed sample.yaml
var sample string

func init() {
	plugins.Default.AddInput(plugins.InputSpec{
		Name:   "ftp",
		Doc:    "Reads files from a folder on an FTP server, in clear or over TLS (FTPS).",
		Sample: sample,
		New:    func() plugins.Input { return New() },
	})
}

// TLS modes.
const (
	TLSNone     = "none"
	TLSExplicit = "explicit" // AUTH TLS on the usual port
	TLSImplicit = "implicit" // TLS from the first byte, usually port 990
)

// FTP is a folder on an FTP server.
type FTP struct {
	Host               string        `yaml:"host" required:"true" doc:"the server's host name or IP address"`
	Port               int           `yaml:"port" doc:"the server's port (default 21, or 990 with tls: implicit)"`
	User               string        `yaml:"user" doc:"the user to log in as (default anonymous)"`
	Password           string        `yaml:"password" secret:"true" doc:"the user's password; give it as ${VARIABLE}"`
	Path               string        `yaml:"path" doc:"the remote folder to read (default /); a relative path starts at the login folder"`
	TLS                string        `yaml:"tls" doc:"none (default) | explicit (AUTH TLS) | implicit"`
	CAFile             string        `yaml:"ca_file" carpipe:"path" doc:"PEM file of extra certificate authorities to trust, for a private server"`
	ServerName         string        `yaml:"server_name" doc:"the name the server's certificate must hold (default host)"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify" doc:"accept any server certificate (insecure; logged as a warning)"`
	Timeout            time.Duration `yaml:"timeout" doc:"connect timeout and longest wait for the server to answer or send data"`
	Retries            int           `yaml:"retries" doc:"tries again after a network error or a temporary (4xx) reply, with exponential backoff"`

	log     *slog.Logger
	tlsConf *tls.Config
	addr    string
	root    string // absolute remote folder
	noMLSD  atomic.Bool

	mu     sync.Mutex
	idle   []*conn
	closed bool
}

var (
	_ plugins.Input     = (*FTP)(nil)
	_ plugins.Initer    = (*FTP)(nil)
	_ plugins.Validator = (*FTP)(nil)
	_ plugins.Closer    = (*FTP)(nil)
)

// New returns an FTP input with its defaults set.
func New() *FTP {
	return &FTP{User: "anonymous", Path: "/", TLS: TLSNone, Timeout: 30 * time.Second, Retries: 3}
}

// Validate checks the config without connecting.
func (f *FTP) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case f.Host == "":
		bad("host is empty")
	case strings.Contains(f.Host, "://"):
		bad("host %q must be a host name, not a URL", f.Host)
	case strings.ContainsAny(f.Host, "/@ \t\r\n"):
		bad("host %q is not a host name", f.Host)
	case strings.Contains(f.Host, ":") && net.ParseIP(f.Host) == nil:
		bad("host %q: give the port in port", f.Host)
	}
	if f.Port < 0 || f.Port > 65535 {
		bad("port %d is out of range", f.Port)
	}
	switch f.TLS {
	case "", TLSNone, TLSExplicit, TLSImplicit:
	default:
		bad("tls %q: want none, explicit or implicit", f.TLS)
	}
	if f.tlsMode() == TLSNone {
		for key, set := range map[string]bool{"ca_file": f.CAFile != "", "server_name": f.ServerName != "", "insecure_skip_verify": f.InsecureSkipVerify} {
			if set {
				bad("%s applies only with tls: explicit or implicit", key)
			}
		}
	}
	if strings.ContainsAny(f.User, "\r\n") {
		bad("user holds a line break")
	}
	if strings.ContainsAny(f.Password, "\r\n") {
		bad("password holds a line break") // never the password itself
	}
	if strings.ContainsAny(f.Path, "\x00\r\n") {
		bad("path holds a line break or a NUL")
	}
	if f.Timeout <= 0 {
		bad("timeout must be positive")
	}
	if f.Retries < 0 || f.Retries > 100 {
		bad("retries must be between 0 and 100")
	}
	return errors.Join(errs...)
}

func (f *FTP) tlsMode() string {
	if f.TLS == "" {
		return TLSNone
	}
	return f.TLS
}

// Init connects, logs in and checks that path is a folder.
func (f *FTP) Init(ctx context.Context, env plugins.Env) error {
	if err := f.Validate(); err != nil {
		return err
	}
	f.log = env.Logger
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.User == "" {
		f.User = "anonymous"
	}
	port := f.Port
	if port == 0 {
		port = 21
		if f.tlsMode() == TLSImplicit {
			port = 990
		}
	}
	f.addr = net.JoinHostPort(f.Host, strconv.Itoa(port))
	switch {
	case f.tlsMode() == TLSNone && f.Password != "" && !anonymous(f.User):
		f.log.Warn("ftp: tls is none, so the password crosses the network in clear; use tls: explicit or implicit if the server has it", "host", f.Host)
	case f.InsecureSkipVerify:
		f.log.Warn("ftp: insecure_skip_verify is true: the server's certificate is not checked, so anyone on the network path can pose as the server", "host", f.Host)
	}
	if f.tlsMode() != TLSNone {
		conf, err := f.tlsConfig()
		if err != nil {
			return err
		}
		f.tlsConf = conf
	}

	root := f.Path
	if root == "" {
		root = "/"
	}
	err := f.retry(ctx, "connect", func(c *conn) (bool, error) {
		if !strings.HasPrefix(root, "/") {
			home, err := c.sc.CurrentDir()
			if err != nil {
				return false, fmt.Errorf("finding the login folder: %w", err)
			}
			root = path.Join(home, root)
		}
		root = path.Clean(root)
		if err := c.sc.ChangeDir(root); err != nil {
			if permanent(err) {
				return false, fmt.Errorf("path %s is not a folder the user can read on the server: %w", root, err)
			}
			return false, err
		}
		return false, nil
	})
	if err != nil {
		f.Close()
		return err
	}
	f.root = root
	return nil
}

func anonymous(user string) bool {
	return strings.EqualFold(user, "anonymous") || strings.EqualFold(user, "ftp")
}

func (f *FTP) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		// Data connections resume the control connection's session, which
		// some servers (vsftpd, pure-ftpd) require.
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
	}
	if conf.ServerName == "" {
		conf.ServerName = f.Host
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", f.CAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// redact hides the password should a server echo it in a login reply.
// Short passwords are left to the engine's masking, lest every "a" go.
func (f *FTP) redact(err error) error {
	if len(f.Password) < 3 || !strings.Contains(err.Error(), f.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), f.Password, "***"))
}

// Close logs out of the idle connections.
func (f *FTP) Close() error {
	f.mu.Lock()
	idle := f.idle
	f.idle, f.closed = nil, true
	f.mu.Unlock()
	for _, c := range idle {
		c.quit()
	}
	return nil
}

// remote turns a path relative to the root into a remote absolute path,
// refusing any that would leave the root.
func (f *FTP) remote(p string) (string, string, error) {
	c, err := plugins.CleanPath(p)
	if err != nil {
		return "", "", err
	}
	return c, path.Join(f.root, c), nil
}

// List returns the files directly in the root: MLSD when the server has
// it, else LIST. Sub-folders, links and hidden names are left out.
func (f *FTP) List(ctx context.Context) ([]plugins.File, error) {
	var out []plugins.File
	err := f.retry(ctx, "list "+f.root, func(c *conn) (bool, error) {
		odd := map[string]string{}
		if c.sc.IsTimePreciseInList() { // MLSD
			c.listing = odd
		}
		entries, err := c.sc.List(f.root)
		c.listing = nil
		if err != nil {
			if c.sc.IsTimePreciseInList() && unsupported(err) {
				// It announced MLST but refuses MLSD: use LIST from now
				// on, on new connections.
				if !f.noMLSD.Swap(true) {
					f.log.Info("ftp: the server refuses MLSD; listing with LIST", "host", f.Host)
				}
				f.dropIdle()
				return false, errStale
			}
			return false, err
		}
		out = out[:0]
		for _, e := range entries {
			if e.Type != ftplib.EntryTypeFile || strings.HasPrefix(e.Name, ".") {
				continue
			}
			if t, ok := odd[e.Name]; ok {
				f.log.Debug("ftp: listed entry skipped: not a regular file", "name", e.Name, "type", t)
				continue
			}
			// Names are kept as listed: a backslash is a plain character.
			if _, err := plugins.CleanPath(e.Name); err != nil || strings.Contains(e.Name, "/") {
				f.log.Warn("ftp: listed name skipped: not a plain file name", "name", e.Name)
				continue
			}
			out = append(out, plugins.File{Path: e.Name, Size: int64(e.Size), ModTime: e.Time})
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Open streams a file with RETR on a connection of its own, so that other
// calls can go on during the transfer.
func (f *FTP) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	_, remote, err := f.remote(p)
	if err != nil {
		return nil, err
	}
	r := &reader{f: f, ctx: ctx, remote: remote}
	if err := r.start(); err != nil {
		return nil, err
	}
	return r, nil
}

// Move renames the file on the server into dir, under a free name.
func (f *FTP) Move(ctx context.Context, p, dir string) (string, error) {
	p, src, err := f.remote(p)
	if err != nil {
		return "", err
	}
	if dir, err = plugins.CleanDir(dir); err != nil {
		return "", err
	}
	if path.Dir(p) == dir {
		return p, nil // already there
	}
	name := path.Base(p)
	ext := path.Ext(name)
	var moved string
	err = f.retry(ctx, "move "+src, func(c *conn) (bool, error) {
		if err := f.mkdirAll(c, dir); err != nil {
			return false, err
		}
		for i := 0; ; i++ {
			if i > 10000 {
				return false, fmt.Errorf("no free name for %s in %s", name, dir)
			}
			cand := name
			if i > 0 {
				cand = strings.TrimSuffix(name, ext) + "-" + strconv.Itoa(i) + ext
			}
			dst := path.Join(f.root, dir, cand)
			taken, err := f.exists(c, dst)
			if err != nil {
				return false, err
			}
			if taken {
				continue
			}
			if err := c.sc.Rename(src, dst); err != nil {
				return false, f.vanished(c, src, err)
			}
			moved = path.Join(dir, cand)
			return false, nil
		}
	})
	return moved, err
}

// mkdirAll makes dir and its parents under the root. A refused MKD is
// taken as "it exists": the rename into it tells otherwise.
func (f *FTP) mkdirAll(c *conn, dir string) error {
	if dir == "." {
		return nil
	}
	segs := strings.Split(dir, "/")
	for i := range segs {
		err := c.sc.MakeDir(path.Join(f.root, path.Join(segs[:i+1]...)))
		if err != nil && !permanent(err) {
			return err
		}
	}
	return nil
}

// Delete removes a file.
func (f *FTP) Delete(ctx context.Context, p string) error {
	_, remote, err := f.remote(p)
	if err != nil {
		return err
	}
	return f.retry(ctx, "delete "+remote, func(c *conn) (bool, error) {
		if err := c.sc.Delete(remote); err != nil {
			return false, f.vanished(c, remote, err)
		}
		return false, nil
	})
}

// vanished turns a permanent error about remote into one wrapping
// plugins.ErrVanished when the file is indeed gone, so that a refusal
// (permissions) is not mistaken for a vanished file.
func (f *FTP) vanished(c *conn, remote string, err error) error {
	if !permanent(err) {
		return err
	}
	if ok, xerr := f.exists(c, remote); xerr == nil && !ok {
		return fmt.Errorf("%w: %s: %w", plugins.ErrVanished, remote, err)
	}
	return err
}

// exists tells whether anything is at remote: MLST when the server has
// it, else SIZE.
func (f *FTP) exists(c *conn, remote string) (bool, error) {
	_, err := c.sc.GetEntry(remote)
	if err == nil {
		return true, nil
	}
	if !unsupported(err) {
		if code(err) == ftplib.StatusFileUnavailable {
			return false, nil
		}
		return false, err
	}
	_, err = c.sc.FileSize(remote)
	switch {
	case err == nil:
		return true, nil
	case code(err) == ftplib.StatusFileUnavailable:
		return false, nil
	}
	return false, err
}
