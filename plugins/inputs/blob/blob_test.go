package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocloud "gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// root is the prefix the conformance runs use, so that the plugin's root is
// a folder inside the bucket, with a canary object next to it.
const root = "in/"

// store reaches a bucket behind the plugin's back, by full key.
type store struct {
	put    func(t *testing.T, key string, data []byte, mtime time.Time)
	get    func(t *testing.T, key string) ([]byte, bool)
	remove func(t *testing.T, key string)
	keys   func(t *testing.T) []string // every key of the bucket
}

// conformance runs the input suite with the plugin's root at "in/" of a
// fresh bucket from open, and checks after each subtest that nothing outside
// the root changed.
func conformance(t *testing.T, open func(t *testing.T) (*Blob, store), edit ...func(*plugintest.InputHarness)) {
	var s store
	h := plugintest.InputHarness{
		New: func(t *testing.T) plugins.Input {
			var b *Blob
			b, s = open(t)
			st := s
			st.put(t, "x", []byte("outside"), time.Now())
			t.Cleanup(func() {
				if data, ok := st.get(t, "x"); !ok || string(data) != "outside" {
					t.Errorf("the object next to the root: %q, %v; want it untouched", data, ok)
				}
				for _, k := range st.keys(t) {
					if k != "x" && !strings.HasPrefix(k, root) {
						t.Errorf("object %q created outside the root", k)
					}
				}
			})
			return b
		},
		Put:    func(t *testing.T, p string, data []byte, mtime time.Time) { s.put(t, root+p, data, mtime) },
		Get:    func(t *testing.T, p string) ([]byte, bool) { return s.get(t, root+p) },
		Remove: func(t *testing.T, p string) { s.remove(t, root+p) },
	}
	for _, e := range edit {
		e(&h)
	}
	plugintest.Input(t, h)
}

// initBlob initialises a plugin on url with the root "in/" and fast retries.
func initBlob(t *testing.T, url string, edit ...func(*Blob)) *Blob {
	t.Helper()
	b, err := tryInit(t, url, edit...)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return b
}

