package blob

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/carpipe/carpipe/plugins"
)

// maxBackoff caps the wait between two tries.
const maxBackoff = 10 * time.Second

// retry runs op, each try with its own timeout, until it succeeds, fails for
// good, or has failed Retries+1 times. The SDKs retry within each try too;
// the total stays bounded by (Retries+1) × Timeout plus the waits.
func (b *Blob) retry(ctx context.Context, what string, op func(context.Context) error) error {
	wait := b.backoff
	for try := 0; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, b.Timeout)
		err := op(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s: %w", b.Timeout, err)
		}
		if try >= b.Retries || !transient(ctx, err) {
			return err
		}
		b.log.Warn("transient error; trying again", "op", what, "try", try+1, "of", b.Retries+1, "wait", wait, "error", b.redact(err.Error()))
		if !sleep(ctx, wait) {
			return err
		}
		wait = min(2*wait, maxBackoff)
	}
}

// sleep waits about d (with jitter, so that replicas spread out), or until
// ctx ends; it reports whether the wait was complete.
func sleep(ctx context.Context, d time.Duration) bool {
	if d > 1 {
		d = d/2 + rand.N(d/2)
	}
	return plugins.Wait(ctx, d)
}

// statusCodes extract the HTTP status of a driver's error; the cloud drivers
// add theirs.
var statusCodes = []func(error) (int, bool){
	func(err error) (int, bool) {
		var e interface{ HTTPStatusCode() int } // the AWS SDK's errors
		if errors.As(err, &e) {
			return e.HTTPStatusCode(), true
		}
		return 0, false
	},
}

// transient reports whether err may go away if the request is tried again:
// network trouble, timeouts, server errors (5xx) and throttling, but not the
// other 4xx answers, which would only repeat.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound, gcerrors.PermissionDenied, gcerrors.InvalidArgument,
		gcerrors.FailedPrecondition, gcerrors.AlreadyExists, gcerrors.Unimplemented:
		return false
	case gcerrors.Internal, gcerrors.ResourceExhausted, gcerrors.DeadlineExceeded:
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for _, f := range statusCodes {
		if code, ok := f(err); ok && code != 0 {
			return code >= 500 || code == 408 || code == 429
		}
	}
	for _, e := range []error{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, io.ErrUnexpectedEOF, io.EOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fail wraps err, with msg before it, into an error whose text has every
// credential redacted. It unwraps only to the context's errors: the driver's
// error may quote a signed URL.
func (b *Blob) fail(msg string, err error) error {
	e := &safeError{msg: b.redact(msg + ": " + err.Error())}
	for _, s := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			e.is = append(e.is, s)
		}
	}
	return e
}

// vanished maps a NotFound error to plugins.ErrVanished.
func (b *Blob) vanished(msg, p string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%w: %s", plugins.ErrVanished, p)
	}
	return b.fail(msg, err)
}

type safeError struct {
	msg string
	is  []error
}

func (e *safeError) Error() string   { return e.msg }
func (e *safeError) Unwrap() []error { return e.is }

// credentialVars are the environment variables of the providers' standard
// chains that hold a secret; their values are redacted from messages.
var credentialVars = []string{
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
	"AZURE_STORAGEBLOB_CONNECTIONSTRING", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
}

var (
	// secretParam matches name=value in a query or a connection string
	// where the name says the value is a credential.
	secretParam = regexp.MustCompile(`(?i)((?:^|[?&;\s"',])[a-z0-9_.-]*(?:secret|password|passwd|token|sig|signature|sas|credential|key)\s*=\s*)([^&;\s"'<>]+)`)
	// userPassword matches the password of scheme://user:password@.
	userPassword = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)@`)
	secretName   = regexp.MustCompile(`(?i)(secret|password|passwd|token|sig|signature|sas|credential|key)$`)
)

// newRedacter returns a function removing from a message the credentials
// the environment and the URL hold.
func newRedacter(rawURL string) func(string) string {
	var lits []string
	add := func(v string) {
		if len(v) >= 4 { // shorter ones would mask ordinary text
			lits = append(lits, v, url.QueryEscape(v))
		}
	}
	for _, v := range credentialVars {
		add(os.Getenv(v))
	}
	if u, err := url.Parse(rawURL); err == nil {
		for k, vs := range u.Query() {
			if secretName.MatchString(k) {
				for _, v := range vs {
					add(v)
				}
			}
		}
		if u.User != nil {
			pw, _ := u.User.Password()
			add(pw)
		}
	}
	// Longest first, so that no part of a secret is left by a shorter one.
	slices.SortFunc(lits, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return func(s string) string { return redactString(s, lits) }
}

func redactString(s string, lits []string) string {
	for _, l := range lits {
		s = strings.ReplaceAll(s, l, "***")
	}
	s = secretParam.ReplaceAllString(s, "${1}***")
	return userPassword.ReplaceAllString(s, "${1}***@")
}
