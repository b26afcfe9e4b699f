// Package sftp reads files from a folder on an SFTP server (SSH File
// Transfer Protocol), checking the server's host key.
package sftp

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	sftplib "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/carpipe/carpipe/plugins"
)

//go:embed sample.yaml
var sample string

func init() {
	plugins.Default.AddInput(plugins.InputSpec{
		Name:   "sftp",
		Doc:    "Reads files from a folder on an SFTP server, checking its SSH host key.",
		Sample: sample,
		New:    func() plugins.Input { return New() },
	})
}

// SFTP is a folder on an SFTP server.
type SFTP struct {
	Host                  string        `yaml:"host" required:"true" doc:"the server's host name or IP address"`
	Port                  int           `yaml:"port" doc:"the server's SSH port (default 22)"`
	User                  string        `yaml:"user" required:"true" doc:"the user to log in as"`
	Password              string        `yaml:"password" secret:"true" doc:"the user's password (also answers keyboard-interactive prompts)"`
	PrivateKey            string        `yaml:"private_key" carpipe:"path" doc:"a private key file, OpenSSH or PEM format"`
	PrivateKeyPassphrase  string        `yaml:"private_key_passphrase" secret:"true" doc:"the passphrase of an encrypted private_key"`
	KnownHosts            string        `yaml:"known_hosts" carpipe:"path" doc:"the known_hosts file the server's host key must be in (default ~/.ssh/known_hosts)"`
	HostKeyFingerprint    string        `yaml:"host_key_fingerprint" doc:"pin the server's host key instead of using known_hosts: SHA256:... as ssh-keygen -lf prints it"`
	InsecureIgnoreHostKey bool          `yaml:"insecure_ignore_host_key" doc:"accept any host key: anyone on the network path can then read and change the files (logged as a warning)"`
	Path                  string        `yaml:"path" doc:"the remote folder to read, absolute or relative to the login folder (default .)"`
	Timeout               time.Duration `yaml:"timeout" doc:"how long connecting, and each request, may take before the connection is dropped and retried (default 30s)"`
	Retries               int           `yaml:"retries" doc:"retries, with exponential backoff, of a request that failed on a network error (default 3)"`

	log          *slog.Logger
	auth         []ssh.AuthMethod
	checkHostKey ssh.HostKeyCallback
	hostKeyAlgos []string // the algorithms of the keys known_hosts has for the host
	pin          string   // host_key_fingerprint, parsed
	pinAlgos     []string // the algorithms that got the pinned key (under mu)

	mu     sync.Mutex
	cur    *session
	closed bool
}

var (
	_ plugins.Input     = (*SFTP)(nil)
	_ plugins.Initer    = (*SFTP)(nil)
	_ plugins.Validator = (*SFTP)(nil)
	_ plugins.Closer    = (*SFTP)(nil)
)

// New returns an SFTP input with its defaults set.
func New() *SFTP {
	return &SFTP{Port: 22, Path: ".", Timeout: 30 * time.Second, Retries: 3}
}

// Validate checks the config without connecting.
func (s *SFTP) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	host := strings.TrimSuffix(strings.TrimPrefix(s.Host, "["), "]")
	switch {
	case host == "":
		bad("host is empty")
	case strings.ContainsAny(host, "/@ \t") || strings.Count(host, ":") == 1:
		bad("host %q: give only a host name or IP address; the port goes in port and the user in user", s.Host)
	}
	if s.Port < 1 || s.Port > 65535 {
		bad("port %d is not a TCP port (1-65535)", s.Port)
	}
	if s.User == "" {
		bad("user is empty")
	}
	if s.Password == "" && s.PrivateKey == "" {
		bad("no credentials: set password, private_key or both")
	}
	if s.PrivateKeyPassphrase != "" && s.PrivateKey == "" {
		bad("private_key_passphrase is set but private_key is not")
	}
	if s.HostKeyFingerprint != "" {
		if _, err := parseFingerprint(s.HostKeyFingerprint); err != nil {
			bad("%v", err)
		}
	}
	n := 0
	for _, set := range []bool{s.KnownHosts != "", s.HostKeyFingerprint != "", s.InsecureIgnoreHostKey} {
		if set {
			n++
		}
	}
	if n > 1 {
		bad("known_hosts, host_key_fingerprint and insecure_ignore_host_key exclude each other: set only one")
	}
	if s.Path == "" {
		bad("path is empty (use . for the login folder)")
	}
	if s.Timeout <= 0 {
		bad("timeout must be positive, e.g. 30s")
	}
	if s.Retries < 0 {
		bad("retries must not be negative")
	}
	return errors.Join(errs...)
}

