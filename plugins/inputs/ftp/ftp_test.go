package ftp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/inputs/ftp"
	"github.com/carpipe/carpipe/plugins/inputs/ftp/ftptest"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// root is the input's folder on the test servers; "/x" beside it is the
// target of the suite's escapes.
const root = "/in"

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ftptest.Options
	}{
		{"plain", ftptest.Options{}},
		{"explicit TLS", ftptest.Options{TLS: ftp.TLSExplicit}},
		{"implicit TLS", ftptest.Options{TLS: ftp.TLSImplicit}},
		// Servers without MLSD: listing falls back to LIST, existence
		// checks to SIZE.
		{"LIST only", ftptest.Options{DisableMLSD: true, DisableMLST: true}},
		{"MLST without MLSD", ftptest.Options{DisableMLSD: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s *ftptest.Server // of the latest New; the suite runs one subtest at a time
			plugintest.Input(t, plugintest.InputHarness{
				New: func(t *testing.T) plugins.Input {
					s = start(t, tc.opts)
					guardOutside(t, s)
					return initFTP(t, newInput(s), nil)
				},
				Put: func(t *testing.T, p string, data []byte, mtime time.Time) {
					s.Put(t, path.Join(root, p), data, mtime)
				},
				Get: func(t *testing.T, p string) ([]byte, bool) {
					return s.Get(t, path.Join(root, p))
				},
				Remove: func(t *testing.T, p string) {
					if err := s.FS.Remove(path.Join(root, p)); err != nil {
						t.Fatal(err)
					}
				},
			})
		})
	}
}

// start starts a server holding an empty root.
func start(t *testing.T, opts ftptest.Options) *ftptest.Server {
	t.Helper()
	s := ftptest.Start(t, opts)
	if err := s.FS.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// guardOutside puts a file next to the root and checks at cleanup that
// nothing outside the root changed.
func guardOutside(t *testing.T, s *ftptest.Server) {
	t.Helper()
	s.Put(t, "/x", []byte("outside"), mtime)
	t.Cleanup(func() {
		if data, ok := s.Get(t, "/x"); !ok || string(data) != "outside" {
			t.Errorf("the file next to the root: %q, %v; want it untouched", data, ok)
		}
		if got := s.Names(t, "/"); !slices.Equal(got, []string{"in", "x"}) {
			t.Errorf("next to the root: %v; want only [in x]", got)
		}
	})
}

var mtime = time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)

// newInput returns an input on s's root, with its defaults, trusting s's
// certificate when it has TLS.
func newInput(s *ftptest.Server) *ftp.FTP {
	f := ftp.New()
	f.Host = "127.0.0.1"
	f.Port = s.Port
	f.User, f.Password = ftptest.User, ftptest.Password
	f.Path = root
	f.Timeout = 5 * time.Second
	f.TLS = s.TLS()
	f.CAFile = s.CAFile
	return f
}

// initFTP validates and inits f, logging to logs when not nil, and closes
// it at cleanup.
func initFTP(t *testing.T, f *ftp.FTP, logs *plugintest.Buffer) *ftp.FTP {
	t.Helper()
	if err := initErr(t, f, logs); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return f
}

func initErr(t *testing.T, f *ftp.FTP, logs *plugintest.Buffer) error {
	t.Helper()
	if err := f.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	var w io.Writer = io.Discard
	if logs != nil {
		w = logs
	}
	err := f.Init(t.Context(), plugins.Env{Name: "ftp", Logger: slog.New(slog.NewTextHandler(w, nil))})
	t.Cleanup(func() { f.Close() })
	return err
}