func tryInit(t *testing.T, url string, edit ...func(*Blob)) (*Blob, error) {
	t.Helper()
	b := New()
	b.URL, b.Prefix = url, root
	b.backoff = 10 * time.Millisecond
	for _, e := range edit {
		e(b)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if err := b.Init(t.Context(), plugins.Env{Name: "bucket", Logger: testLogger(t)}); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b, nil
}

// testLogger logs to the test, and keeps what it logged for checks.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// cdkStore reaches a bucket through gocloud itself (for mem://, whose bucket
// only the plugin's process can see). It does not use t.Context(), which ends
// before the cleanup checks run.
func cdkStore(bucket *gocloud.Bucket) store {
	return store{
		put: func(t *testing.T, key string, data []byte, _ time.Time) {
			if err := bucket.WriteAll(context.Background(), key, data, nil); err != nil {
				t.Fatal(err)
			}
		},
		get: func(t *testing.T, key string) ([]byte, bool) {
			data, err := bucket.ReadAll(context.Background(), key)
			if gcerrors.Code(err) == gcerrors.NotFound {
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
			return data, true
		},
		remove: func(t *testing.T, key string) {
			if err := bucket.Delete(context.Background(), key); err != nil {
				t.Fatal(err)
			}
		},
		keys: func(t *testing.T) []string {
			var out []string
			it := bucket.List(nil)
			for {
				o, err := it.Next(context.Background())
				if err == io.EOF {
					return out
				}
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, o.Key)
			}
		},
	}
}

func TestConformanceMem(t *testing.T) {
	conformance(t, func(t *testing.T) (*Blob, store) {
		b := initBlob(t, "mem://")
		return b, cdkStore(b.bucket)
	})
}

// TestConformanceFile runs the suite on a file:// bucket whose root is the
// bucket's top (no prefix), with the local-folder harness.
func TestConformanceFile(t *testing.T) {
	plugintest.Input(t, plugintest.LocalHarness(func(t *testing.T, root string) plugins.Input {
		return initBlob(t, "file://"+filepath.ToSlash(root), func(b *Blob) { b.Prefix = "" })
	}))
}

// TestFileListsExactNames: in a file:// bucket, a file named with an escape
// sequence gocloud would decode is left alone, and so are links, even to
// files, and named pipes.
func TestFileListsExactNames(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"x__0x41__.json": "encoded", "xA.json": "plain", `c\d.json`: "backslash"} {
		plugintest.PutFile(t, dir, name, []byte(data), time.Now())
	}
	secret := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(secret, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("xA.json", filepath.Join(dir, "inside.json")); err != nil {
		t.Fatal(err)
	}
	b := initBlob(t, "file://"+filepath.ToSlash(dir), func(b *Blob) { b.Prefix = "" })
	got := listed(t, b)
	slices.Sort(got)
	if want := []string{`c\d.json`, "xA.json"}; !slices.Equal(got, want) {
		t.Errorf("List: %q; want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		url, prefix string
		edit        func(*Blob)
		want        string
	}{
		{url: "", want: "url is required"},
		{url: "bucket", want: "no scheme"},
		{url: "ftp://bucket", want: `unknown scheme "ftp"`},
		{url: "file://relative/path", want: "absolute path"},
		{url: "file://./inbox", want: "absolute path"},
		{url: "s3://AKIAEXAMPLE:hunter2secret@bucket", want: "credentials do not go in the URL"},
		{url: "mem://", prefix: "../up/", want: "plain relative key prefix"},
		{url: "mem://", prefix: "/abs/", want: "plain relative key prefix"},
		{url: "mem://", prefix: "a//b/", want: "plain relative key prefix"},
		{url: "mem://", prefix: "./a/", want: "plain relative key prefix"},
		{url: "mem://", edit: func(b *Blob) { b.Timeout = 0 }, want: "timeout must be positive"},
		{url: "mem://", edit: func(b *Blob) { b.Retries = -1 }, want: "retries must be between"},
		{url: "mem://", edit: func(b *Blob) { b.Retries = 100 }, want: "retries must be between"},
	} {
		b := New()
		b.URL, b.Prefix = c.url, c.prefix
		if c.edit != nil {
			c.edit(b)
		}
		err := b.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate of url %q, prefix %q: %v; want an error with %q", c.url, c.prefix, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("Validate of url %q: the error shows the password: %v", c.url, err)
		}
	}
	for _, c := range []struct{ prefix, want string }{
		{"", ""}, {"incoming", "incoming/"}, {"incoming/", "incoming/"}, {"a/b/", "a/b/"},
	} {
		b := New()
		b.URL, b.Prefix = "mem://", c.prefix
		if err := b.Validate(); err != nil || b.prefix != c.want {
			t.Errorf("prefix %q: %q, %v; want %q", c.prefix, b.prefix, err, c.want)
		}
	}
}

// TestListSkipsEscapingKeys puts keys that try to leave the root into the
// bucket behind the plugin's back. gocloud escapes "../" when writing and
// unescapes it when listing, so these come back from the listing verbatim.
func TestListSkipsEscapingKeys(t *testing.T) {
	var logs plugintest.Buffer
	b := New()
	b.URL, b.Prefix = "mem://", root
	if err := b.Init(t.Context(), plugins.Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := cdkStore(b.bucket)
	for _, k := range []string{"../evil.json", "a/../../b.json", "..", "..\\evil.json", "a\\..\\..\\b.json", "/abs.json", "sub\\x.json", "ok.json"} {
		s.put(t, root+k, []byte("x"), time.Now())
	}
	got := listed(t, b)
	// A backslash is a plain character, unless it would make a way up on
	// a server where it separates folders.
	if !slices.Equal(got, []string{"ok.json", `sub\x.json`}) {
		t.Errorf("List: %q; want ok.json and sub\\x.json", got)
	}
	if !strings.Contains(logs.String(), `in/..\evil.json`) {
		t.Errorf("a skipped key was not logged:\n%s", logs.String())
	}
	// Nothing listed could be handed back to escape either.
	for _, p := range []string{"../evil.json", "a/../../b.json", "..\\evil.json"} {
		if _, err := b.Open(t.Context(), p); err == nil || errors.Is(err, plugins.ErrVanished) {
			t.Errorf("Open(%q): %v; want a refusal", p, err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2024-01-01&ss=b&srt=co&sp=rl&sig=c2lnbmF0dXJl%3D")
	redact := newRedacter("azblob://c?domain=example.net&account_key=urlsecret123&kmskeyid=arn:kms:1")
	for _, c := range []struct{ in, want string }{
		{`Get "https://acct.blob.core.windows.net/c?comp=list&sig=abcdef%3D&sv=1": EOF`, `Get "https://acct.blob.core.windows.net/c?comp=list&sig=***&sv=1": EOF`},
		{"open bucket azblob://c?domain=example.net&account_key=urlsecret123&kmskeyid=arn:kms:1: bad", "open bucket azblob://c?domain=example.net&account_key=***&kmskeyid=arn:kms:1: bad"},
		{"the key urlsecret123 alone", "the key *** alone"},
		{"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0;EndpointSuffix=x", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***;EndpointSuffix=x"},
		{"dial https://user:pa55word@host/x", "dial https://user:***@host/x"},
		{"signature with wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY failed", "signature with *** failed"},
		{"X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok", "X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***"},
		{"private_key_path=/etc/key.pem&access_id=me", "private_key_path=/etc/key.pem&access_id=me"},
	} {
		if got := redact(c.in); got != c.want {
			t.Errorf("redact(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestURLSecretsNeverInErrors opens URLs carrying credentials in parameters
// no driver accepts: gocloud's error quotes the whole URL.
func TestURLSecretsNeverInErrors(t *testing.T) {
	for _, url := range []string{
		"mem://?secret=topsecret1",
		"file:///nonexistent/folder?password=topsecret2",
		"file:///nonexistent/folder?x=1&token=topsecret3",
	} {
		_, err := tryInit(t, url)
		if err == nil {
			t.Errorf("Init of %s succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("Init of %s: the error shows the secret: %v", url, err)
		}
		t.Log(err)
	}
}

func TestTransient(t *testing.T) {
	ctx := t.Context()
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{ctx, context.DeadlineExceeded, true},
		{ctx, io.ErrUnexpectedEOF, true},
		{ctx, statusError(503), true},
		{ctx, statusError(500), true},
		{ctx, statusError(429), true},
		{ctx, statusError(403), false},
		{ctx, statusError(404), false},
		{ctx, errors.New("some answer"), false},
		{done, context.DeadlineExceeded, false}, // the run ends: no retry
		{done, statusError(503), false},
	} {
		if got := transient(c.ctx, c.err); got != c.want {
			t.Errorf("transient(%v) = %v; want %v", c.err, got, c.want)
		}
	}
}

type statusError int

func (e statusError) Error() string       { return fmt.Sprintf("HTTP status %d", int(e)) }
func (e statusError) HTTPStatusCode() int { return int(e) }

func TestRetryIsBounded(t *testing.T) {
	b := New()
	b.Retries, b.backoff, b.log, b.redact = 2, time.Millisecond, slog.New(slog.DiscardHandler), func(s string) string { return s }
	tries := 0
	err := b.retry(t.Context(), "test", func(context.Context) error { tries++; return statusError(503) })
	if err == nil || tries != 3 {
		t.Errorf("always 503: %d tries, %v; want 3 and an error", tries, err)
	}
	tries = 0
	err = b.retry(t.Context(), "test", func(context.Context) error { tries++; return statusError(403) })
	if err == nil || tries != 1 {
		t.Errorf("403: %d tries, %v; want 1 and an error", tries, err)
	}
	tries = 0
	err = b.retry(t.Context(), "test", func(context.Context) error {
		tries++
		if tries < 3 {
			return io.ErrUnexpectedEOF
		}
		return nil
	})
	if err != nil || tries != 3 {
		t.Errorf("two resets then success: %d tries, %v; want 3 and no error", tries, err)
	}
}

func TestPlainHTTPHost(t *testing.T) {
	for url, want := range map[string]string{
		"s3://b?endpoint=http://minio.lan:9000&use_path_style=true": "minio.lan",
		"s3://b?endpoint=minio.lan:9000&disable_https=true":         "minio.lan",
		"s3://b?endpoint=https://minio.lan:9000":                    "",
		"s3://b?endpoint=http://127.0.0.1:9000":                     "",
		"s3://b?endpoint=http://localhost:9000":                     "",
		"s3://b?region=eu-west-1":                                   "",
		"azblob://c?protocol=http&domain=blob.lan:10000":            "blob.lan",
		"azblob://c?protocol=http&domain=127.0.0.1:10000":           "",
		"gs://b": "",
	} {
		if got := plainHTTPHost(url); got != want {
			t.Errorf("plainHTTPHost(%q) = %q; want %q", url, got, want)
		}
	}
}
