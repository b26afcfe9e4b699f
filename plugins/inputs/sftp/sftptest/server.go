// Package sftptest runs a real SSH server with the SFTP subsystem on
// 127.0.0.1, serving a local folder, for the tests of the sftp input.
package sftptest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is an SSH server on 127.0.0.1 whose SFTP subsystem serves Root.
// Paths cannot leave Root: it is opened as an os.Root, which also refuses
// symbolic links pointing out of it.
//
// Like a stock OpenSSH server it holds three host keys, ECDSA, Ed25519 and
// RSA, and presents the kind the client prefers.
type Server struct {
	Host     string // 127.0.0.1
	Port     int
	Root     string
	User     string
	Password string
	HostKey  ssh.PublicKey   // the Ed25519 one
	HostKeys []ssh.PublicKey // all three: ECDSA, Ed25519, RSA

	root *os.Root
	ln   net.Listener
	conf *ssh.ServerConfig
	wg   sync.WaitGroup

	mu         sync.Mutex
	authorized [][]byte
	conns      map[*gate]bool
	dropAt     map[string]int64 // one-shot: drop every connection when a read of the file reaches this offset
	fakeNames  []string

	accepted atomic.Int64
	logins   atomic.Int64
	password atomic.Int64
}

// rsaKey is made once per test binary: an RSA key takes a while.
var rsaKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// Start serves root until the test ends. It accepts Password for user
// "carpipe" and any key given to Authorize.
func Start(t testing.TB, root string) *Server {
	t.Helper()
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsKey, err := rsaKey()
	if err != nil {
		t.Fatal(err)
	}
	var signers []ssh.Signer
	for _, k := range []any{ecKey, edKey, rsKey} {
		signer, err := ssh.NewSignerFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, signer)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Root: root,
		User: "carpipe", Password: "s3cret-Pa55word",
		HostKey: signers[1].PublicKey(),
		root:    r, ln: ln, conns: map[*gate]bool{}, dropAt: map[string]int64{},
	}
	for _, signer := range signers {
		s.HostKeys = append(s.HostKeys, signer.PublicKey())
	}
	s.conf = &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
			s.password.Add(1)
			if c.User() == s.User && subtle.ConstantTimeCompare(pass, []byte(s.Password)) == 1 {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, k := range s.authorized {
				if c.User() == s.User && subtle.ConstantTimeCompare(k, key.Marshal()) == 1 {
					return nil, nil
				}
			}
			return nil, errors.New("unknown key")
		},
	}
	for _, signer := range signers {
		s.conf.AddHostKey(signer)
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Authorize lets a public key log in as User.
func (s *Server) Authorize(key ssh.PublicKey) {
	s.mu.Lock()
	s.authorized = append(s.authorized, key.Marshal())
	s.mu.Unlock()
}

// KnownHostsLine is the known_hosts line for the server's host key.
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey) + "\n"
}

// Accepted counts the connections accepted, whatever became of them: each
// SSH handshake is one.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// FakeNames makes every folder listing also show these names, as regular
// files of one byte that do not exist, as a broken or hostile server might.
func (s *Server) FakeNames(names ...string) {
	s.mu.Lock()
	s.fakeNames = append(s.fakeNames, names...)
	s.mu.Unlock()
}

// Logins counts the connections that logged in.
func (s *Server) Logins() int64 { return s.logins.Load() }

// PasswordAttempts counts the passwords received.
func (s *Server) PasswordAttempts() int64 { return s.password.Load() }

// DropAll closes every open connection, as a server restarting or timing
// out idle clients does.
func (s *Server) DropAll() {
	s.mu.Lock()
	conns := make([]*gate, 0, len(s.conns))
	for g := range s.conns {
		conns = append(conns, g)
	}
	s.mu.Unlock()
	for _, g := range conns {
		g.Close()
	}
}

// Freeze makes every open connection stop answering, without closing it,
// as a dead network path does; new connections work.
func (s *Server) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for g := range s.conns {
		g.frozen.Store(true)
	}
}

// DropDuringRead arms a one-shot: the first read of file p (slash path
// relative to Root) at or past offset drops every connection.
func (s *Server) DropDuringRead(p string, offset int64) {
	s.mu.Lock()
	s.dropAt["/"+p] = offset
	s.mu.Unlock()
}

