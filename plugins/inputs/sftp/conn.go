package sftp

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sftplib "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/carpipe/carpipe/plugins"
)

// session is one SSH connection and the SFTP client on it.
type session struct {
	ssh  *ssh.Client
	sftp *sftplib.Client
	dead chan struct{} // closed when the SFTP session ended
	once sync.Once
}

func (c *session) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

func (c *session) close() {
	c.once.Do(func() {
		c.ssh.Close()
		c.sftp.Close()
	})
}

// permanent marks an error that retrying cannot fix (a refused host key or
// login, a closed input).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// errTimeout is a connection that stayed silent too long.
var errTimeout = errors.New("timeout")

// transient reports whether err comes from the network rather than from
// the server's answer (SFTP has no retryable status codes: no such file,
// permission denied and failure are final).
func transient(err error) bool {
	var p permanent
	var dns *net.DNSError
	var ne net.Error
	switch {
	case err == nil, errors.As(err, &p),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &dns):
		return !dns.IsNotFound
	case errors.Is(err, errTimeout),
		errors.Is(err, sftplib.ErrSSHFxConnectionLost), errors.Is(err, sftplib.ErrSSHFxNoConnection),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.As(err, &ne):
		return true
	}
	return false
}

// do runs op on a live session, connecting when there is none. On a network
// error it drops the connection and tries again, up to Retries times with
// exponential backoff. limit, when not 0, bounds op's duration.
func (s *SFTP) do(ctx context.Context, limit time.Duration, op func(*session) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, reused, err := s.session(ctx)
		if err == nil {
			err = s.watch(c, limit, func() error { return op(c) })
			if transient(err) {
				s.drop(c)
			}
		}
		if !transient(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= s.Retries {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		wait := backoff(attempt)
		if reused && attempt == 0 {
			wait = 0 // most likely an idle connection the server dropped
		}
		s.log.Warn("SFTP network error; retrying", "host", s.addr(), "error", err.Error(), "attempt", attempt+1, "retry_in", wait)
		if !plugins.Wait(ctx, wait) {
			return ctx.Err()
		}
	}
}

// backoff is 250ms, 500ms, 1s... up to 8s, with jitter.
func backoff(attempt int) time.Duration {
	d := 250 * time.Millisecond << min(attempt, 5)
	return d/2 + rand.N(d/2+1)
}

// watch runs fn, dropping c if it takes longer than limit, which fails
// fn's pending request; the error then says why.
func (s *SFTP) watch(c *session, limit time.Duration, fn func() error) error {
	if limit <= 0 {
		return fn()
	}
	var fired atomic.Bool
	t := time.AfterFunc(limit, func() {
		fired.Store(true)
		s.drop(c)
	})
	err := fn()
	t.Stop()
	if err != nil && fired.Load() {
		return s.timeoutError()
	}
	return err
}

func (s *SFTP) timeoutError() error {
	return fmt.Errorf("%w: no answer from %s within %s", errTimeout, s.addr(), s.Timeout)
}

// session returns the live session, connecting when there is none; reused
// tells whether it existed before.
func (s *SFTP) session(ctx context.Context) (c *session, reused bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, permanent{errors.New("the input is closed")}
	}
	if s.cur != nil && s.cur.alive() {
		return s.cur, true, nil
	}
	if s.cur != nil {
		s.log.Debug("SFTP connection lost; reconnecting", "host", s.addr())
		s.cur.close()
		s.cur = nil
	}
	if c, err = s.connect(ctx); err != nil {
		return nil, false, err
	}
	s.cur = c
	go s.keepAlive(c)
	return c, false, nil
}

// drop closes c and forgets it, unless a newer session replaced it.
func (s *SFTP) drop(c *session) {
	s.mu.Lock()
	if s.cur == c {
		s.cur = nil
	}
	s.mu.Unlock()
	c.close()
}

// keepAlive checks the connection every Timeout, so that one that died
// silently (a firewall dropped it) is noticed during long requests, and so
// that an idle one is not dropped.
func (s *SFTP) keepAlive(c *session) {
	t := time.NewTicker(s.Timeout)
	defer t.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-t.C:
		}
		err := s.watch(c, s.Timeout, func() error {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			return err
		})
		if err != nil {
			s.log.Debug("SFTP keepalive failed; dropping the connection", "host", s.addr(), "error", err.Error())
			s.drop(c)
			return
		}
	}
}

// connect dials the server, checks its host key, logs in and starts SFTP.
func (s *SFTP) connect(ctx context.Context) (*session, error) {
	if s.pin != "" {
		return s.connectPinned(ctx)
	}
	c, _, err := s.dial(ctx, s.hostKeyAlgos)
	return c, err
}

// wrongKey is a host key that is not the pinned one.
type wrongKey struct{ key ssh.PublicKey }

func (w *wrongKey) Error() string {
	return w.key.Type() + " key " + ssh.FingerprintSHA256(w.key) + " is not the pinned one"
}