func read(t *testing.T, f *ftp.FTP, p string) []byte {
	t.Helper()
	rc, err := f.Open(t.Context(), p)
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

func listed(t *testing.T, f *ftp.FTP) map[string]plugins.File {
	t.Helper()
	files, err := f.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	out := map[string]plugins.File{}
	for _, fl := range files {
		out[fl.Path] = fl
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestWrongPasswordFailsInit(t *testing.T) {
	for _, mode := range []string{ftp.TLSNone, ftp.TLSExplicit} {
		t.Run(mode, func(t *testing.T) {
			s := start(t, ftptest.Options{TLS: mode})
			f := newInput(s)
			const wrong = "Wr0ng-password-xyz"
			f.Password = wrong
			err := initErr(t, f, nil)
			if err == nil {
				t.Fatal("Init with a wrong password succeeded")
			}
			// The test server echoes the refused password in its reply.
			if strings.Contains(err.Error(), wrong) {
				t.Errorf("the error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), "530") {
				t.Errorf("error %q does not give the server's refusal", err)
			}
			// A refusal is final: no retries.
			if n := s.Connects(); n != 1 {
				t.Errorf("%d connections; want 1 (a 530 is not retried)", n)
			}
		})
	}
}

func TestPlainPasswordWarning(t *testing.T) {
	s := start(t, ftptest.Options{})
	var logs plugintest.Buffer
	initFTP(t, newInput(s), &logs)
	if !strings.Contains(logs.String(), "in clear") {
		t.Errorf("no warning about a password sent in clear:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), ftptest.Password) {
		t.Errorf("the logs show the password:\n%s", logs.String())
	}

	// Over TLS, no warning.
	s = start(t, ftptest.Options{TLS: ftp.TLSExplicit})
	logs = plugintest.Buffer{}
	initFTP(t, newInput(s), &logs)
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warning over TLS:\n%s", logs.String())
	}
}

func TestTLSVerification(t *testing.T) {
	for _, mode := range []string{ftp.TLSExplicit, ftp.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			s := start(t, ftptest.Options{TLS: mode})
			s.Put(t, root+"/a.json", []byte("{}"), mtime)

			// Not trusted by default.
			f := newInput(s)
			f.CAFile = ""
			err := initErr(t, f, nil)
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("Init with an untrusted certificate: %v; want a certificate error", err)
			}
			if n := s.Connects(); n > 1 {
				t.Errorf("%d connections; want 1 (a refused certificate is not retried)", n)
			}

			// Accepted when told to skip verification, with a warning.
			f = newInput(s)
			f.CAFile = ""
			f.InsecureSkipVerify = true
			var logs plugintest.Buffer
			initFTP(t, f, &logs)
			if _, ok := listed(t, f)["a.json"]; !ok {
				t.Error("List over unverified TLS misses a.json")
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "insecure_skip_verify") {
				t.Errorf("no warning about insecure_skip_verify:\n%s", logs.String())
			}

			// The certificate must hold server_name.
			f = newInput(s)
			f.ServerName = "other.test"
			if err := initErr(t, f, nil); err == nil || !strings.Contains(err.Error(), "other.test") {
				t.Errorf("Init with server_name other.test: %v; want a name mismatch", err)
			}
			f = newInput(s)
			f.ServerName = ftptest.DNSName
			initFTP(t, f, nil)
			if got := read(t, f, "a.json"); string(got) != "{}" {
				t.Errorf("read %q over TLS verified for %s", got, ftptest.DNSName)
			}
		})
	}
}

// TestPlainClientOnTLSServer: a server that requires TLS refuses a client
// that does not ask for it, so the TLS tests really go over TLS.
func TestPlainClientOnTLSServer(t *testing.T) {
	s := start(t, ftptest.Options{TLS: ftp.TLSExplicit})
	f := newInput(s)
	f.TLS, f.CAFile = ftp.TLSNone, ""
	if err := initErr(t, f, nil); err == nil || !strings.Contains(err.Error(), "TLS is required") {
		t.Fatalf("a plain login to a server requiring TLS: %v; want its refusal", err)
	}
}

// TestRetries: a server that drops every connection is tried again
// retries times, with a warning each time, and then fails Init.
func TestRetries(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	f := ftp.New()
	f.Host, f.Port, f.Retries = "127.0.0.1", l.Addr().(*net.TCPAddr).Port, 2
	var logs plugintest.Buffer
	if err := initErr(t, f, &logs); err == nil {
		t.Fatal("Init on a server that drops connections succeeded")
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("%d connections; want 3 (one try and two retries)", n)
	}
	if n := strings.Count(logs.String(), "trying again"); n != 2 {
		t.Errorf("%d retry warnings; want 2:\n%s", n, logs.String())
	}
}

// TestReconnect: connections the server closed between calls are replaced
// on the next call, even with retries 0.
func TestReconnect(t *testing.T) {
	for _, mode := range []string{ftp.TLSNone, ftp.TLSExplicit} {
		t.Run(mode, func(t *testing.T) {
			s := start(t, ftptest.Options{TLS: mode})
			guardOutside(t, s)
			s.Put(t, root+"/a.json", []byte("aaa"), mtime)
			s.Put(t, root+"/b.json", []byte("bbb"), mtime)
			f := newInput(s)
			f.Retries = 0
			initFTP(t, f, nil)
			// Two idle connections in the pool.
			ra, err := f.Open(t.Context(), "a.json")
			if err != nil {
				t.Fatal(err)
			}
			if len(listed(t, f)) != 2 {
				t.Fatal("List before the drop")
			}
			io.ReadAll(ra)
			ra.Close()

			before := s.Connects()
			s.DropClients()
			if got := listed(t, f); len(got) != 2 {
				t.Errorf("List after the server dropped the connections: %v", got)
			}
			if s.Connects() == before {
				t.Error("no new connection after the drop")
			}
			s.DropClients()
			if got := read(t, f, "b.json"); string(got) != "bbb" {
				t.Errorf("Open after a drop read %q", got)
			}
			s.DropClients()
			if got, err := f.Move(t.Context(), "a.json", "processed"); err != nil || got != "processed/a.json" {
				t.Errorf("Move after a drop = %q, %v", got, err)
			}
			s.DropClients()
			if err := f.Delete(t.Context(), "b.json"); err != nil {
				t.Errorf("Delete after a drop: %v", err)
			}
		})
	}
}

// TestConcurrentCalls: the engine hashes one file while it loads another
// and lists or moves meanwhile; FTP runs one transfer per connection.
func TestConcurrentCalls(t *testing.T) {
	s := start(t, ftptest.Options{TLS: ftp.TLSExplicit})
	a, b := randomBytes(1<<20, 1), randomBytes(1<<20, 2)
	s.Put(t, root+"/a.bin", a, mtime)
	s.Put(t, root+"/b.bin", b, mtime)
	s.Put(t, root+"/c.json", []byte("c"), mtime)
	s.Put(t, root+"/d.json", []byte("d"), mtime)
	f := initFTP(t, newInput(s), nil)

	ra, err := f.Open(t.Context(), "a.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	head := make([]byte, 1000)
	if _, err := io.ReadFull(ra, head); err != nil {
		t.Fatal(err)
	}
	rb, err := f.Open(t.Context(), "b.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	// Both transfers are open: the other calls still work.
	if got := listed(t, f); len(got) != 4 {
		t.Errorf("List during two transfers: %v", got)
	}
	if got, err := f.Move(t.Context(), "c.json", "processed"); err != nil || got != "processed/c.json" {
		t.Errorf("Move during two transfers = %q, %v", got, err)
	}
	if err := f.Delete(t.Context(), "d.json"); err != nil {
		t.Errorf("Delete during two transfers: %v", err)
	}
	var wg sync.WaitGroup
	var gotA, gotB []byte
	var errA, errB error
	wg.Go(func() { gotA, errA = io.ReadAll(ra) })
	wg.Go(func() { gotB, errB = io.ReadAll(rb) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("reading: %v, %v", errA, errB)
	}
	if !bytes.Equal(append(head, gotA...), a) || !bytes.Equal(gotB, b) {
		t.Error("concurrent transfers returned wrong bytes")
	}
}

// TestHalfRead: closing a transfer before its end leaves no connection out
// of step. A short rest is drained so that the connection is kept.
func TestHalfRead(t *testing.T) {
	for _, mode := range []string{ftp.TLSNone, ftp.TLSExplicit} {
		t.Run(mode, func(t *testing.T) {
			s := start(t, ftptest.Options{TLS: mode})
			big, small := randomBytes(4<<20, 3), []byte(`{"a": 1}`+"\n\n")
			s.Put(t, root+"/big.bin", big, mtime)
			s.Put(t, root+"/small.json", small, mtime)
			s.Put(t, root+"/other.json", []byte("other"), mtime)
			f := initFTP(t, newInput(s), nil)

			for range 3 {
				rc, err := f.Open(t.Context(), "small.json")
				if err != nil {
					t.Fatal(err)
				}
				one := make([]byte, 1)
				if _, err := io.ReadFull(rc, one); err != nil {
					t.Fatal(err)
				}
				if err := rc.Close(); err != nil {
					t.Errorf("Close of a half-read file: %v", err)
				}
			}
			if got := read(t, f, "other.json"); string(got) != "other" {
				t.Errorf("after half reads: %q", got)
			}
			if n := s.Connects(); n != 1 {
				t.Errorf("%d connections for sequential calls; want 1 (half-read small files keep the connection)", n)
			}

			rc, err := f.Open(t.Context(), "big.bin")
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 10)
			if _, err := io.ReadFull(rc, head); err != nil {
				t.Fatal(err)
			}
			if err := rc.Close(); err != nil {
				t.Errorf("Close of a half-read file: %v", err)
			}
			if got := listed(t, f); len(got) != 3 {
				t.Errorf("List after a half-read transfer: %v", got)
			}
			if got := read(t, f, "big.bin"); !bytes.Equal(got, big) {
				t.Errorf("big.bin read again: %d bytes, want %d", len(got), len(big))
			}
			if got := read(t, f, "other.json"); string(got) != "other" {
				t.Errorf("after a half-read transfer: %q", got)
			}
		})
	}
}

// gatedFs serves the first RETR of one file up to a byte offset, then
// holds until the gate opens.
type gatedFs struct {
	afero.Fs
	name  string
	at    int64
	gate  chan struct{}
	first atomic.Bool
}

func (g *gatedFs) wrap(fs afero.Fs) afero.Fs {
	g.Fs = fs
	return g
}

func (g *gatedFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	f, err := g.Fs.OpenFile(name, flag, perm)
	if err != nil || name != g.name || g.first.Swap(true) {
		return f, err
	}
	return &gatedFile{File: f, g: g}, nil
}

type gatedFile struct {
	afero.File
	g   *gatedFs
	off int64
}

func (f *gatedFile) Read(p []byte) (int, error) {
	if f.off >= f.g.at {
		<-f.g.gate
	} else if rest := f.g.at - f.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := f.File.Read(p)
	f.off += int64(n)
	return n, err
}

// TestResume: a transfer the server breaks goes on from where it stopped
// on a new connection (REST), and the bytes come out whole.
func TestResume(t *testing.T) {
	for _, mode := range []string{ftp.TLSNone, ftp.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			const at = 300_000
			g := &gatedFs{name: root + "/big.bin", at: at, gate: make(chan struct{})}
			s := start(t, ftptest.Options{TLS: mode, Wrap: g.wrap})
			defer close(g.gate)
			data := randomBytes(1<<20, 4)
			s.Put(t, root+"/big.bin", data, mtime)
			var logs plugintest.Buffer
			f := initFTP(t, newInput(s), &logs)

			rc, err := f.Open(t.Context(), "big.bin")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			head := make([]byte, at)
			if _, err := io.ReadFull(rc, head); err != nil {
				t.Fatal(err)
			}
			s.DropClients() // the server stops in the middle of the transfer
			rest, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("reading after the break: %v", err)
			}
			if got := append(head, rest...); !bytes.Equal(got, data) {
				t.Errorf("read %d bytes; want the %d bytes of the file", len(got), len(data))
			}
			if !strings.Contains(logs.String(), "resuming") || !strings.Contains(logs.String(), "offset=300000") {
				t.Errorf("no resume at offset 300000 logged:\n%s", logs.String())
			}
		})
	}
}

