package sftp_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/inputs/sftp"
	"github.com/carpipe/carpipe/plugins/inputs/sftp/sftptest"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

func TestConformance(t *testing.T) {
	for _, auth := range []string{"password", "key"} {
		t.Run(auth, func(t *testing.T) {
			plugintest.Input(t, plugintest.LocalHarness(func(t *testing.T, root string) plugins.Input {
				srv := sftptest.Start(t, root)
				in := newInput(t, srv)
				if auth == "key" {
					in.Password = ""
					in.PrivateKey = authorizeKey(t, srv, "")
				}
				return initInput(t, in)
			}))
		})
	}
}

// newInput returns an input for srv logging in with its password and
// checking its host key against a known_hosts file.
func newInput(t *testing.T, srv *sftptest.Server) *sftp.SFTP {
	t.Helper()
	in := sftp.New()
	in.Host, in.Port, in.User, in.Password = srv.Host, srv.Port, srv.User, srv.Password
	in.KnownHosts = sftptest.WriteFile(t, "known_hosts", []byte(srv.KnownHostsLine()))
	in.Timeout = 5 * time.Second
	return in
}

// authorizeKey makes a key srv accepts and returns its key file.
func authorizeKey(t *testing.T, srv *sftptest.Server, passphrase string) string {
	t.Helper()
	pub, file := sftptest.NewKey(t, passphrase)
	srv.Authorize(pub)
	return sftptest.WriteFile(t, "id_ed25519", file)
}

func initInput(t *testing.T, in *sftp.SFTP) *sftp.SFTP {
	t.Helper()
	if err := in.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := in.Init(t.Context(), plugins.Env{Name: "in"}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// initErr returns Init's error, failing when there is none.
func initErr(t *testing.T, in *sftp.SFTP) string {
	t.Helper()
	if err := in.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	err := in.Init(t.Context(), plugins.Env{Name: "in"})
	if err == nil {
		in.Close()
		t.Fatal("Init succeeded; want it refused")
	}
	return err.Error()
}

func listed(t *testing.T, in plugins.Input) map[string]plugins.File {
	t.Helper()
	files, err := in.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	out := map[string]plugins.File{}
	for _, f := range files {
		out[f.Path] = f
	}
	return out
}

func readAll(t *testing.T, in plugins.Input, p string) []byte {
	t.Helper()
	rc, err := in.Open(t.Context(), p)
	if err != nil {
		t.Fatalf("Open(%q): %v", p, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", p, err)
	}
	return data
}

func wantIn(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

var mtime = time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)

func otherKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWrongHostKeyRefused(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	in := newInput(t, srv)
	// known_hosts lists another key for this host and port.
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, otherKey(t)) + "\n"
	in.KnownHosts = sftptest.WriteFile(t, "known_hosts", []byte(line))
	msg := initErr(t, in)
	wantIn(t, "the error", msg, "host key mismatch", ssh.FingerprintSHA256(srv.HostKey), in.KnownHosts, "(line 1)", "intercepting")
	if n := srv.PasswordAttempts(); n != 0 {
		t.Errorf("the password was sent %d times to a server whose key did not match", n)
	}
}

func TestUnknownHostRefused(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	in := newInput(t, srv)
	in.KnownHosts = sftptest.WriteFile(t, "known_hosts", nil)
	msg := initErr(t, in)
	// The key the client prefers, among the server's.
	fp := ssh.FingerprintSHA256(srv.HostKeys[0])
	wantIn(t, "the error", msg, "is not in known_hosts", fp,
		"ssh-keyscan -t ecdsa -p "+strconv.Itoa(srv.Port)+" 127.0.0.1 >> "+in.KnownHosts, "host_key_fingerprint: "+fp)
	if n := srv.PasswordAttempts(); n != 0 {
		t.Errorf("the password was sent %d times to an unknown server", n)
	}
}

func TestDefaultKnownHosts(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	home := t.TempDir()
	t.Setenv("HOME", home)
	in := newInput(t, srv)
	in.KnownHosts = "" // ~/.ssh/known_hosts
	msg := initErr(t, in)
	wantIn(t, "the error", msg, filepath.Join(home, ".ssh", "known_hosts")+" (the file does not exist)", "ssh-keyscan")

	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(srv.KnownHostsLine()), 0o600); err != nil {
		t.Fatal(err)
	}
	in = newInput(t, srv)
	in.KnownHosts = ""
	initInput(t, in)
}

func TestExplicitKnownHostsMissing(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	in := newInput(t, srv)
	in.KnownHosts = filepath.Join(t.TempDir(), "~", ".ssh", "known_hosts")
	msg := initErr(t, in)
	wantIn(t, "the error", msg, "known_hosts", "no such file", "~ is not expanded")
	if srv.Logins() != 0 || srv.PasswordAttempts() != 0 {
		t.Error("connected although known_hosts is missing")
	}
}

func TestKnownHostsAlgorithms(t *testing.T) {
	// known_hosts holds an RSA key first, then the server's ed25519 key:
	// the ed25519 key is the one the client must ask for and accept.
	srv := sftptest.Start(t, t.TempDir())
	in := newInput(t, srv)
	data, err := os.ReadFile(in.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in.KnownHosts, append([]byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, otherKey(t))+"\n"), data...), 0o600); err != nil {
		t.Fatal(err)
	}
	initInput(t, in)
}