// connectPinned connects to a server whose key host_key_fingerprint pins.
// A server with several host keys presents the kind the client prefers
// (ECDSA before Ed25519), so when that is not the pinned key, each other
// kind is asked for in turn, one handshake each at most, before the
// server's keys are called a mismatch. The kind that matched is asked for
// first on later connections.
func (s *SFTP) connectPinned(ctx context.Context) (*session, error) {
	var (
		offered     []ssh.PublicKey
		serverAlgos []string // learnt when a handshake finds no common algorithm
	)
	tried := func(algos []string) bool {
		for _, k := range offered {
			if slices.Equal(algorithmsFor(k.Type()), algos) {
				return true
			}
		}
		return serverAlgos != nil && !slices.ContainsFunc(algos, func(a string) bool { return slices.Contains(serverAlgos, a) })
	}
	for i := -1; i < len(hostKeyTypes); i++ {
		algos := s.pinAlgos // nil at first: the library's preference
		if i >= 0 {
			if algos = algorithmsFor(hostKeyTypes[i]); tried(algos) {
				continue
			}
		}
		c, key, err := s.dial(ctx, algos)
		var wrong *wrongKey
		var neg *ssh.AlgorithmNegotiationError
		switch {
		case err == nil:
			s.pinAlgos = algorithmsFor(key.Type())
			return c, nil
		case errors.As(err, &wrong):
			offered = append(offered, wrong.key)
		case errors.As(err, &neg) && neg.What == "host key":
			serverAlgos = neg.RequestedAlgorithms
		default:
			return nil, err
		}
	}
	var keys []string
	for _, k := range offered {
		keys = append(keys, k.Type()+" key "+ssh.FingerprintSHA256(k))
	}
	return nil, permanent{fmt.Errorf("host key mismatch: none of the host keys %s presented is host_key_fingerprint %s (it presented %s); the server's key changed or someone is intercepting the connection",
		s.addr(), s.pin, strings.Join(keys, ", "))}
}

// hostKeyTypes are the kinds of host key a server may hold.
var hostKeyTypes = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA}

// algorithmsFor returns the host key algorithms that ask for a key of a
// type: an RSA key signs with any of three, best first.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// dial makes one connection, asking for a host key of one of algos (nil:
// any), and returns the key the server presented.
func (s *SFTP) dial(ctx context.Context, algos []string) (*session, ssh.PublicKey, error) {
	addr := s.addr()
	d := net.Dialer{Timeout: s.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	// Bounds the handshake, the login and the SFTP start.
	_ = nc.SetDeadline(time.Now().Add(s.Timeout))

	var (
		keyErr    error
		presented ssh.PublicKey
	)
	conf := &ssh.ClientConfig{
		User: s.User,
		Auth: s.auth,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			presented = key
			keyErr = s.checkHostKey(host, remote, key)
			return keyErr
		},
		HostKeyAlgorithms: algos,
		Timeout:           s.Timeout,
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, addr, conf)
	if err != nil {
		nc.Close()
		var ne net.Error
		switch {
		case keyErr != nil:
			return nil, presented, permanent{keyErr}
		case strings.Contains(err.Error(), "unable to authenticate"):
			// The library's message names the methods tried, never a secret.
			return nil, presented, permanent{fmt.Errorf("login as %s refused (%v): check user, password and private_key", s.User, strings.TrimPrefix(err.Error(), "ssh: "))}
		case errors.As(err, &ne) && ne.Timeout():
			return nil, presented, fmt.Errorf("%w: no SSH handshake with %s within %s", errTimeout, addr, s.Timeout)
		}
		return nil, presented, fmt.Errorf("SSH handshake: %w", err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	// Fstat: WriteTo sizes its reads from the open handle, not the path.
	fc, err := sftplib.NewClient(client, sftplib.UseFstat(true))
	if err != nil {
		client.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, presented, fmt.Errorf("%w: SFTP did not start within %s", errTimeout, s.Timeout)
		}
		return nil, presented, permanent{fmt.Errorf("starting SFTP (is the sftp subsystem enabled on the server?): %w", err)}
	}
	_ = nc.SetDeadline(time.Time{})
	c := &session{ssh: client, sftp: fc, dead: make(chan struct{})}
	go func() {
		_ = fc.Wait()
		close(c.dead)
	}()
	s.log.Debug("SFTP connected", "host", addr, "user", s.User, "host_key", presented.Type())
	return c, presented, nil
}

// authMethods loads the credentials: the key first, then the password.
func (s *SFTP) authMethods() ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if s.PrivateKey != "" {
		data, err := os.ReadFile(s.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("private_key: %w%s", err, tildeHint(s.PrivateKey))
		}
		signer, err := ssh.ParsePrivateKey(data)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing) && s.PrivateKeyPassphrase == "":
			return nil, fmt.Errorf("private_key %s is encrypted: set private_key_passphrase", s.PrivateKey)
		case errors.As(err, &missing):
			signer, err = ssh.ParsePrivateKeyWithPassphrase(data, []byte(s.PrivateKeyPassphrase))
			if err != nil {
				return nil, fmt.Errorf("private_key %s: cannot decrypt it with private_key_passphrase (%v)", s.PrivateKey, err)
			}
		case err != nil:
			return nil, fmt.Errorf("private_key %s: %w", s.PrivateKey, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if s.Password != "" {
		methods = append(methods, ssh.Password(s.Password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				// Only a password prompt gets the password.
				if len(questions) > 1 || slices.Contains(echos, true) {
					return nil, errors.New("the server asks more than a password")
				}
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = s.Password
				}
				return answers, nil
			}))
	}
	return methods, nil
}