// TestCancel: a cancelled context ends a transfer that waits on the server.
func TestCancel(t *testing.T) {
	const at = 1000
	g := &gatedFs{name: root + "/big.bin", at: at, gate: make(chan struct{})}
	s := start(t, ftptest.Options{Wrap: g.wrap})
	defer close(g.gate)
	s.Put(t, root+"/big.bin", randomBytes(100_000, 5), mtime)
	in := newInput(s)
	in.Timeout = time.Minute // only the cancel may end the wait
	f := initFTP(t, in, nil)

	ctx, cancel := context.WithCancel(t.Context())
	rc, err := f.Open(ctx, "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, at)); err != nil {
		t.Fatal(err)
	}
	cancel()
	begin := time.Now()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Errorf("reading after cancel: %v; want context.Canceled", err)
	}
	if d := time.Since(begin); d > 20*time.Second {
		t.Errorf("the read ended %v after the cancel, not at once", d)
	}
	// The input still works.
	if got := listed(t, f); len(got) != 1 {
		t.Errorf("List after a cancelled transfer: %v", got)
	}
}

// TestRefusedIsNotVanished: a file the server refuses to touch is an
// error, not a vanished file the engine would skip.
func TestRefusedIsNotVanished(t *testing.T) {
	s := start(t, ftptest.Options{Wrap: afero.NewReadOnlyFs})
	s.Put(t, root+"/a.json", []byte("a"), mtime)
	f := initFTP(t, newInput(s), nil)
	f.Retries = 0
	if err := f.Delete(t.Context(), "a.json"); err == nil || errors.Is(err, plugins.ErrVanished) {
		t.Errorf("Delete on a read-only server: %v; want a refusal", err)
	}
	if got, err := f.Move(t.Context(), "a.json", "processed"); err == nil || errors.Is(err, plugins.ErrVanished) {
		t.Errorf("Move on a read-only server = %q, %v; want a refusal", got, err)
	}
	if data, ok := s.Get(t, root+"/a.json"); !ok || string(data) != "a" {
		t.Errorf("a.json: %q, %v", data, ok)
	}
}

