// Package blob reads files from a bucket of object storage through
// gocloud.dev/blob: S3 and S3-compatible servers, Google Cloud Storage, Azure
// Blob Storage, and, for tests and demos, a local folder or memory.
package blob

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	gocloud "gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/memblob"  // mem://
	"gocloud.dev/gcerrors"

	"github.com/carpipe/carpipe/plugins"
)

//go:embed sample.yaml
var sample string

func init() {
	plugins.Default.AddInput(plugins.InputSpec{
		Name:   "blob",
		Doc:    "Reads files from a bucket of object storage: S3 (and S3-compatible servers such as MinIO), Google Cloud Storage, Azure Blob Storage.",
		Sample: sample,
		New:    func() plugins.Input { return New() },
	})
}

// Defaults.
const (
	defaultTimeout = 60 * time.Second
	defaultRetries = 3
	maxRetries     = 10
	pageSize       = 1000
	// maxSuffix bounds the search for a free name when moving, since each
	// try is a request.
	maxSuffix = 10000
)

// Blob is a folder (a key prefix) in a bucket.
type Blob struct {
	URL     string        `yaml:"url" required:"true" doc:"the bucket: s3://bucket?region=eu-west-1 (MinIO and other S3-compatible servers: add endpoint=https://host:port&use_path_style=true), gs://bucket, azblob://container, file:///absolute/folder, mem:// (empty, for tests); credentials come from the provider's standard environment, never from the URL"`
	Prefix  string        `yaml:"prefix" doc:"the input's root inside the bucket, e.g. incoming/ (default: the top of the bucket); only the objects directly under it are read"`
	Timeout time.Duration `yaml:"timeout" doc:"longest wait for one request, or for the next data while reading (default 60s)"`
	Retries int           `yaml:"retries" doc:"tries again a request that failed with a transient error (network, timeout, 5xx, throttling), with exponential backoff, this many times; each try includes the SDK's own retries (default 3)"`

	bucket  *gocloud.Bucket
	prefix  string // Prefix with a trailing "/", or ""
	where   string // the bucket and prefix, for messages, without the query
	log     *slog.Logger
	redact  func(string) string
	backoff time.Duration // first wait before a retry; doubles each time
}

var (
	_ plugins.Input     = (*Blob)(nil)
	_ plugins.Validator = (*Blob)(nil)
	_ plugins.Initer    = (*Blob)(nil)
	_ plugins.Closer    = (*Blob)(nil)
)

// New returns a Blob with the default options.
func New() *Blob {
	return &Blob{Timeout: defaultTimeout, Retries: defaultRetries}
}

// openers open the schemes that need more than gocloud's default opener.
var openers = map[string]func(ctx context.Context, u *url.URL, log *slog.Logger) (*gocloud.Bucket, error){}

// cloudSchemes are the schemes of the drivers a nocloud build leaves out.
var cloudSchemes = []string{"s3", "gs", "azblob"}

// Validate checks the config without touching the network.
func (b *Blob) Validate() error {
	if err := b.check(); err != nil {
		return errors.New(newRedacter(b.URL)(err.Error()))
	}
	return nil
}

func (b *Blob) check() error {
	if b.URL == "" {
		return errors.New("url is required")
	}
	u, err := url.Parse(b.URL)
	if err != nil {
		// url.Parse quotes the whole URL: keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("url: %v", err)
	}
	if u.User != nil {
		return errors.New("url: credentials do not go in the URL; give them through the provider's environment (see the blob input's README)")
	}
	mux := gocloud.DefaultURLMux()
	switch {
	case u.Scheme == "":
		return fmt.Errorf("url %q has no scheme; want one of %s", b.URL, strings.Join(mux.BucketSchemes(), ", "))
	case !mux.ValidBucketScheme(u.Scheme) && slices.Contains(cloudSchemes, u.Scheme):
		return fmt.Errorf("url: this carpipe was built with -tags nocloud, without the %s driver", u.Scheme)
	case !mux.ValidBucketScheme(u.Scheme):
		return fmt.Errorf("url: unknown scheme %q; want one of %s", u.Scheme, strings.Join(mux.BucketSchemes(), ", "))
	case u.Scheme == "file" && (u.Host != "" || !strings.HasPrefix(u.Path, "/")):
		return fmt.Errorf("url %q: a file URL needs an absolute path, as in file:///data/inbox", b.URL)
	case u.Scheme != "file" && u.Scheme != "mem" && u.Host == "":
		return fmt.Errorf("url %q names no bucket, as in %s://my-bucket", b.URL, u.Scheme)
	case u.Scheme != "file" && u.Path != "" && u.Path != "/":
		return fmt.Errorf("url %q: put the folder inside the bucket in prefix, not in the URL", b.URL)
	}
	b.prefix = ""
	if p := strings.TrimSuffix(b.Prefix, "/"); p != "" {
		c, err := plugins.CleanPath(p)
		if err != nil || c != p || strings.HasPrefix(p, "/") {
			return fmt.Errorf("prefix %q must be a plain relative key prefix such as incoming/ (no leading /, no . or .. parts, no //)", b.Prefix)
		}
		b.prefix = p + "/"
	}
	if b.Timeout <= 0 {
		return errors.New("timeout must be positive")
	}
	if b.Retries < 0 || b.Retries > maxRetries {
		return fmt.Errorf("retries must be between 0 and %d", maxRetries)
	}
	b.where = u.Scheme + "://" + u.Host + u.Path
	if !strings.HasSuffix(b.where, "/") {
		b.where += "/"
	}
	b.where += b.prefix
	return nil
}

