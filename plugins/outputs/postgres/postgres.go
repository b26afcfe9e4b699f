// Package postgres stores records and the file ledger in PostgreSQL.
package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
)

//go:embed sample.yaml
var sample string

func init() {
	plugins.Default.AddOutput(plugins.OutputSpec{
		Name:   "postgres",
		Doc:    "Stores records and the file ledger in PostgreSQL, loading with COPY.",
		Sample: sample,
		New:    func() plugins.Output { return &Postgres{ConnectTimeout: 10 * time.Second} },
	})
}

// Postgres is the output's config and its open database.
type Postgres struct {
	Host           string        `yaml:"host" doc:"server host name or address, or a unix socket folder"`
	Port           int           `yaml:"port" doc:"server port (default 5432)"`
	User           string        `yaml:"user" doc:"user name"`
	Password       string        `yaml:"password" secret:"true" doc:"password; never logged"`
	Database       string        `yaml:"database" doc:"database name"`
	SSLMode        string        `yaml:"sslmode" doc:"disable | require | verify-ca | verify-full; default verify-full, or disable for a loopback host"`
	DSN            string        `yaml:"dsn" secret:"true" doc:"a libpq connection string or postgres:// URL instead of the fields above"`
	ConnectTimeout time.Duration `yaml:"connect_timeout" doc:"how long to wait for the server (default 10s)"`

	store.Store `yaml:"-"`
	sent        sentKeys
	// COPYs sent, and those that met a stored key and were merged instead.
	copies, fallbacks atomic.Int64
}

var (
	_ plugins.Ledger    = (*Postgres)(nil)
	_ plugins.Initer    = (*Postgres)(nil)
	_ plugins.Validator = (*Postgres)(nil)
	_ plugins.Closer    = (*Postgres)(nil)
)

// Validate checks the connection settings without connecting.
func (p *Postgres) Validate() error {
	_, _, err := p.dsn()
	return err
}

// Init connects, failing fast with a message that names the server but
// never the password.
func (p *Postgres) Init(ctx context.Context, env plugins.Env) error {
	dsn, where, err := p.dsn()
	if err != nil {
		return err
	}
	secrets := p.secrets()
	conn, err := pq.NewConnector(dsn)
	if err != nil {
		return fmt.Errorf("postgres connection settings: %s", mask(err.Error(), secrets...))
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(8)
	pctx, cancel := context.WithTimeout(ctx, p.ConnectTimeout+time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return fmt.Errorf("cannot connect to postgres %s: %s%s", where, mask(err.Error(), secrets...), p.tlsHint(err))
	}
	p.Store = store.Store{DB: db, Dialect: dialect.Postgres, Loader: p.newLoader, Many: p.insertMany, Fatal: fatal, Retry: retry, Log: env.Logger}
	p.Store.Open()
	return nil
}

// secrets are the strings no message may show: the password, the whole
// dsn, and the password inside it.
func (p *Postgres) secrets() []string {
	out := []string{p.DSN, p.Password}
	if u, err := url.Parse(p.DSN); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		out = append(out, pw, url.QueryEscape(pw))
	}
	for _, f := range strings.Fields(p.DSN) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			out = append(out, strings.Trim(v, "'"))
		}
	}
	return out
}

func mask(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// dsn builds a libpq key=value string and a password-free description.
func (p *Postgres) dsn() (dsn, where string, err error) {
	if p.DSN != "" {
		if p.Host != "" || p.User != "" || p.Password != "" || p.Database != "" || p.Port != 0 || p.SSLMode != "" {
			return "", "", errors.New("give either dsn or host/port/user/password/database/sslmode, not both")
		}
		return p.DSN, "(from dsn)", nil
	}
	if p.Host == "" || p.Database == "" {
		return "", "", errors.New("host and database are required (or dsn)")
	}
	switch p.SSLMode {
	case "", "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		return "", "", fmt.Errorf("sslmode %q: want disable, require, verify-ca or verify-full", p.SSLMode)
	}
	port := p.Port
	if port == 0 {
		port = 5432
	}
	mode := p.sslmode()
	kv := [][2]string{
		{"host", p.Host}, {"port", strconv.Itoa(port)}, {"user", p.User}, {"password", p.Password},
		{"dbname", p.Database}, {"sslmode", mode}, {"application_name", "carpipe"},
		{"connect_timeout", strconv.Itoa(int(max(p.ConnectTimeout, time.Second) / time.Second))},
	}
	var b strings.Builder
	for _, e := range kv {
		if e[1] == "" {
			continue
		}
		fmt.Fprintf(&b, "%s='%s' ", e[0], strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(e[1]))
	}
	return b.String(), fmt.Sprintf("at %s:%d database %s as user %s", p.Host, port, p.Database, p.User), nil
}

// sslmode is the mode in effect: loopback hosts gain nothing from TLS
// and default to disable; everything else verifies it (verify-full).
func (p *Postgres) sslmode() string {
	switch {
	case p.SSLMode != "":
		return p.SSLMode
	case loopback(p.Host):
		return "disable"
	}
	return "verify-full"
}

// tlsHint says which setting fixes a failed connection when TLS is the
// cause, since the default mode depends on the host.
func (p *Postgres) tlsHint(err error) string {
	var (
		verify  *tls.CertificateVerificationError
		host    x509.HostnameError
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		pe      *pq.Error
	)
	var why, fix string
	switch {
	case errors.Is(err, pq.ErrSSLNotSupported):
		why, fix = "the server offers no TLS", "disable to connect without it"
	case errors.As(err, &verify) || errors.As(err, &host) || errors.As(err, &unknown) || errors.As(err, &invalid) ||
		strings.Contains(err.Error(), "x509: "):
		why, fix = "the server's certificate was refused", "verify-ca to skip the host name check, require to encrypt without checking the certificate"
	case errors.As(err, &pe) && pe.Code == "28000" && (strings.Contains(pe.Message, "no encryption") || strings.Contains(pe.Message, "SSL off")):
		why, fix = "the server wants TLS", "require, verify-ca or verify-full"
	default:
		return ""
	}
	where := "sslmode (POSTGRES_SSLMODE in the shipped config)"
	mode := "sslmode=" + p.sslmode()
	switch {
	case p.DSN != "":
		where, mode = "sslmode in the dsn", "the dsn's sslmode"
	case p.SSLMode == "":
		mode += ", the default for this host"
	}
	return fmt.Sprintf(" (%s under %s: set %s to %s; the default is verify-full, or disable for a loopback host)", why, mode, where, fix)
}

// loopback hosts gain nothing from TLS; everything else verifies it.
func loopback(host string) bool {
	if host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// retry: a deadlock or serialization failure rolls the file back, and it
// loads when tried again.
func retry(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// fatal tells a lost or refusing server, which ends the run, from an error
// caused by one file's data, which fails only that file.
func fatal(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code.Class() {
		case "08", "53", "57", "58", "XX":
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, sql.ErrConnDone) || errors.As(err, &ne)
}