// TestMoveFreeNames pins the documented naming: -1, -2, … before the extension.
func TestMoveFreeNames(t *testing.T) {
	for _, opts := range []ftptest.Options{{}, {DisableMLSD: true, DisableMLST: true}} {
		s := start(t, opts)
		f := initFTP(t, newInput(s), nil)
		s.Put(t, root+"/processed/r.json", []byte("0"), mtime)
		for _, want := range []string{"processed/r-1.json", "processed/r-2.json"} {
			s.Put(t, root+"/r.json", []byte(want), mtime)
			got, err := f.Move(t.Context(), "r.json", "processed")
			if err != nil || got != want {
				t.Errorf("Move = %q, %v; want %q", got, err, want)
			}
			if data, _ := s.Get(t, root+"/"+want); string(data) != want {
				t.Errorf("%s holds %q", want, data)
			}
		}
		if got := s.Names(t, root+"/processed"); !slices.Equal(got, []string{"r-1.json", "r-2.json", "r.json"}) {
			t.Errorf("processed/ holds %v", got)
		}
	}
}

func TestListDetails(t *testing.T) {
	for _, opts := range []ftptest.Options{{}, {DisableMLSD: true, DisableMLST: true}} {
		s := start(t, opts)
		s.Put(t, root+"/a.json", []byte("12345"), mtime)
		s.Put(t, root+"/.part.json", []byte("x"), mtime)
		s.Put(t, root+"/sub/b.json", []byte("x"), mtime)
		f := initFTP(t, newInput(s), nil)
		got := listed(t, f)
		if len(got) != 1 || got["a.json"].Size != 5 {
			t.Fatalf("MLSD %v: List = %v; want a.json of 5 bytes", !opts.DisableMLSD, got)
		}
		// MLSD gives the time to the second; LIST of an old file to the day.
		want := mtime
		if opts.DisableMLSD {
			want = mtime.Truncate(24 * time.Hour)
		}
		if mt := got["a.json"].ModTime; !mt.Equal(want) {
			t.Errorf("MLSD %v: ModTime %v; want %v", !opts.DisableMLSD, mt, want)
		}
	}
}