// Init opens the bucket and lists one object, so that a wrong bucket,
// endpoint or credential fails the run before any file is touched.
func (b *Blob) Init(ctx context.Context, env plugins.Env) error {
	b.redact = newRedacter(b.URL)
	if err := b.check(); err != nil {
		return errors.New(b.redact(err.Error()))
	}
	b.log = env.Logger
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.backoff == 0 {
		b.backoff = 500 * time.Millisecond
	}
	if host := plainHTTPHost(b.URL); host != "" {
		b.log.Warn("the bucket is reached over plain HTTP: data and request signatures travel unencrypted", "host", host)
	}
	// Credentials made while opening keep this context for their token
	// refreshes, and gocloud caches some for the whole process: it must
	// outlive this run.
	octx := context.WithoutCancel(ctx)
	var bucket *gocloud.Bucket
	var err error
	if u, _ := url.Parse(b.URL); openers[u.Scheme] != nil {
		bucket, err = openers[u.Scheme](octx, u, b.log)
	} else {
		bucket, err = gocloud.OpenBucket(octx, b.URL)
	}
	if err != nil {
		return b.fail(fmt.Sprintf("opening %s", b.where), err)
	}
	b.bucket = bucket
	err = b.retry(ctx, "listing", func(ctx context.Context) error {
		_, _, err := bucket.ListPage(ctx, gocloud.FirstPageToken, 1, &gocloud.ListOptions{Prefix: b.prefix, Delimiter: "/"})
		return err
	})
	if err != nil {
		bucket.Close()
		b.bucket = nil
		return b.fail(fmt.Sprintf("listing %s", b.where), err)
	}
	return nil
}

// plainHTTPHost returns the host of an endpoint the URL asks to reach over
// plain HTTP, unless it is a loopback address.
func plainHTTPHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	q := u.Query()
	var host string
	switch {
	case strings.HasPrefix(q.Get("endpoint"), "http://"):
		if e, err := url.Parse(q.Get("endpoint")); err == nil {
			host = e.Hostname()
		}
	case q.Get("disable_https") == "true" || q.Get("protocol") == "http":
		host = q.Get("endpoint") + q.Get("domain")
		if e, err := url.Parse("//" + strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")); err == nil {
			host = e.Hostname()
		}
		if host == "" {
			host = u.Host
		}
	}
	if host == "" || host == "localhost" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return host
}

// Close releases the bucket's clients.
func (b *Blob) Close() error {
	if b.bucket == nil {
		return nil
	}
	err := b.bucket.Close()
	b.bucket = nil
	if err != nil {
		return b.fail("closing "+b.where, err)
	}
	return nil
}

// List returns the objects directly under the prefix, page after page.
func (b *Blob) List(ctx context.Context) ([]plugins.File, error) {
	if b.bucket == nil {
		return nil, errors.New("blob input used before Init")
	}
	opts := &gocloud.ListOptions{Prefix: b.prefix, Delimiter: "/"}
	var out []plugins.File
	token := gocloud.FirstPageToken
	for {
		var page []*gocloud.ListObject
		var next []byte
		err := b.retry(ctx, "listing", func(ctx context.Context) error {
			var err error
			page, next, err = b.bucket.ListPage(ctx, token, pageSize, opts)
			return err
		})
		if err != nil {
			return nil, b.fail("listing "+b.where, err)
		}
		for _, o := range page {
			if f, ok := b.file(o); ok {
				out = append(out, f)
			}
		}
		if len(next) == 0 {
			return out, nil
		}
		if string(next) == string(token) {
			return nil, fmt.Errorf("listing %s: the server returned the same page token twice", b.where)
		}
		token = next
	}
}