// tildeHint explains a path where a ~ was taken literally.
func tildeHint(p string) string {
	if strings.Contains(filepath.ToSlash(p), "/~/") {
		return " (~ is not expanded: write ${HOME}/...)"
	}
	return ""
}

// hostKeyCallback returns how the server's host key is checked, and the
// host key algorithms to ask for.
func (s *SFTP) hostKeyCallback() (ssh.HostKeyCallback, []string, error) {
	switch {
	case s.InsecureIgnoreHostKey:
		return ssh.InsecureIgnoreHostKey(), nil, nil
	case s.HostKeyFingerprint != "":
		want, err := parseFingerprint(s.HostKeyFingerprint)
		if err != nil {
			return nil, nil, err
		}
		s.pin = want
		return func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if ssh.FingerprintSHA256(key) != want {
				return &wrongKey{key}
			}
			return nil
		}, nil, nil
	}
	file, explicit := s.KnownHosts, s.KnownHosts != ""
	if !explicit {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil, fmt.Errorf("no home folder to find ~/.ssh/known_hosts in (%v): set known_hosts or host_key_fingerprint", err)
		}
		file = filepath.Join(home, ".ssh", "known_hosts")
	}
	check, err := knownhosts.New(file)
	missing := errors.Is(err, fs.ErrNotExist)
	switch {
	case missing && explicit:
		return nil, nil, fmt.Errorf("known_hosts: %w%s", err, tildeHint(file))
	case missing:
		check = nil // like an empty file: the host is unknown
	case err != nil:
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	var algos []string
	if check != nil {
		algos = knownAlgorithms(check, s.addr())
	}
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		var err error = &knownhosts.KeyError{}
		if check != nil {
			err = check(host, remote, key)
		}
		var keyErr *knownhosts.KeyError
		var revoked *knownhosts.RevokedError
		switch {
		case errors.As(err, &revoked):
			return fmt.Errorf("host key of %s is marked revoked in %s (line %d)", s.addr(), revoked.Revoked.Filename, revoked.Revoked.Line)
		case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
			return s.unknownHost(file, missing, key)
		case errors.As(err, &keyErr):
			var known []string
			for _, k := range keyErr.Want {
				known = append(known, fmt.Sprintf("%s %s (line %d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Line))
			}
			return fmt.Errorf("host key mismatch: %s presented %s key %s but %s lists %s; someone may be intercepting the connection, or the server's key was replaced: do not connect until you know which (if the change is expected, remove the old entry with ssh-keygen -R '%s' -f %s and add the new key)",
				s.addr(), key.Type(), ssh.FingerprintSHA256(key), file, strings.Join(known, ", "), knownhosts.Normalize(s.addr()), file)
		}
		return err
	}, algos, nil
}

func (s *SFTP) unknownHost(file string, missing bool, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	scan := "ssh-keyscan -t " + keyscanType(key.Type())
	if s.Port != 22 {
		scan += " -p " + strconv.Itoa(s.Port)
	}
	scan += " " + strings.Trim(s.Host, "[]") + " >> " + file
	note := ""
	if missing {
		note = " (the file does not exist)"
	}
	return fmt.Errorf("host %s is not in known_hosts %s%s; it presented %s key %s: check this fingerprint with the server's administrator, then add the key with: %s (or pin it with host_key_fingerprint: %s)",
		knownhosts.Normalize(s.addr()), file, note, key.Type(), fp, scan, fp)
}

// keyscanType is ssh-keyscan's -t name of a key type.
func keyscanType(t string) string {
	switch {
	case t == ssh.KeyAlgoRSA:
		return "rsa"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ecdsa"
	case t == ssh.KeyAlgoED25519:
		return "ed25519"
	}
	return t
}

// knownAlgorithms returns the host key algorithms known_hosts has keys of
// for addr, so that the server is asked for a key it can be checked
// against rather than its preferred one. A probe key that matches nothing
// makes the callback list the known keys.
func knownAlgorithms(check ssh.HostKeyCallback, addr string) []string {
	probe, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	if err != nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(check(addr, &net.TCPAddr{}, probe), &keyErr) {
		return nil
	}
	var algos []string
	for _, k := range keyErr.Want {
		for _, n := range algorithmsFor(k.Key.Type()) {
			if !slices.Contains(algos, n) {
				algos = append(algos, n)
			}
		}
	}
	return algos
}
