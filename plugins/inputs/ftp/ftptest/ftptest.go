// Package ftptest runs a real FTP/FTPS server in-process, on an in-memory
// file system, for the tests of the ftp input and of the CLI.
package ftptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// The one account of the server.
const (
	User     = "carpipe"
	Password = "s3cret-Pa55word"
)

// DNSName is the name the certificate holds besides 127.0.0.1.
const DNSName = "ftp.test"

// Options set up a server.
type Options struct {
	TLS         string // none (default) | explicit (AUTH TLS required) | implicit
	DisableMLSD bool
	DisableMLST bool
	// Wrap, when set, is called once at Start to wrap the file system the
	// users see (FS stays the unwrapped one).
	Wrap func(afero.Fs) afero.Fs
}

// Server is a running server.
type Server struct {
	FS     afero.Fs // the whole server's files, "/" is the login folder
	Port   int
	CAFile string // PEM of the server's self-signed certificate (TLS modes)

	opts     Options
	served   afero.Fs
	listener net.Listener
	srv      *ftpserver.FtpServer
	tlsConf  *tls.Config
	connects atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]bool // open sockets, control and data
}

// Start starts a server on 127.0.0.1, stopped at cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{FS: afero.NewMemMapFs(), opts: o, conns: map[net.Conn]bool{}}
	s.served = s.FS
	if o.Wrap != nil {
		s.served = o.Wrap(s.FS)
	}
	if o.TLS != "" && o.TLS != "none" {
		c, err := cert()
		if err != nil {
			t.Fatal(err)
		}
		s.tlsConf = &tls.Config{Certificates: []tls.Certificate{c.pair}, MinVersion: tls.VersionTLS12}
		s.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(s.CAFile, c.pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	s.listener = s.track(l)
	if o.TLS == "implicit" {
		// ftpserverlib wraps only a listener it makes itself.
		s.listener = tls.NewListener(s.listener, s.tlsConf)
	}
	s.srv = ftpserver.NewFtpServer(s)
	if err := s.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve()
	}()
	t.Cleanup(func() {
		s.srv.Stop()
		<-done
		s.DropClients()
	})
	return s
}

// TLS is the server's TLS mode: none, explicit or implicit.
func (s *Server) TLS() string {
	if s.opts.TLS == "" {
		return "none"
	}
	return s.opts.TLS
}

// Connects counts the control connections accepted so far.
func (s *Server) Connects() int64 { return s.connects.Load() }

// DropClients closes every client connection, control and data, from the
// server's side, as a server restart or an idle timeout does. It closes
// the sockets: ftpserverlib's ClientContext.Close races with its handler.
func (s *Server) DropClients() {
	s.mu.Lock()
	var cs []net.Conn
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// track wraps l so that DropClients can close what it accepts.
func (s *Server) track(l net.Listener) net.Listener { return trackingListener{l, s} }

type trackingListener struct {
	net.Listener
	s *Server
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.conns[c] = true
	l.s.mu.Unlock()
	return trackedConn{c, l.s}, nil
}

type trackedConn struct {
	net.Conn
	s *Server
}

func (c trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c.Conn)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// WrapPassiveListener tracks the data connections too.
func (s *Server) WrapPassiveListener(l net.Listener) (net.Listener, error) {
	return s.track(l), nil
}

// Put writes a file, making its folders, with the given modification time.
func (s *Server) Put(t testing.TB, p string, data []byte, mtime time.Time) {
	t.Helper()
	if err := s.FS.MkdirAll(path.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(s.FS, p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.FS.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// Get reads a file; ok is false when there is none.
func (s *Server) Get(t testing.TB, p string) (data []byte, ok bool) {
	t.Helper()
	data, err := afero.ReadFile(s.FS, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return data, true
}

// Names lists a folder, sorted.
func (s *Server) Names(t testing.TB, dir string) []string {
	t.Helper()
	es, err := afero.ReadDir(s.FS, dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// The ftpserverlib.MainDriver methods.

func (s *Server) GetSettings() (*ftpserver.Settings, error) {
	st := &ftpserver.Settings{
		Listener:    s.listener,
		IdleTimeout: 60,
		DisableMLSD: s.opts.DisableMLSD,
		DisableMLST: s.opts.DisableMLST,
	}
	switch s.opts.TLS {
	case "explicit":
		st.TLSRequired = ftpserver.MandatoryEncryption
	case "implicit":
		st.TLSRequired = ftpserver.ImplicitEncryption
	}
	return st, nil
}

func (s *Server) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	s.connects.Add(1)
	return "carpipe test server", nil
}

func (s *Server) ClientDisconnected(ftpserver.ClientContext) {}

// AuthUser echoes a refused password in its reply, as a careless server
// might, so that tests can check that the client never shows it.
func (s *Server) AuthUser(_ ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	if user != User || pass != Password {
		return nil, fmt.Errorf("user %q with password %q refused", user, pass)
	}
	return s.served, nil
}

func (s *Server) GetTLSConfig() (*tls.Config, error) {
	if s.tlsConf == nil {
		return nil, errors.New("no TLS on this server")
	}
	return s.tlsConf, nil
}

type testCert struct {
	pair tls.Certificate
	pem  []byte
}

var (
	certOnce sync.Once
	certVal  testCert
	certErr  error
)

// cert makes one self-signed certificate for 127.0.0.1 and DNSName per
// test binary.
func cert() (testCert, error) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(now.UnixNano()),
			Subject:               pkix.Name{CommonName: "carpipe test FTP server"},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:              []string{DNSName},
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		certVal = testCert{
			pair: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
			pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		}
	})
	return certVal, certErr
}