// parseFingerprint returns a fingerprint in the form ssh.FingerprintSHA256
// gives, accepting base64 padding.
func parseFingerprint(fp string) (string, error) {
	b64, ok := strings.CutPrefix(fp, "SHA256:")
	b64 = strings.TrimRight(b64, "=")
	if raw, err := base64.RawStdEncoding.DecodeString(b64); !ok || err != nil || len(raw) != 32 {
		return "", fmt.Errorf("host_key_fingerprint %q is not a SHA256 fingerprint such as SHA256:%s (ssh-keygen -lf prints it)", fp, strings.Repeat("x", 43))
	}
	return "SHA256:" + b64, nil
}

// Init loads the credentials and host key settings, connects, and checks
// that path is a folder.
func (s *SFTP) Init(ctx context.Context, env plugins.Env) error {
	s.log = env.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.Validate(); err != nil {
		return err
	}
	var err error
	if s.auth, err = s.authMethods(); err != nil {
		return err
	}
	if s.checkHostKey, s.hostKeyAlgos, err = s.hostKeyCallback(); err != nil {
		return err
	}
	if s.InsecureIgnoreHostKey {
		s.log.Warn("the SFTP server's host key is not checked (insecure_ignore_host_key: true): anyone on the network path can read and change the files", "host", s.addr())
	}
	var pathErr error
	err = s.do(ctx, s.Timeout, func(c *session) error {
		fi, err := c.sftp.Stat(s.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			pathErr = errors.New("no such folder")
		case err != nil:
			return err
		case !fi.IsDir():
			pathErr = errors.New("not a folder")
		}
		return nil
	})
	if err == nil && pathErr != nil {
		err = fmt.Errorf("path %s: %w", s.Path, pathErr)
	}
	if err != nil {
		s.Close()
		return fmt.Errorf("%s: %w", s.where(), err)
	}
	return nil
}

// Close drops the connection.
func (s *SFTP) Close() error {
	s.mu.Lock()
	c := s.cur
	s.cur, s.closed = nil, true
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
	return nil
}