// file turns a listed object into a File, leaving out folders, hidden
// names and any key that is not a plain name under the prefix.
func (b *Blob) file(o *gocloud.ListObject) (plugins.File, bool) {
	if o.IsDir {
		return plugins.File{}, false
	}
	rel, ok := strings.CutPrefix(o.Key, b.prefix)
	if !ok || rel == "" {
		return plugins.File{}, false // a folder marker, or a server ignoring the prefix
	}
	if _, err := plugins.CleanPath(rel); err != nil || strings.Contains(rel, "/") {
		b.log.Warn("object left alone: its key is not a plain name under the input's root", "key", o.Key)
		return plugins.File{}, false
	}
	if strings.HasPrefix(rel, ".") {
		return plugins.File{}, false // uploaders write partial files under hidden names
	}
	var fi os.FileInfo
	if o.As(&fi) && !fi.Mode().IsRegular() {
		return plugins.File{}, false // file://: links, pipes, sockets and devices are never read
	}
	if raw, ok := rawName(o); ok && raw != rel {
		// gocloud decodes "__0x41__" in a key as "A": a key holding such a
		// sequence, written by another client, lists under a name that
		// opens another object, or none.
		b.log.Warn("object left alone: its key holds an escape sequence (__0x…__) that would make it list under another object's name", "key", o.Key, "stored_as", raw)
		return plugins.File{}, false
	}
	return plugins.File{Path: rel, Size: o.Size, ModTime: o.ModTime}, true
}

// rawNames give the last part of an object's key as the server stores it,
// before gocloud decodes it, for the drivers that tell.
var rawNames = []func(o *gocloud.ListObject) (string, bool){
	func(o *gocloud.ListObject) (string, bool) {
		var fi os.FileInfo
		if !o.As(&fi) {
			return "", false
		}
		return fi.Name(), true
	},
}

func rawName(o *gocloud.ListObject) (string, bool) {
	for _, f := range rawNames {
		if name, ok := f(o); ok {
			return name, true
		}
	}
	return "", false
}

// key returns the object key of a path relative to the root, refusing any
// path that would leave it.
func (b *Blob) key(p string) (string, string, error) {
	c, err := plugins.CleanPath(p)
	if err != nil {
		return "", "", err
	}
	return c, b.prefix + c, nil
}

// Open streams an object.
func (b *Blob) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if b.bucket == nil {
		return nil, errors.New("blob input used before Init")
	}
	p, key, err := b.key(p)
	if err != nil {
		return nil, err
	}
	r, err := b.openReader(ctx, p, key)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Move copies the object to a free name in dir and then deletes the
// original: buckets have no rename. A copy whose original could not be
// deleted is reported; the next run's move deletes it (the ledger keeps the
// file from being loaded twice) and leaves a second copy in dir.
func (b *Blob) Move(ctx context.Context, p, dir string) (string, error) {
	if b.bucket == nil {
		return "", errors.New("blob input used before Init")
	}
	p, src, err := b.key(p)
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
	for i := range maxSuffix {
		cand := name
		if i > 0 {
			cand = strings.TrimSuffix(name, ext) + "-" + strconv.Itoa(i) + ext
		}
		dst := path.Join(dir, cand)
		var taken bool
		err := b.retry(ctx, "checking", func(ctx context.Context) error {
			var err error
			taken, err = b.bucket.Exists(ctx, b.prefix+dst)
			return err
		})
		if err != nil {
			return "", b.fail("checking "+dst, err)
		}
		if taken {
			continue
		}
		err = b.retry(ctx, "copying", func(ctx context.Context) error {
			return b.bucket.Copy(ctx, b.prefix+dst, src, nil)
		})
		if gcerrors.Code(err) == gcerrors.NotFound {
			return "", fmt.Errorf("%w: %s", plugins.ErrVanished, p)
		}
		if err != nil {
			return "", b.fail("copying "+p+" to "+dst, err)
		}
		err = b.retry(ctx, "deleting", func(ctx context.Context) error {
			return b.bucket.Delete(ctx, src)
		})
		if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return "", b.fail("copied "+p+" to "+dst+" but could not delete the original", err)
		}
		return dst, nil
	}
	return "", fmt.Errorf("moving %s: no free name in %s after %d tries", p, dir, maxSuffix)
}

// Delete deletes an object.
func (b *Blob) Delete(ctx context.Context, p string) error {
	if b.bucket == nil {
		return errors.New("blob input used before Init")
	}
	p, key, err := b.key(p)
	if err != nil {
		return err
	}
	err = b.retry(ctx, "deleting", func(ctx context.Context) error {
		return b.bucket.Delete(ctx, key)
	})
	if err != nil {
		return b.vanished("deleting "+p, p, err)
	}
	return nil
}