func (s *Server) close() {
	s.ln.Close()
	s.DropAll()
	s.wg.Wait()
	s.root.Close()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		g := &gate{Conn: nc, done: make(chan struct{})}
		s.mu.Lock()
		s.conns[g] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				g.Close()
				s.mu.Lock()
				delete(s.conns, g)
				s.mu.Unlock()
			}()
			s.handle(g)
		}()
	}
}

func (s *Server) handle(nc net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.conf)
	if err != nil {
		return
	}
	defer sc.Close()
	s.logins.Add(1)
	go ssh.DiscardRequests(reqs) // answers keepalives
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range chReqs {
				var sub struct{ Name string }
				ok := req.Type == "subsystem" && ssh.Unmarshal(req.Payload, &sub) == nil && sub.Name == "sftp"
				req.Reply(ok, nil)
				if ok {
					go func() {
						h := handlers{s}
						rs := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
						rs.Serve()
						rs.Close()
						ch.Close()
					}()
				}
			}
		}()
	}
}

// gate is a server-side connection that Freeze can silence.
type gate struct {
	net.Conn
	frozen atomic.Bool
	done   chan struct{}
	once   sync.Once
}

func (g *gate) Read(b []byte) (int, error) {
	n, err := g.Conn.Read(b)
	if g.frozen.Load() {
		<-g.done // what was read is lost, as on a dead path
		return 0, net.ErrClosed
	}
	return n, err
}

func (g *gate) Close() error {
	g.once.Do(func() { close(g.done) })
	return g.Conn.Close()
}

// handlers serve the SFTP requests from the os.Root.
type handlers struct{ s *Server }

// rel turns the request server's absolute path into one relative to Root.
func rel(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

func (h handlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := h.s.root.Open(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return &served{File: f, s: h.s, name: r.Filepath}, nil
}

func (h handlers) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return h.s.root.OpenFile(rel(r.Filepath), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
}

// Filecmd renames with os.Root.Rename, which replaces an existing target as
// some servers do: a client must check names itself.
func (h handlers) Filecmd(r *sftp.Request) error {
	switch r.Method {
	case "Rename":
		return h.s.root.Rename(rel(r.Filepath), rel(r.Target))
	case "Mkdir":
		return h.s.root.Mkdir(rel(r.Filepath), 0o755)
	case "Remove", "Rmdir":
		return h.s.root.Remove(rel(r.Filepath))
	case "Setstat":
		return nil
	}
	return sftp.ErrSSHFxOpUnsupported
}

func (h handlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	switch r.Method {
	case "List":
		f, err := h.s.root.Open(rel(r.Filepath))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		entries, err := f.ReadDir(-1)
		if err != nil {
			return nil, err
		}
		var infos lister
		for _, e := range entries {
			if fi, err := e.Info(); err == nil { // not following links
				infos = append(infos, fi)
			}
		}
		h.s.mu.Lock()
		for _, name := range h.s.fakeNames {
			infos = append(infos, fakeInfo(name))
		}
		h.s.mu.Unlock()
		return infos, nil
	case "Stat":
		fi, err := h.s.root.Stat(rel(r.Filepath))
		if err != nil {
			return nil, err
		}
		return lister{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

func (h handlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := h.s.root.Lstat(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return lister{fi}, nil
}

// fakeInfo is a listed name with nothing behind it.
type fakeInfo string

func (f fakeInfo) Name() string       { return string(f) }
func (f fakeInfo) Size() int64        { return 1 }
func (f fakeInfo) Mode() os.FileMode  { return 0o644 }
func (f fakeInfo) ModTime() time.Time { return time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC) }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return nil }

// lister hands out a listing a page at a time, as the client asks.
type lister []os.FileInfo

func (l lister) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}

// served is an open file whose reads may trigger DropDuringRead.
type served struct {
	*os.File
	s    *Server
	name string
}

func (f *served) ReadAt(b []byte, off int64) (int, error) {
	f.s.mu.Lock()
	at, armed := f.s.dropAt[f.name]
	drop := armed && off >= at
	if drop {
		delete(f.s.dropAt, f.name)
	}
	f.s.mu.Unlock()
	if drop {
		f.s.DropAll()
		return 0, errors.New("connection dropped")
	}
	return f.File.ReadAt(b, off)
}

// NewKey returns a new ed25519 key pair: the public key and the private key
// as an OpenSSH key file, encrypted when passphrase is not empty.
func NewKey(t testing.TB, passphrase string) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "carpipe test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "carpipe test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, pem.EncodeToMemory(block)
}

// WriteFile writes data to a new file in a temporary folder and returns
// its path.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