// TestPinnedFingerprint: the server holds an ECDSA, an Ed25519 and an RSA
// key and presents the client's favourite, ECDSA, first. Pinning any of
// them works, at the cost of one handshake per other kind of key at most,
// and later connections ask for the pinned kind at once.
func TestPinnedFingerprint(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	plugintest.PutFile(t, srv.Root, "a.json", []byte("{}"), mtime)
	if len(srv.HostKeys) != 3 {
		t.Fatalf("the server has %d host keys; want 3", len(srv.HostKeys))
	}
	for _, key := range srv.HostKeys {
		t.Run(key.Type(), func(t *testing.T) {
			in := newInput(t, srv)
			in.KnownHosts = ""
			in.HostKeyFingerprint = ssh.FingerprintSHA256(key)
			before := srv.Accepted()
			initInput(t, in)
			if n := srv.Accepted() - before; n > 4 {
				t.Errorf("%d handshakes to find the pinned key; want at most one per kind of key", n)
			}
			if got := listed(t, in); len(got) != 1 {
				t.Errorf("List = %v; want a.json", got)
			}
			srv.DropAll()
			before = srv.Accepted()
			if got := listed(t, in); len(got) != 1 {
				t.Errorf("List after a reconnection = %v; want a.json", got)
			}
			if n := srv.Accepted() - before; n != 1 {
				t.Errorf("%d handshakes to reconnect; want 1, asking for the pinned kind of key", n)
			}
		})
	}

	in := newInput(t, srv)
	in.KnownHosts = ""
	wrong := ssh.FingerprintSHA256(otherKey(t))
	in.HostKeyFingerprint = wrong
	passwords := srv.PasswordAttempts()
	msg := initErr(t, in)
	wantIn(t, "the error", msg, "host key mismatch", wrong, "intercepting")
	for _, key := range srv.HostKeys {
		wantIn(t, "the error", msg, key.Type()+" key "+ssh.FingerprintSHA256(key))
	}
	if n := srv.PasswordAttempts() - passwords; n != 0 {
		t.Errorf("the password was sent %d times to a server whose keys did not match", n)
	}
}