func TestPaths(t *testing.T) {
	s := start(t, ftptest.Options{})
	s.Put(t, root+"/a.json", []byte("a"), mtime)
	s.Put(t, "/top.json", []byte("top"), mtime)

	// A relative path starts at the login folder, here "/".
	f := newInput(s)
	f.Path = "in"
	initFTP(t, f, nil)
	if got := listed(t, f); len(got) != 1 {
		t.Errorf("path in: List = %v; want a.json", got)
	}
	// The default is "/".
	f = newInput(s)
	f.Path = ftp.New().Path
	initFTP(t, f, nil)
	if got := listed(t, f); len(got) != 1 || got["top.json"].Size != 3 {
		t.Errorf("path /: List = %v; want top.json", got)
	}
	// A missing folder or a file fails Init.
	for _, p := range []string{"/missing", root + "/a.json"} {
		f = newInput(s)
		f.Path = p
		if err := initErr(t, f, nil); err == nil {
			t.Errorf("Init with path %s succeeded", p)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(f *ftp.FTP)
		want string
	}{
		{"no host", func(f *ftp.FTP) { f.Host = "" }, "host"},
		{"URL host", func(f *ftp.FTP) { f.Host = "ftp://example.com" }, "not a URL"},
		{"host with port", func(f *ftp.FTP) { f.Host = "example.com:21" }, "port"},
		{"port", func(f *ftp.FTP) { f.Port = 70000 }, "port"},
		{"tls", func(f *ftp.FTP) { f.TLS = "starttls" }, "tls"},
		{"ca_file without tls", func(f *ftp.FTP) { f.CAFile = "/ca.pem" }, "ca_file"},
		{"insecure without tls", func(f *ftp.FTP) { f.InsecureSkipVerify = true }, "insecure_skip_verify"},
		{"timeout", func(f *ftp.FTP) { f.Timeout = 0 }, "timeout"},
		{"retries", func(f *ftp.FTP) { f.Retries = -1 }, "retries"},
		{"password line break", func(f *ftp.FTP) { f.Password = "se\ncret" }, "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ftp.New()
			f.Host = "ftp.example.com"
			tc.set(f)
			err := f.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v; want an error about %s", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "se\ncret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	f := ftp.New()
	f.Host = "::1"
	if err := f.Validate(); err != nil {
		t.Errorf("IPv6 host: %v", err)
	}
}

func TestSample(t *testing.T) {
	spec, err := plugins.Default.Input("ftp")
	if err != nil {
		t.Fatal(err)
	}
	env := func(name string) (string, bool) { return "x-" + strings.ToLower(name), true }
	doc := "version: 1\nname: sample\ninputs:\n  " + strings.ReplaceAll(strings.TrimSpace(spec.Sample), "\n", "\n  ") + "\n"
	cfg, err := config.Parse("/etc/carpipe/c.yaml", []byte(doc), env)
	if err != nil {
		t.Fatal(err)
	}
	in := spec.New().(*ftp.FTP)
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
	if in.Host != "x-ftp_host" || in.TLS != ftp.TLSExplicit || in.Path != "/inbox" || in.Timeout != 30*time.Second || in.Retries != 3 {
		t.Errorf("decoded %+v", in)
	}
}

// TestMoveToRoot: "." names the root itself.
func TestMoveToRoot(t *testing.T) {
	s := start(t, ftptest.Options{})
	s.Put(t, root+"/a.json", []byte("top"), mtime)
	s.Put(t, root+"/sub/a.json", []byte("sub"), mtime)
	f := initFTP(t, newInput(s), nil)
	if got, err := f.Move(t.Context(), "a.json", "."); err != nil || got != "a.json" {
		t.Errorf(`Move("a.json", ".") = %q, %v; want it left in place`, got, err)
	}
	if got, err := f.Move(t.Context(), "sub/a.json", "."); err != nil || got != "a-1.json" {
		t.Errorf(`Move("sub/a.json", ".") = %q, %v; want "a-1.json"`, got, err)
	}
	if data, _ := s.Get(t, root+"/a-1.json"); string(data) != "sub" {
		t.Errorf("a-1.json holds %q", data)
	}
}