// List returns the files directly in path, following symbolic links to
// files and skipping hidden names, which uploaders use for partial files.
func (s *SFTP) List(ctx context.Context) ([]plugins.File, error) {
	var out []plugins.File
	// No time limit: a big folder takes many requests. A dead connection is
	// caught by the keepalives.
	err := s.do(ctx, 0, func(c *session) error {
		out = out[:0]
		// The library pages through the folder with one request per batch
		// the server sends.
		entries, err := c.sftp.ReadDirContext(ctx, s.Path)
		if err != nil {
			return err
		}
		for _, fi := range entries {
			name := fi.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				target, err := c.sftp.Stat(path.Join(s.Path, name))
				if err != nil {
					if transient(err) {
						return err
					}
					continue // a broken link
				}
				fi = target
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			p, err := plugins.CleanPath(name)
			if err != nil || p != name {
				s.log.Warn("file left alone: its name is not a plain file name", "name", name)
				continue
			}
			out = append(out, plugins.File{Path: p, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		// The library keeps the last part of a name the server gave with
		// slashes in it, so two entries may come out as one name.
		count := map[string]int{}
		for _, f := range out {
			count[f.Path]++
		}
		out = slices.DeleteFunc(out, func(f plugins.File) bool { return count[f.Path] > 1 })
		for name, n := range count {
			if n > 1 {
				s.log.Warn("file left alone: the server lists its name more than once", "name", name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: reading folder %s: %w", s.where(), s.Path, err)
	}
	return out, nil
}

// Open streams a listed file.
func (s *SFTP) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	p, err := plugins.CleanPath(p)
	if err != nil {
		return nil, err
	}
	r, err := s.open(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("%s: opening %s: %w", s.where(), p, err)
	}
	return r, nil
}

// maxSuffix bounds the search for a free name.
const maxSuffix = 10000

// Move renames the file to a free name in dir. An SFTP rename is refused
// when the target exists, but some servers replace it, so the name is also
// checked first. The posix-rename extension is not used: it replaces the
// target by design.
func (s *SFTP) Move(ctx context.Context, p, dir string) (string, error) {
	p, err := plugins.CleanPath(p)
	if err != nil {
		return "", err
	}
	if dir, err = plugins.CleanDir(dir); err != nil {
		return "", err
	}
	if path.Dir(p) == dir {
		return p, nil // already there
	}
	src, destDir := s.remote(p), s.remote(dir)
	name := path.Base(p)
	ext := path.Ext(name)
	var moved string
	err = s.do(ctx, s.Timeout, func(c *session) error {
		fc := c.sftp
		if err := s.source(fc, p); err != nil {
			return err
		}
		if err := s.folders(fc, dir, true); err != nil {
			return fmt.Errorf("folder %s: %w", dir, err)
		}
		for i := range maxSuffix {
			cand := name
			if i > 0 {
				cand = strings.TrimSuffix(name, ext) + "-" + strconv.Itoa(i) + ext
			}
			dst := path.Join(destDir, cand)
			if _, err := fc.Lstat(dst); err == nil {
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			err := fc.Rename(src, dst)
			if err == nil {
				moved = path.Join(dir, cand)
				return nil
			}
			if _, lerr := fc.Lstat(src); errors.Is(lerr, fs.ErrNotExist) {
				return vanished(lerr, p)
			}
			if _, lerr := fc.Lstat(dst); lerr == nil {
				continue // taken meanwhile
			}
			return err
		}
		return fmt.Errorf("no free name for %s in %s", name, dir)
	})
	if err != nil {
		return "", fmt.Errorf("%s: moving %s to %s: %w", s.where(), p, dir, err)
	}
	return moved, nil
}

// Delete removes a file.
func (s *SFTP) Delete(ctx context.Context, p string) error {
	p, err := plugins.CleanPath(p)
	if err != nil {
		return err
	}
	a := s.remote(p)
	err = s.do(ctx, s.Timeout, func(c *session) error {
		if err := s.source(c.sftp, p); err != nil {
			return err
		}
		return vanished(c.sftp.Remove(a), p)
	})
	if err != nil {
		return fmt.Errorf("%s: deleting %s: %w", s.where(), p, err)
	}
	return nil
}

// source checks a file to move or delete: there, not a folder, and not
// reached through a linked folder.
func (s *SFTP) source(fc *sftplib.Client, p string) error {
	if err := s.folders(fc, path.Dir(p), false); err != nil {
		return vanished(err, p)
	}
	fi, err := fc.Lstat(s.remote(p))
	switch {
	case err != nil:
		return vanished(err, p)
	case fi.IsDir():
		return errors.New("it is a folder")
	}
	return nil
}

var errLinked = errors.New("is a symbolic link, which carpipe does not follow")

// folders checks that each folder of dir below path is a real folder, not
// a symbolic link that would lead elsewhere on the server, and makes the
// missing ones when create is set. A missing one otherwise gives an error
// wrapping fs.ErrNotExist.
func (s *SFTP) folders(fc *sftplib.Client, dir string, create bool) error {
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		fi, err := fc.Lstat(s.remote(sub))
		if create && errors.Is(err, fs.ErrNotExist) {
			merr := fc.Mkdir(s.remote(sub))
			// Made here, or by another process meanwhile.
			if fi, err = fc.Lstat(s.remote(sub)); err != nil && merr != nil {
				err = fmt.Errorf("creating %s: %w", sub, merr)
			}
		}
		switch {
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s %w", sub, errLinked)
		case !fi.IsDir():
			return fmt.Errorf("%s is not a folder", sub)
		}
	}
	return nil
}

// remote turns a clean relative path into the server's path.
func (s *SFTP) remote(p string) string { return path.Join(s.Path, p) }

func (s *SFTP) addr() string {
	return net.JoinHostPort(strings.Trim(s.Host, "[]"), strconv.Itoa(s.Port))
}

// where names the server in messages; it holds no secret.
func (s *SFTP) where() string { return "sftp " + s.User + "@" + s.addr() }

// vanished marks a missing file as plugins.ErrVanished.
func vanished(err error, p string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", plugins.ErrVanished, p)
	}
	return err
}