func TestInsecureIgnoreHostKey(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	in := newInput(t, srv)
	in.KnownHosts = ""
	in.InsecureIgnoreHostKey = true
	var logs bytes.Buffer
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := in.Init(t.Context(), plugins.Env{Name: "in", Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	defer in.Close()
	wantIn(t, "the log", logs.String(), "level=WARN", "insecure_ignore_host_key: true")
	if _, err := in.List(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestWrongPassword(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	in := newInput(t, srv)
	in.Password = "not-" + srv.Password
	msg := initErr(t, in)
	wantIn(t, "the error", msg, "login as carpipe refused", "password")
	if strings.Contains(msg, in.Password) {
		t.Errorf("the error shows the password: %s", msg)
	}
	if srv.Logins() != 0 {
		t.Error("logged in with a wrong password")
	}
}

func TestEncryptedKey(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	plugintest.PutFile(t, srv.Root, "a.json", []byte("{}"), mtime)
	const pass = "correct horse battery"
	key := authorizeKey(t, srv, pass)

	in := newInput(t, srv)
	in.Password, in.PrivateKey, in.PrivateKeyPassphrase = "", key, pass
	initInput(t, in)
	if got := string(readAll(t, in, "a.json")); got != "{}" {
		t.Errorf("read %q", got)
	}

	in = newInput(t, srv)
	in.Password, in.PrivateKey, in.PrivateKeyPassphrase = "", key, "wrong horse"
	msg := initErr(t, in)
	wantIn(t, "the error", msg, "cannot decrypt it with private_key_passphrase")
	if strings.Contains(msg, "horse") {
		t.Errorf("the error shows the passphrase: %s", msg)
	}

	in = newInput(t, srv)
	in.Password, in.PrivateKey = "", key
	wantIn(t, "the error", initErr(t, in), "is encrypted: set private_key_passphrase")

	// A key the server does not know.
	_, unknown := sftptest.NewKey(t, "")
	in = newInput(t, srv)
	in.Password, in.PrivateKey = "", sftptest.WriteFile(t, "id", unknown)
	wantIn(t, "the error", initErr(t, in), "login as carpipe refused", "publickey")
}

func TestReconnectsAfterDrop(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	plugintest.PutFile(t, srv.Root, "a.json", []byte("a"), mtime)
	in := initInput(t, newInput(t, srv))
	if got := listed(t, in); len(got) != 1 {
		t.Fatalf("List = %v", got)
	}
	srv.DropAll()
	plugintest.PutFile(t, srv.Root, "b.json", []byte("b"), mtime)
	if got := listed(t, in); len(got) != 2 {
		t.Fatalf("List after the server dropped the connection = %v; want a.json and b.json", got)
	}
	if got := srv.Logins(); got != 2 {
		t.Errorf("%d logins; want 2", got)
	}
	// Move and Delete work on the new connection too.
	if _, err := in.Move(t.Context(), "a.json", "done"); err != nil {
		t.Fatal(err)
	}
	srv.DropAll()
	if err := in.Delete(t.Context(), "b.json"); err != nil {
		t.Fatal(err)
	}
	if got := plugintest.Names(t, srv.Root); !slices.Equal(got, []string{"done"}) {
		t.Errorf("remote folder holds %v; want only done/", got)
	}
}

func TestResumesReadAfterDrop(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	big := make([]byte, 3<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	plugintest.PutFile(t, srv.Root, "big.bin", big, mtime)
	in := initInput(t, newInput(t, srv))
	srv.DropDuringRead("big.bin", 1<<20)
	got := readAll(t, in, "big.bin")
	if !bytes.Equal(got, big) {
		t.Errorf("read %d bytes; want the %d bytes of the file", len(got), len(big))
	}
	if n := srv.Logins(); n != 2 {
		t.Errorf("%d logins; want 2 (the read resumed on a new connection)", n)
	}
}

func TestHungServer(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	// Bigger than what the client asks for ahead (64 requests of 32 KiB),
	// so that the hang cuts the transfer.
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	plugintest.PutFile(t, srv.Root, "a.bin", data, mtime)
	in := newInput(t, srv)
	in.Timeout = 300 * time.Millisecond
	initInput(t, in)

	srv.Freeze()
	if got := listed(t, in); len(got) != 1 {
		t.Fatalf("List = %v", got)
	}
	if n := srv.Logins(); n != 2 {
		t.Errorf("%d logins after the server hung; want 2", n)
	}

	// Hangs in the middle of a read.
	rc, err := in.Open(t.Context(), "a.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	first := make([]byte, 1000)
	if _, err := io.ReadFull(rc, first); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading after the server hung: %v", err)
	}
	if got := append(first, rest...); !bytes.Equal(got, data) {
		t.Errorf("read %d bytes; want the %d bytes of the file", len(got), len(data))
	}
	if n := srv.Logins(); n != 3 {
		t.Errorf("%d logins after the server hung during a read; want 3", n)
	}
}

func TestConnectTimeout(t *testing.T) {
	// A port that accepts connections but never speaks SSH.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	in := sftp.New()
	in.Host, in.Port, in.User, in.Password = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, "u", "p"
	in.InsecureIgnoreHostKey = true
	in.Timeout, in.Retries = 200*time.Millisecond, 1
	msg := initErr(t, in)
	wantIn(t, "the error", msg, "no SSH handshake with", "within 200ms", "gave up after 2 attempts")
}

func TestListSkipsFoldersAndLinksToThem(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	plugintest.PutFile(t, srv.Root, "file.json", []byte("12345"), mtime)
	plugintest.PutFile(t, srv.Root, "folder/inner.json", []byte("x"), mtime)
	plugintest.PutFile(t, srv.Root, ".partial.json", []byte("x"), mtime)
	for link, target := range map[string]string{"to-file.json": "file.json", "to-folder": "folder", "broken.json": "nothing"} {
		if err := os.Symlink(target, filepath.Join(srv.Root, link)); err != nil {
			t.Fatal(err)
		}
	}
	in := initInput(t, newInput(t, srv))
	got := listed(t, in)
	var paths []string
	for p := range got {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	if want := []string{"file.json", "to-file.json"}; !slices.Equal(paths, want) {
		t.Errorf("List = %v; want %v", paths, want)
	}
	if f := got["to-file.json"]; f.Size != 5 || !f.ModTime.Equal(mtime) {
		t.Errorf("a link to a file is listed as %+v; want its target's size and time", f)
	}
	if f := got["file.json"]; !f.ModTime.Equal(mtime) {
		t.Errorf("file.json has time %v; want %v", f.ModTime, mtime)
	}
}

func TestSubfolderPath(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	plugintest.PutFile(t, srv.Root, "top.json", []byte("top"), mtime)
	plugintest.PutFile(t, srv.Root, "upload/in/a.json", []byte("a"), mtime)
	plugintest.PutFile(t, srv.Root, "upload/in/processed/a.json", []byte("older"), mtime)

	in := newInput(t, srv)
	in.Path = "upload/in"
	initInput(t, in)
	if got := listed(t, in); len(got) != 1 || got["a.json"].Size != 1 {
		t.Fatalf("List = %v; want a.json only", got)
	}
	moved, err := in.Move(t.Context(), "a.json", "processed")
	if err != nil || moved != "processed/a-1.json" {
		t.Fatalf("Move = %q, %v; want processed/a-1.json", moved, err)
	}
	if got := plugintest.Names(t, filepath.Join(srv.Root, "upload/in/processed")); !slices.Equal(got, []string{"a-1.json", "a.json"}) {
		t.Errorf("processed/ holds %v", got)
	}

	in = newInput(t, srv)
	in.Path = "/upload/missing"
	wantIn(t, "the error", initErr(t, in), "path /upload/missing: no such folder")
	in = newInput(t, srv)
	in.Path = "top.json"
	wantIn(t, "the error", initErr(t, in), "path top.json: not a folder")
}

func TestDeleteRefusesFolder(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	if err := os.Mkdir(filepath.Join(srv.Root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := initInput(t, newInput(t, srv))
	if err := in.Delete(t.Context(), "empty"); err == nil || errors.Is(err, plugins.ErrVanished) {
		t.Errorf("Delete of a folder: %v; want a refusal", err)
	}
	if got := plugintest.Names(t, srv.Root); !slices.Equal(got, []string{"empty"}) {
		t.Errorf("remote folder holds %v", got)
	}
}

func TestValidate(t *testing.T) {
	fp := "SHA256:" + strings.Repeat("A", 43)
	for _, c := range []struct {
		name string
		set  func(*sftp.SFTP)
		want string // "" for valid
	}{
		{"password", func(s *sftp.SFTP) {}, ""},
		{"key", func(s *sftp.SFTP) { s.Password, s.PrivateKey = "", "/k" }, ""},
		{"key and passphrase", func(s *sftp.SFTP) { s.PrivateKey, s.PrivateKeyPassphrase = "/k", "p" }, ""},
		{"fingerprint", func(s *sftp.SFTP) { s.HostKeyFingerprint = fp }, ""},
		{"fingerprint with padding", func(s *sftp.SFTP) { s.HostKeyFingerprint = fp + "=" }, ""},
		{"known_hosts", func(s *sftp.SFTP) { s.KnownHosts = "/kh" }, ""},
		{"insecure", func(s *sftp.SFTP) { s.InsecureIgnoreHostKey = true }, ""},
		{"ipv6", func(s *sftp.SFTP) { s.Host = "::1" }, ""},
		{"bracketed ipv6", func(s *sftp.SFTP) { s.Host = "[::1]" }, ""},
		{"no credentials", func(s *sftp.SFTP) { s.Password = "" }, "no credentials"},
		{"passphrase without key", func(s *sftp.SFTP) { s.PrivateKeyPassphrase = "p" }, "private_key_passphrase is set but private_key is not"},
		{"bad fingerprint", func(s *sftp.SFTP) { s.HostKeyFingerprint = "MD5:aa:bb" }, "is not a SHA256 fingerprint"},
		{"fingerprint and known_hosts", func(s *sftp.SFTP) { s.HostKeyFingerprint, s.KnownHosts = fp, "/kh" }, "exclude each other"},
		{"fingerprint and insecure", func(s *sftp.SFTP) { s.HostKeyFingerprint, s.InsecureIgnoreHostKey = fp, true }, "exclude each other"},
		{"known_hosts and insecure", func(s *sftp.SFTP) { s.KnownHosts, s.InsecureIgnoreHostKey = "/kh", true }, "exclude each other"},
		{"host with port", func(s *sftp.SFTP) { s.Host = "example.com:2222" }, "port goes in port"},
		{"host as URL", func(s *sftp.SFTP) { s.Host = "sftp://example.com" }, "give only a host name"},
		{"empty host", func(s *sftp.SFTP) { s.Host = "" }, "host is empty"},
		{"empty user", func(s *sftp.SFTP) { s.User = "" }, "user is empty"},
		{"port", func(s *sftp.SFTP) { s.Port = 70000 }, "not a TCP port"},
		{"timeout", func(s *sftp.SFTP) { s.Timeout = 0 }, "timeout must be positive"},
		{"retries", func(s *sftp.SFTP) { s.Retries = -1 }, "retries must not be negative"},
		{"empty path", func(s *sftp.SFTP) { s.Path = "" }, "path is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := sftp.New()
			s.Host, s.User, s.Password = "example.com", "u", "hunter2"
			c.set(s)
			err := s.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate: %v; want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Validate: %v; want an error containing %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestSample(t *testing.T) {
	spec, err := plugins.Default.Input("sftp")
	if err != nil {
		t.Fatal(err)
	}
	env := func(name string) (string, bool) {
		switch name {
		case "SFTP_PORT":
			return "2222", true
		case "SFTP_HOST", "SFTP_USER":
			return "sftp.example.com", true
		}
		return "/x/" + name, true
	}
	doc := "version: 1\nname: sample\ninputs:\n  " + strings.ReplaceAll(strings.TrimSpace(spec.Sample), "\n", "\n  ") + "\n"
	cfg, err := config.Parse("/etc/carpipe/c.yaml", []byte(doc), env)
	if err != nil {
		t.Fatal(err)
	}
	in := spec.New().(*sftp.SFTP)
	var common struct {
		OnSuccess string `yaml:"on_success"`
		OnFailure string `yaml:"on_failure"`
	}
	if err := cfg.Decode(cfg.Inputs[0], in, &common); err != nil {
		t.Fatal(err)
	}
	if err := in.Validate(); err != nil {
		t.Fatalf("the sample does not validate: %v", err)
	}
	if in.Port != 2222 || in.Path != "/upload" || in.Timeout != 30*time.Second || in.Retries != 3 {
		t.Errorf("decoded %+v", in)
	}
}

// inFolder returns an input on the folder "in" of srv's root, next to
// which the test puts what the input must never reach.
func inFolder(t *testing.T, srv *sftptest.Server) *sftp.SFTP {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(srv.Root, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := newInput(t, srv)
	in.Path = "in"
	return initInput(t, in)
}

// TestOpenRefusesFolderSwappedIn: what the open handle is decides, not
// what the listing said.
func TestOpenRefusesFolderSwappedIn(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	plugintest.PutFile(t, srv.Root, "a.json", []byte("{}"), mtime)
	in := initInput(t, newInput(t, srv))
	if got := listed(t, in); len(got) != 1 {
		t.Fatalf("List = %v", got)
	}
	os.Remove(filepath.Join(srv.Root, "a.json"))
	if err := os.Mkdir(filepath.Join(srv.Root, "a.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	rc, err := in.Open(t.Context(), "a.json")
	if err == nil {
		rc.Close()
		t.Fatal("Open of a folder succeeded")
	}
	if !errors.Is(err, plugins.ErrNotRegular) || !strings.Contains(err.Error(), "opening a.json: not a regular file (a folder)") {
		t.Errorf("Open: %v; want plugins.ErrNotRegular for a folder", err)
	}
}

// TestMoveRefusesLinkedTargets: a move folder, or a parent of it, that is
// a symbolic link on the server is refused: it would lead elsewhere.
func TestMoveRefusesLinkedTargets(t *testing.T) {
	for _, tc := range []struct{ name, dir, link, target string }{
		{"target out of path", "processed", "in/processed", "../elsewhere"},
		{"parent out of path", "done/2024", "in/done", "../elsewhere"},
		{"target inside path", "processed", "in/processed", "kept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sftptest.Start(t, t.TempDir())
			plugintest.PutFile(t, srv.Root, "in/a.json", []byte("payload"), mtime)
			for _, d := range []string{"elsewhere", "in/kept"} {
				if err := os.MkdirAll(filepath.Join(srv.Root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(tc.target, filepath.Join(srv.Root, tc.link)); err != nil {
				t.Fatal(err)
			}
			in := inFolder(t, srv)
			got, err := in.Move(t.Context(), "a.json", tc.dir)
			if err == nil {
				t.Fatalf("Move into %s = %q; want it refused", tc.dir, got)
			}
			wantLink := strings.TrimPrefix(tc.link, "in/") + " is a symbolic link"
			if errors.Is(err, plugins.ErrVanished) || !strings.Contains(err.Error(), wantLink) {
				t.Errorf("Move: %v; want a refusal saying %s", err, wantLink)
			}
			if data, err := os.ReadFile(filepath.Join(srv.Root, "in/a.json")); err != nil || string(data) != "payload" {
				t.Errorf("a.json: %q, %v; want it left in place", data, err)
			}
			for _, d := range []string{"elsewhere", "in/kept"} {
				if got := plugintest.Names(t, filepath.Join(srv.Root, d)); len(got) != 0 {
					t.Errorf("%s holds %v", d, got)
				}
			}
		})
	}
}

// TestListIgnoresHostileNames: a server listing names that climb out of
// path or hold slashes yields no path that reaches out of it.
func TestListIgnoresHostileNames(t *testing.T) {
	srv := sftptest.Start(t, t.TempDir())
	plugintest.PutFile(t, srv.Root, "in/real.json", []byte("real"), mtime)
	for _, p := range []string{"x.json", "y.json", "passwd"} {
		plugintest.PutFile(t, srv.Root, p, []byte("outside"), mtime)
	}
	srv.FakeNames("../x.json", "sub/../../x.json", "../y.json", "/etc/passwd", `..\x.json`, `a\..\..\x.json`)
	var logs plugintest.Buffer
	in := newInput(t, srv)
	in.Path = "in"
	if err := in.Init(t.Context(), plugins.Env{Name: "in", Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	got := listed(t, in)
	var paths []string
	for p := range got {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	// The library keeps the last part of a name: x.json, listed twice, is
	// left alone; y.json and passwd name nothing in path.
	if want := []string{"passwd", "real.json", "y.json"}; !slices.Equal(paths, want) {
		t.Errorf("List = %q; want %q", paths, want)
	}
	wantIn(t, "the log", logs.String(), "more than once", `name=a\..\..\x.json`)
	for _, p := range []string{"y.json", "passwd"} {
		if _, err := in.Open(t.Context(), p); !errors.Is(err, plugins.ErrVanished) {
			t.Errorf("Open(%q): %v; want plugins.ErrVanished", p, err)
		}
		if err := in.Delete(t.Context(), p); !errors.Is(err, plugins.ErrVanished) {
			t.Errorf("Delete(%q): %v; want plugins.ErrVanished", p, err)
		}
	}
	for _, p := range []string{"x.json", "y.json", "passwd"} {
		if data, err := os.ReadFile(filepath.Join(srv.Root, p)); err != nil || string(data) != "outside" {
			t.Errorf("%s beside path: %q, %v; want it untouched", p, data, err)
		}
	}
}
