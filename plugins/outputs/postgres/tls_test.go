package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lib/pq"
)

// TestTLSHint: each TLS failure says which sslmode fixes it, and which
// mode was in effect; other failures get no hint.
func TestTLSHint(t *testing.T) {
	hba := &pq.Error{Code: "28000", Message: `no pg_hba.conf entry for host "10.0.0.5", user "u", database "d", no encryption`}
	for _, c := range []struct {
		p    *Postgres
		err  error
		want []string
	}{
		{&Postgres{Host: "vm"}, fmt.Errorf("pq: could not connect:\n%w", pq.ErrSSLNotSupported),
			[]string{"the server offers no TLS under sslmode=verify-full, the default for this host", "POSTGRES_SSLMODE", "to disable"}},
		{&Postgres{Host: "vm"}, errors.New("tls: failed to verify certificate: x509: certificate is valid for localhost, not vm"),
			[]string{"certificate was refused under sslmode=verify-full", "verify-ca", "require"}},
		{&Postgres{Host: "localhost", SSLMode: "disable"}, hba,
			[]string{"the server wants TLS under sslmode=disable:", "require, verify-ca or verify-full"}},
		{&Postgres{DSN: "host=vm"}, pq.ErrSSLNotSupported, []string{"under the dsn's sslmode", "set sslmode in the dsn"}},
	} {
		got := c.p.tlsHint(c.err)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("hint for %v lacks %q: %s", c.err, w, got)
			}
		}
		if !strings.Contains(got, "the default is verify-full, or disable for a loopback host") {
			t.Errorf("hint names no default: %s", got)
		}
	}
	if got := (&Postgres{Host: "vm"}).tlsHint(errors.New("dial tcp: connection refused")); got != "" {
		t.Errorf("hint for a refused connection: %s", got)
	}
}
