//go:build !nocloud

package blob

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/carpipe/carpipe/plugins"
)

// testS3Secret is the secret key the S3 tests sign with; it must never
// appear in an error.
const testS3Secret = "carpipe-test-secret-Zq8YtV3x"

var bucketCount atomic.Int64

// s3Server is gofakes3 over HTTP on 127.0.0.1, reached through the real AWS
// SDK. A hook may answer a request instead of it, to break the protocol's
// happy path.
type s3Server struct {
	backend *s3mem.Backend
	url     string

	mu       sync.Mutex
	hook     func(w http.ResponseWriter, r *http.Request) bool
	requests []string // "METHOD /path?query range"
}

func newS3(t *testing.T) *s3Server {
	t.Helper()
	S3Env(t)
	s := &s3Server{backend: s3mem.New()}
	h := gofakes3.New(s.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Range"))
		hook := s.hook
		s.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// S3Env gives the AWS SDK static test credentials and keeps it away from
// the machine's own AWS config.
func S3Env(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "carpipe-test-id",
		"AWS_SECRET_ACCESS_KEY":       testS3Secret,
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_MAX_ATTEMPTS", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func (s *s3Server) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
	s.requests = nil
}

func (s *s3Server) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// newBucket creates an empty bucket and returns its name and URL.
func (s *s3Server) newBucket(t *testing.T) (string, string) {
	t.Helper()
	name := fmt.Sprintf("bucket%d", bucketCount.Add(1))
	if err := s.backend.CreateBucket(name); err != nil {
		t.Fatal(err)
	}
	return name, fmt.Sprintf("s3://%s?region=us-east-1&endpoint=%s&use_path_style=true", name, s.url)
}

// store reaches a bucket through gofakes3's backend, with raw keys.
func (s *s3Server) store(bucket string) store {
	return store{
		put: func(t *testing.T, key string, data []byte, _ time.Time) {
			if _, err := s.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
				t.Fatal(err)
			}
		},
		get: func(t *testing.T, key string) ([]byte, bool) {
			obj, err := s.backend.GetObject(bucket, key, nil)
			if gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Contents.Close()
			data, err := io.ReadAll(obj.Contents)
			if err != nil {
				t.Fatal(err)
			}
			return data, true
		},
		remove: func(t *testing.T, key string) {
			if _, err := s.backend.DeleteObject(bucket, key); err != nil {
				t.Fatal(err)
			}
		},
		keys: func(t *testing.T) []string {
			list, err := s.backend.ListBucket(bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, c := range list.Contents {
				out = append(out, c.Key)
			}
			return out
		},
	}
}

func TestConformanceS3(t *testing.T) {
	s := newS3(t)
	conformance(t, func(t *testing.T) (*Blob, store) {
		name, url := s.newBucket(t)
		return initBlob(t, url), s.store(name)
	})
}

// TestS3ListPages checks that a listing over S3's page size (1000) asks for
// every page.
func TestS3ListPages(t *testing.T) {
	s := newS3(t)
	name, url := s.newBucket(t)
	st := s.store(name)
	for i := range 2100 {
		st.put(t, fmt.Sprintf("%sf%04d.json", root, i), []byte("x"), time.Now())
	}
	st.put(t, root+"sub/deep.json", []byte("x"), time.Now())
	b := initBlob(t, url)
	s.setHook(nil)
	files, err := b.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2100 {
		t.Errorf("listed %d files; want 2100", len(files))
	}
	pages := 0
	for _, r := range s.seen() {
		if strings.Contains(r, "list-type=2") {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("%d list requests; want 3 pages of at most 1000: %v", pages, s.seen())
	}
}

// TestS3ListSkipsEscapingKeys puts raw keys that try to leave the root, as
// another client could, including one that gocloud unescapes to "../".
func TestS3ListSkipsEscapingKeys(t *testing.T) {
	s := newS3(t)
	name, url := s.newBucket(t)
	st := s.store(name)
	for _, k := range []string{"../evil.json", "a/../../b.json", "..__0x2f__evil.json", "..\\evil.json", "a\\..\\..\\b.json", "/abs.json", "..", "ok.json"} {
		st.put(t, root+k, []byte("x"), time.Now())
	}
	st.put(t, "evil.json", []byte("outside"), time.Now())
	b := initBlob(t, url)
	got := listed(t, b)
	if !slices.Equal(got, []string{"ok.json"}) {
		t.Errorf("List: %q; want only ok.json", got)
	}
}

// TestS3ListSkipsEscapeSequences: see checkEscapeSequences.
func TestS3ListSkipsEscapeSequences(t *testing.T) {
	s := newS3(t)
	name, url := s.newBucket(t)
	checkEscapeSequences(t, s.store(name), func() *Blob { return initBlob(t, url) })
}

// checkEscapeSequences: another client stored a key holding "__0x41__",
// which gocloud decodes as "A". Listed as xA.json, it would open the object
// xA.json instead, or nothing: it is left alone.
func checkEscapeSequences(t *testing.T, st store, open func() *Blob) {
	t.Helper()
	st.put(t, root+"x__0x41__.json", []byte("encoded"), time.Now())
	st.put(t, root+"y__0x42__.json", []byte("encoded, alone"), time.Now())
	st.put(t, root+"xA.json", []byte("plain"), time.Now())
	b := open()
	got := listed(t, b)
	if !slices.Equal(got, []string{"xA.json"}) {
		t.Errorf("List: %q; want only xA.json", got)
	}
	rc, err := b.Open(t.Context(), "xA.json")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(data) != "plain" {
		t.Errorf("xA.json read %q, %v; want the plain object", data, err)
	}
}

// breakBody answers a GET without a Range header with the object's first
// half, runs then (if any), and then hangs (stall) or drops the connection,
// once.
func breakBody(s *s3Server, key string, stall bool, then func()) func(w http.ResponseWriter, r *http.Request) bool {
	var done atomic.Bool
	h := gofakes3.New(s.backend).Server()
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/"+key) || r.Header.Get("Range") != "" || done.Swap(true) {
			return false
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		body := rec.Body.Bytes()
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		if then != nil {
			then()
		}
		if stall {
			<-r.Context().Done()
		}
		panic(http.ErrAbortHandler)
	}
}

func TestS3ResumesBrokenRead(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stall=%v", stall), func(t *testing.T) {
			s := newS3(t)
			name, url := s.newBucket(t)
			data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
			s.store(name).put(t, root+"big.bin", data, time.Now())
			b := initBlob(t, url, func(b *Blob) { b.Timeout = 500 * time.Millisecond })
			s.setHook(breakBody(s, root+"big.bin", stall, nil))
			start := time.Now()
			rc, err := b.Open(t.Context(), "big.bin")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes; want the %d bytes put", len(got), len(data))
			}
			var ranges []string
			for _, r := range s.seen() {
				if strings.HasPrefix(r, "GET ") && strings.Contains(r, "bytes=") {
					ranges = append(ranges, r)
				}
			}
			if len(ranges) != 1 {
				t.Errorf("range requests %q; want one resuming the read", ranges)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestS3ReadOfReplacedObject: the object is replaced while a broken read
// waits to resume; the rest of the new object must not be spliced onto the
// old one.
func TestS3ReadOfReplacedObject(t *testing.T) {
	s := newS3(t)
	name, url := s.newBucket(t)
	st := s.store(name)
	st.put(t, root+"big.bin", bytes.Repeat([]byte("old "), 64<<10), time.Now())
	b := initBlob(t, url)
	s.setHook(breakBody(s, root+"big.bin", false, func() {
		st.put(t, root+"big.bin", bytes.Repeat([]byte("new!"), 65<<10), time.Now())
	}))
	rc, err := b.Open(t.Context(), "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if !errors.Is(err, plugins.ErrVanished) {
		t.Errorf("read of a replaced object: %d bytes, %v; want an error wrapping plugins.ErrVanished", len(got), err)
	}
	if bytes.Contains(got, []byte("new!")) {
		t.Error("bytes of the new object were read after those of the old one")
	}
}

// xmlError answers like S3 does with an error.
func xmlError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message><RequestId>1</RequestId></Error>`, code)
}

// TestS3Retries checks the bounded retries, with the SDK's own turned off
// so that each request is one try.
func TestS3Retries(t *testing.T) {
	s := newS3(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	name, url := s.newBucket(t)
	s.store(name).put(t, root+"a.json", []byte("x"), time.Now())
	b := initBlob(t, url, func(b *Blob) { b.Retries = 3 })
	lists := func() (n int) {
		for _, r := range s.seen() {
			if strings.Contains(r, "list-type=2") {
				n++
			}
		}
		return n
	}
	failing := func(n int, status int, code string) func(w http.ResponseWriter, r *http.Request) bool {
		var count atomic.Int64
		return func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.RawQuery, "list-type=2") || (n >= 0 && count.Add(1) > int64(n)) {
				return false
			}
			xmlError(w, status, code)
			return true
		}
	}

	s.setHook(failing(2, http.StatusServiceUnavailable, "SlowDown"))
	if files, err := b.List(t.Context()); err != nil || len(files) != 1 {
		t.Errorf("two 503s then success: %v, %v; want the file", files, err)
	}
	if n := lists(); n != 3 {
		t.Errorf("two 503s then success: %d requests; want 3", n)
	}

	s.setHook(failing(-1, http.StatusInternalServerError, "InternalError"))
	if _, err := b.List(t.Context()); err == nil {
		t.Error("always 500: List succeeded")
	}
	if n := lists(); n != 4 {
		t.Errorf("always 500: %d requests; want 4 (retries: 3)", n)
	}

	s.setHook(failing(-1, http.StatusForbidden, "AccessDenied"))
	_, err := b.List(t.Context())
	if err == nil {
		t.Error("403: List succeeded")
	}
	if n := lists(); n != 1 {
		t.Errorf("403: %d requests; want 1, since a refusal does not go away", n)
	}
	if err != nil && strings.Contains(err.Error(), testS3Secret) {
		t.Errorf("the error shows the secret key: %v", err)
	}
}

// TestS3MoveDeleteFails: the copy is made, the original cannot be deleted;
// the error is reported and the next move finishes without overwriting.
func TestS3MoveDeleteFails(t *testing.T) {
	s := newS3(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	name, url := s.newBucket(t)
	st := s.store(name)
	st.put(t, root+"a.json", []byte("payload"), time.Now())
	b := initBlob(t, url, func(b *Blob) { b.Retries = 1 })
	s.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodDelete {
			return false
		}
		xmlError(w, http.StatusForbidden, "AccessDenied")
		return true
	})
	got, err := b.Move(t.Context(), "a.json", "processed")
	if err == nil || !strings.Contains(err.Error(), "could not delete the original") || errors.Is(err, plugins.ErrVanished) {
		t.Errorf("Move with failing deletes: %q, %v; want an error saying the original could not be deleted", got, err)
	}
	for _, k := range []string{"a.json", "processed/a.json"} {
		if data, ok := st.get(t, root+k); !ok || string(data) != "payload" {
			t.Errorf("%s: %q, %v; want the payload", k, data, ok)
		}
	}
	s.setHook(nil)
	got, err = b.Move(t.Context(), "a.json", "processed")
	if err != nil || got != "processed/a-1.json" {
		t.Errorf("second Move: %q, %v; want processed/a-1.json", got, err)
	}
	if _, ok := st.get(t, root+"a.json"); ok {
		t.Error("the original is still there after the second move")
	}
}

func TestS3InitErrors(t *testing.T) {
	s := newS3(t)
	_, url := s.newBucket(t)
	for _, c := range []struct{ url, want string }{
		{strings.Replace(url, "s3://bucket", "s3://missing", 1), "NoSuchBucket"},
		{url + "&secret_access_key=topsecret4", "unknown query parameter"},
		{url + "&access_key=topsecret5", "unknown query parameter"},
	} {
		_, err := tryInit(t, c.url, func(b *Blob) { b.Retries = 1 })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Init of %s: %v; want an error with %q", c.url, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), testS3Secret) {
			t.Errorf("Init of %s: the error shows a secret: %v", c.url, err)
		}
	}
}

func TestValidateCloudURLs(t *testing.T) {
	for url, want := range map[string]string{
		"s3://":                "names no bucket",
		"gs://":                "names no bucket",
		"s3://bucket/incoming": "put the folder inside the bucket in prefix",
		"azblob://c/incoming":  "put the folder inside the bucket in prefix",
	} {
		b := New()
		b.URL = url
		if err := b.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of %s: %v; want an error with %q", url, err, want)
		}
	}
	for _, url := range []string{"s3://bucket?region=eu-west-1", "gs://bucket", "azblob://container", "s3://bucket/"} {
		b := New()
		b.URL = url
		if err := b.Validate(); err != nil {
			t.Errorf("Validate of %s: %v", url, err)
		}
	}
}

func TestConformanceGCS(t *testing.T) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	// gocloud's gs:// opener reads it: the plugin runs its users' code path.
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL(), "http://"))
	newBucket := func(t *testing.T) (string, store) {
		name := fmt.Sprintf("bucket%d", bucketCount.Add(1))
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
		return name, gcsStore(srv, name)
	}
	conformance(t, func(t *testing.T) (*Blob, store) {
		name, st := newBucket(t)
		return initBlob(t, "gs://"+name), st
	})
	t.Run("EscapeSequences", func(t *testing.T) {
		name, st := newBucket(t)
		checkEscapeSequences(t, st, func() *Blob { return initBlob(t, "gs://"+name) })
	})
}

func gcsStore(srv *fakestorage.Server, bucket string) store {
	return store{
		put: func(t *testing.T, key string, data []byte, mtime time.Time) {
			srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: key, Updated: mtime}, Content: data})
		},
		get: func(t *testing.T, key string) ([]byte, bool) {
			obj, err := srv.GetObject(bucket, key)
			if err != nil {
				return nil, false
			}
			return obj.Content, true
		},
		remove: func(t *testing.T, key string) {
			if err := srv.Backend().DeleteObject(bucket, key); err != nil {
				t.Fatal(err)
			}
		},
		keys: func(t *testing.T) []string {
			objs, _, err := srv.ListObjectsWithOptions(bucket, fakestorage.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, o := range objs {
				out = append(out, o.Name)
			}
			return out
		},
	}
}

// listed is the paths List returns.
func listed(t *testing.T, b *Blob) []string {
	t.Helper()
	files, err := b.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	return got
}
