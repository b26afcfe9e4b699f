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
	"maps"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

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
		New: func() any {
			return &Postgres{ConnectTimeout: 10 * time.Second, Store: store.Store{Dialect: dialect.Postgres}}
		},
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
	_ plugins.Claimer   = (*Postgres)(nil)
	_ plugins.Initer    = (*Postgres)(nil)
	_ plugins.Validator = (*Postgres)(nil)
	_ plugins.Closer    = (*Postgres)(nil)
)

// Validate checks the connection settings without connecting.
func (p *Postgres) Validate() error {
	_, err := p.config()
	return err
}

// Init connects, failing fast with a message that names the server but
// never the password.
func (p *Postgres) Init(ctx context.Context, env plugins.Env) error {
	cfg, err := p.config()
	if err != nil {
		return err
	}
	pc, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return fmt.Errorf("postgres %s: lib/pq refuses the settings", where(cfg))
	}
	db := sql.OpenDB(connector{pc})
	db.SetMaxIdleConns(8)
	pctx, cancel := context.WithTimeout(ctx, p.ConnectTimeout+time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return fmt.Errorf("cannot connect to postgres %s: %s%s", where(cfg), mask(err.Error(), p.secrets(cfg)...), p.tlsHint(err))
	}
	p.Store = store.Store{DB: db, Dialect: dialect.Postgres, Loader: p.newLoader, Fatal: outage, Retry: retry, Log: env.Logger}
	p.Store.Open()
	return nil
}

// where describes the server for a message, without the password.
func where(cfg pq.Config) string {
	return fmt.Sprintf("at %s:%d database %s as user %s", cfg.Host, cfg.Port, cfg.Database, cfg.User)
}

// secrets are the strings no message may show: the password in every
// spelling a message could use, and the whole dsn.
func (p *Postgres) secrets(cfg pq.Config) []string {
	out := []string{p.DSN, p.Password, cfg.Password, url.QueryEscape(cfg.Password), url.PathEscape(cfg.Password)}
	if cfg.SSLInline {
		out = append(out, cfg.SSLKey) // the key itself, not a file name
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

// config reads the connection settings, from dsn or from the fields.
func (p *Postgres) config() (pq.Config, error) {
	if p.DSN != "" {
		if p.Host != "" || p.User != "" || p.Password != "" || p.Database != "" || p.Port != 0 || p.SSLMode != "" {
			return pq.Config{}, errors.New("give either dsn or host/port/user/password/database/sslmode, not both")
		}
		return parseDSN(p.DSN)
	}
	if p.Host == "" || p.Database == "" {
		return pq.Config{}, errors.New("host and database are required (or dsn)")
	}
	switch p.SSLMode {
	case "", "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		return pq.Config{}, fmt.Errorf("sslmode %q: want disable, require, verify-ca or verify-full", p.SSLMode)
	}
	port := p.Port
	if port == 0 {
		port = 5432
	}
	mode := p.sslmode()
	return newConfig([]setting{
		{"host", p.Host}, {"port", strconv.Itoa(port)}, {"user", p.User}, {"password", p.Password},
		{"dbname", p.Database}, {"sslmode", mode}, {"application_name", "carpipe"},
		{"connect_timeout", strconv.Itoa(int(max(p.ConnectTimeout, time.Second) / time.Second))},
	})
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

// notShown starts every complaint about a dsn. None quotes any part of
// it: a malformed one may have cut a password anywhere, which is why
// neither lib/pq's nor net/url's errors, which quote what they could not
// read, are passed on.
const notShown = "dsn (not shown: it may hold a password): "

// quoting and encoding are the usual cures.
const (
	quoting  = "; a value with spaces goes in single quotes, as in password='a b'"
	encoding = "; characters such as @ : / ? # % and spaces in the user name or password must be percent-encoded"
)

// setting is one key and value of a connection string.
type setting struct{ key, value string }

// keywords are the keys lib/pq reads. libpq refuses any other; lib/pq
// would send it to the server as a parameter, whose error would quote it,
// and a stray word in a dsn is most often the end of a password.
var keywords = func() map[string]bool {
	out := map[string]bool{"database": true} // lib/pq's old name of dbname
	t := reflect.TypeFor[pq.Config]()
	for i := range t.NumField() {
		if k := t.Field(i).Tag.Get("postgres"); k != "" && k != "-" {
			out[k] = true
		}
	}
	return out
}()

// parseDSN reads a libpq key=value string or a postgres:// URL.
func parseDSN(dsn string) (pq.Config, error) {
	var kv []setting
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		kv, err = urlSettings(dsn)
	} else {
		kv, err = keyValues(dsn)
	}
	if err != nil {
		return pq.Config{}, err
	}
	return newConfig(kv)
}

// newConfig hands checked settings to lib/pq, and when it refuses them
// finds which one without showing lib/pq's words.
func newConfig(kv []setting) (pq.Config, error) {
	for i, s := range kv {
		if !keywords[s.key] {
			return pq.Config{}, errors.New(notShown + "the key of the setting " + after(kv[:i]) + " is not a libpq keyword" + quoting)
		}
	}
	cfg, err := pq.NewConfig(join(kv))
	if err == nil {
		return cfg, nil
	}
	if _, err := pq.NewConfig(""); err != nil {
		// The PG* environment variables, not the dsn, are at fault.
		return pq.Config{}, fmt.Errorf("postgres settings from the environment: %w", err)
	}
	for _, s := range kv {
		if _, err := pq.NewConfig(join([]setting{s})); err != nil {
			return pq.Config{}, errors.New(notShown + "lib/pq refuses the value of " + s.key)
		}
	}
	return pq.Config{}, errors.New(notShown + "lib/pq refuses the settings taken together, such as more ports than hosts")
}

// join writes settings as a key='value' string, quoted for lib/pq.
func join(kv []setting) string {
	quote := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	var b strings.Builder
	for _, s := range kv {
		if s.value != "" {
			fmt.Fprintf(&b, "%s='%s' ", s.key, quote.Replace(s.value))
		}
	}
	return b.String()
}

// after places a fault for a message by the setting before it, named only
// when its key is a keyword: anything else may be part of a password.
func after(before []setting) string {
	if len(before) == 0 {
		return "at the start"
	}
	if k := before[len(before)-1].key; keywords[k] {
		return "after the value of " + k
	}
	return fmt.Sprintf("after setting %d", len(before))
}

// keyValues splits a libpq key=value string as lib/pq does.
func keyValues(dsn string) ([]setting, error) {
	var kv []setting
	r := []rune(dsn)
	i := 0
	space := func() {
		for i < len(r) && unicode.IsSpace(r[i]) {
			i++
		}
	}
	valueOf := func(key string) string {
		if keywords[key] {
			return "the value of " + key
		}
		return "the value " + after(kv)
	}
	for {
		space()
		if i == len(r) {
			return kv, nil
		}
		start := i
		for i < len(r) && !unicode.IsSpace(r[i]) && r[i] != '=' {
			i++
		}
		key := string(r[start:i])
		space()
		if i == len(r) || r[i] != '=' {
			return nil, errors.New(notShown + "a word without = " + after(kv) + quoting)
		}
		i++
		space()
		var val []rune
		switch {
		case i == len(r): // an empty value at the end
		case r[i] == '\'':
			for i++; ; {
				if i == len(r) {
					return nil, errors.New(notShown + valueOf(key) + " opens a quote that is never closed")
				}
				c := r[i]
				i++
				if c == '\'' {
					break
				}
				if c == '\\' && i < len(r) {
					c = r[i]
					i++
				}
				val = append(val, c)
			}
		default:
			for i < len(r) && !unicode.IsSpace(r[i]) {
				c := r[i]
				i++
				if c == '\\' {
					if i == len(r) {
						return nil, errors.New(notShown + valueOf(key) + " ends in a backslash that escapes nothing")
					}
					c = r[i]
					i++
				}
				val = append(val, c)
			}
		}
		kv = append(kv, setting{key, string(val)})
	}
}

// urlSettings reads a postgres:// URL into settings as lib/pq does.
func urlSettings(dsn string) ([]setting, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New(notShown + "cannot parse the postgres:// URL" + encoding)
	}
	// An @ past the host is the rest of a password that a / ? or # cut
	// short: it would be read as the database's name.
	rest := dsn[strings.Index(dsn, "//")+2:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 && strings.Contains(rest[i:], "@") {
		return nil, errors.New(notShown + "the postgres:// URL has an @ after its host" + encoding)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errors.New(notShown + "the query of the postgres:// URL (after ?) is malformed")
	}
	var kv []setting
	if u.User != nil {
		pw, _ := u.User.Password()
		kv = append(kv, setting{"user", u.User.Username()}, setting{"password", pw})
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "" // lib/pq's reading: several hosts, or no port
	}
	kv = append(kv, setting{"host", host}, setting{"port", port}, setting{"dbname", strings.TrimPrefix(u.Path, "/")})
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !keywords[k] {
			return nil, errors.New(notShown + "a key in the query of the postgres:// URL (after ?) is not a libpq keyword")
		}
		kv = append(kv, setting{k, q.Get(k)})
	}
	return kv, nil
}

// connector marks the errors of opening a connection: a server that
// cannot be reached or turns carpipe away (too many clients, a password
// changed, the database dropped) is unavailable, whatever its code.
type connector struct{ *pq.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, connectError{err}
	}
	return cn, nil
}

type connectError struct{ error }

func (e connectError) Unwrap() error { return e.error }

// retry: a deadlock or serialization failure rolls the file back, and it
// loads when tried again.
func retry(err error) bool {
	var pe *pq.Error
	var bc bareConflict
	return errors.As(err, &bc) || errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// outage tells a database that is unavailable, which the engine waits out
// and then ends the run on, from an error of one file's statements, which
// fails only that file. Unavailable is: the connection lost or not made,
// and the SQLSTATE classes 08 (connection exception), 53 (insufficient
// resources) and 57P (the server shutting down or starting). Any other
// server error (bad data, a too large row, a statement timeout, XX000,
// 58xxx) is the file's. A canceled context is the run stopping, which the
// engine sees for itself.
func outage(err error) bool {
	var op *net.OpError
	var ce connectError
	var pe *pq.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &op): // before DeadlineExceeded: a network timeout is one too
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &ce):
		return true
	case errors.As(err, &pe):
		return pe.Code.Class() == "08" || pe.Code.Class() == "53" || strings.HasPrefix(string(pe.Code), "57P")
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne)
}
