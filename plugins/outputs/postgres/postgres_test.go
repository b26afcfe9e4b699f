package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

var env = plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}

// open initialises the plugin on a fresh database, with a second handle on it.
func open(t *testing.T) (*Postgres, *sql.DB) {
	t.Helper()
	dsn := plugintest.PostgresDSN(t)
	p := &Postgres{DSN: dsn, ConnectTimeout: 5 * time.Second}
	if err := p.Init(t.Context(), env); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return p, db
}

func TestLedger(t *testing.T) {
	plugintest.Ledger(t, func(t *testing.T) (plugins.Ledger, *sql.DB) { return open(t) })
}

func TestGroup(t *testing.T) {
	plugintest.Group(t, func(t *testing.T) (plugins.Ledger, *sql.DB) { return open(t) })
}

func TestDSN(t *testing.T) {
	pw := `it's a "pass\word" `
	p := &Postgres{Host: "db.example.com", Port: 6543, User: "o'neil", Password: pw, Database: "my db", ConnectTimeout: 3 * time.Second}
	dsn, where, err := p.dsn()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		t.Fatalf("lib/pq cannot parse %q: %v", dsn, err)
	}
	if cfg.Host != p.Host || cfg.Port != 6543 || cfg.User != p.User || cfg.Password != pw || cfg.Database != p.Database ||
		string(cfg.SSLMode) != "verify-full" || cfg.ConnectTimeout != 3*time.Second {
		t.Errorf("dsn %q parses to host %q port %d user %q password %q dbname %q sslmode %q connect_timeout %v",
			dsn, cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database, cfg.SSLMode, cfg.ConnectTimeout)
	}
	if want := "at db.example.com:6543 database my db as user o'neil"; where != want {
		t.Errorf("where = %q, want %q", where, want)
	}
	if strings.Contains(where, "pass") {
		t.Errorf("where %q shows the password", where)
	}
}

func TestDSNSSLMode(t *testing.T) {
	for _, c := range []struct{ host, mode, want string }{
		{"127.0.0.1", "", "disable"},
		{"127.0.0.2", "", "disable"},
		{"localhost", "", "disable"},
		{"::1", "", "disable"},
		{"/var/run/postgresql", "", "disable"},
		{"db.example.com", "", "verify-full"},
		{"10.0.0.5", "", "verify-full"},
		{"localhost.example.com", "", "verify-full"},
		{"127.0.0.1", "require", "require"},
		{"db.example.com", "disable", "disable"},
		{"db.example.com", "verify-ca", "verify-ca"},
	} {
		p := &Postgres{Host: c.host, Database: "d", SSLMode: c.mode}
		dsn, _, err := p.dsn()
		if err != nil {
			t.Errorf("host %q sslmode %q: %v", c.host, c.mode, err)
			continue
		}
		cfg, err := pq.NewConfig(dsn)
		if err != nil {
			t.Errorf("host %q: lib/pq cannot parse %q: %v", c.host, dsn, err)
			continue
		}
		if string(cfg.SSLMode) != c.want || cfg.Host != c.host || cfg.Port != 5432 {
			t.Errorf("host %q sslmode %q: got sslmode %q host %q port %d, want %q, the host, 5432", c.host, c.mode, cfg.SSLMode, cfg.Host, cfg.Port, c.want)
		}
	}
}

func TestDSNErrors(t *testing.T) {
	const url = "postgres://u@db.example.com/d?sslmode=verify-full"
	for name, p := range map[string]*Postgres{
		"dsn and host":     {DSN: url, Host: "h"},
		"dsn and user":     {DSN: url, User: "u"},
		"dsn and password": {DSN: url, Password: "p"},
		"dsn and database": {DSN: url, Database: "d"},
		"dsn and port":     {DSN: url, Port: 5433},
		"dsn and sslmode":  {DSN: url, SSLMode: "disable"},
		"no host":          {Database: "d"},
		"no database":      {Host: "h"},
		"bad sslmode":      {Host: "h", Database: "d", SSLMode: "verify_full"},
		"sslmode typo":     {Host: "h", Database: "d", SSLMode: "true"},
	} {
		if dsn, _, err := p.dsn(); err == nil {
			t.Errorf("%s: dsn() = %q, nil; want an error (a field given next to dsn would be silently ignored)", name, dsn)
		} else if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted what dsn() refuses", name)
		}
	}
	p := &Postgres{DSN: url}
	if dsn, where, err := p.dsn(); err != nil || dsn != url || strings.Contains(where, "u@") {
		t.Errorf("dsn only: %q, %q, %v", dsn, where, err)
	}
}

func TestInitClosedPort(t *testing.T) {
	const pw = "S3cret pw 'x'"
	p := &Postgres{Host: "127.0.0.1", Port: 1, User: "loader", Password: pw, Database: "warehouse", ConnectTimeout: time.Second}
	start := time.Now()
	err := p.Init(t.Context(), env)
	if err == nil {
		p.Close()
		t.Fatal("Init against a closed port succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Init took %v to fail against a closed port", d)
	}
	msg := err.Error()
	for _, want := range []string{"127.0.0.1:1", "warehouse", "loader"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "S3cret") {
		t.Errorf("error %q shows the password", msg)
	}
}

// TestInitHidesDSNPassword: dsn is a secret too; no error may echo it.
func TestInitHidesDSNPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://loader:S3cretDSN@127.0.0.1:1/warehouse?sslmode=disable",
		"postgres://loader:S3cretDSN@127.0.0.1:notaport/warehouse",
		"host=127.0.0.1 port=1 user=loader password=S3cretDSN dbname=warehouse sslmode=bogus",
	} {
		p := &Postgres{DSN: dsn, ConnectTimeout: time.Second}
		err := p.Init(t.Context(), env)
		if err == nil {
			p.Close()
			t.Errorf("Init(%s) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "S3cretDSN") {
			t.Errorf("Init with a bad dsn: error %q shows the password", err)
		}
	}
}

// TestInitFields connects with fields, not a DSN, as a role whose password
// needs quoting: on a server that checks passwords this proves the quoting.
func TestInitFields(t *testing.T) {
	dsn := plugintest.PostgresDSN(t)
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	const pw = `a'b\c d"e`
	role := "carpipe_q_" + strings.ToLower(rand.Text()[:10])
	if _, err := admin.ExecContext(t.Context(), "CREATE ROLE "+role+" LOGIN PASSWORD "+pq.QuoteLiteral(pw)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP ROLE " + role); err != nil {
			t.Errorf("dropping role %s: %v", role, err)
		}
	})
	p := &Postgres{Host: cfg.Host, Port: int(cfg.Port), User: role, Password: pw, Database: cfg.Database, ConnectTimeout: 5 * time.Second}
	if err := p.Init(t.Context(), env); err != nil {
		t.Fatalf("Init with fields: %v", err)
	}
	defer p.Close()
	var db, user, app string
	if err := p.DB.QueryRowContext(t.Context(), "SELECT current_database(), current_user, current_setting('application_name')").Scan(&db, &user, &app); err != nil {
		t.Fatal(err)
	}
	if db != p.Database || user != role || app != "carpipe" {
		t.Errorf("connected to %q as %q, application %q; want %q, %q, carpipe", db, user, app, p.Database, role)
	}
}

func TestFatal(t *testing.T) {
	opErr := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"08006 connection failure", &pq.Error{Code: "08006"}, true},
		{"08P01 protocol violation", &pq.Error{Code: "08P01"}, true},
		{"57P01 admin shutdown", &pq.Error{Code: "57P01"}, true},
		{"57014 query canceled", &pq.Error{Code: "57014"}, true},
		{"53100 disk full", &pq.Error{Code: "53100"}, true},
		{"53300 too many connections", &pq.Error{Code: "53300"}, true},
		{"XX000 internal", &pq.Error{Code: "XX000"}, true},
		{"23505 unique violation", &pq.Error{Code: "23505"}, false},
		{"22P02 bad text representation", &pq.Error{Code: "22P02"}, false},
		{"22P05 untranslatable character", &pq.Error{Code: "22P05"}, false},
		{"23503 foreign key", &pq.Error{Code: "23503"}, false},
		{"wrapped 08006", fmt.Errorf("commit: %w", &pq.Error{Code: "08006"}), true},
		{"wrapped 23505", fmt.Errorf("commit: %w", &pq.Error{Code: "23505"}), false},
		{"io.EOF", io.EOF, true},
		{"wrapped io.EOF", fmt.Errorf("read: %w", io.EOF), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"bad conn", fmt.Errorf("x: %w", driver.ErrBadConn), true},
		{"net error", opErr, true},
		{"canceled", context.Canceled, true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"conn done", sql.ErrConnDone, true},
		{"plain", errors.New("invalid record"), false},
	} {
		if got := fatal(c.err); got != c.want {
			t.Errorf("%s: fatal(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestNulInPayload: jsonb refuses \u0000, which must fail only that file,
// on both load paths (INSERT and COPY), and leave nothing behind.
func TestNulInPayload(t *testing.T) {
	ctx := t.Context()
	p, db := open(t)
	if err := p.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	run, err := p.StartRun(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 1500} {
		info := plugins.FileInfo{Run: run, Input: "in", Path: fmt.Sprintf("nul%d.json", n), FileType: "t", SHA256: strconv.Itoa(n)}
		var b plugins.Batch
		for i := range n {
			payload := fmt.Sprintf(`{"i":%d}`, i)
			if i == n/2 {
				payload = `{"s":"a\u0000b"}`
			}
			b.Records = append(b.Records, plugins.Record{Index: i, Key: fmt.Sprintf("%d-%d", n, i), Payload: []byte(payload)})
		}
		tx, err := p.Begin(ctx, info)
		if err != nil {
			t.Fatal(err)
		}
		err = tx.Add(ctx, b)
		if err == nil {
			_, err = tx.Commit(ctx)
		}
		if rerr := tx.Rollback(); rerr != nil {
			t.Errorf("%d records: Rollback after the failure: %v", n, rerr)
		}
		var pe *pq.Error
		if err == nil || errors.Is(err, plugins.ErrFatal) || !errors.As(err, &pe) || pe.Code.Class() != "22" {
			t.Fatalf("%d records with a \\u0000: %v; want a data error (class 22) that is not fatal", n, err)
		}
		var files, records int
		if err := db.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM records)").Scan(&files, &records); err != nil {
			t.Fatal(err)
		}
		if files != 0 || records != 0 {
			t.Errorf("%d records: %d files and %d records rows left after the failure", n, files, records)
		}
		// What the engine does next: record the failure.
		if err := p.Fail(ctx, info, err.Error()); err != nil {
			t.Fatalf("Fail: %v", err)
		}
		if st, err := p.Lookup(ctx, info.Input, info.Path, info.SHA256); err != nil || st != plugins.StatusFailed {
			t.Errorf("Lookup after Fail = %q, %v", st, err)
		}
		if _, err := db.ExecContext(ctx, "DELETE FROM files"); err != nil {
			t.Fatal(err)
		}
	}
	// The connections are still good.
	tx, err := p.Begin(ctx, plugins.FileInfo{Run: run, Input: "in", Path: "ok.json", FileType: "t", SHA256: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Add(ctx, plugins.Batch{Records: []plugins.Record{{Key: "ok", Payload: []byte(`{"ok":true}`)}}}); err != nil {
		t.Fatal(err)
	}
	if c, err := tx.Commit(ctx); err != nil || c.Inserted != 1 {
		t.Fatalf("a good file after the failures: %+v, %v", c, err)
	}
}

// TestLostConnectionIsFatal ends the file's server session from outside: the
// file's next step must fail with a fatal error, not fail the file.
func TestLostConnectionIsFatal(t *testing.T) {
	ctx := t.Context()
	p, db := open(t)
	if err := p.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	run, err := p.StartRun(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := p.Begin(ctx, plugins.FileInfo{Run: run, Input: "in", Path: "a.json", FileType: "t", SHA256: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var killed bool
	err = db.QueryRowContext(ctx, `SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&killed)
	if err != nil || !killed {
		t.Fatalf("terminating the file's session: %v, %v", killed, err)
	}
	err = tx.Add(ctx, plugins.Batch{Records: []plugins.Record{{Key: "k", Payload: []byte(`{}`)}}})
	if err == nil {
		_, err = tx.Commit(ctx)
	}
	if !errors.Is(err, plugins.ErrFatal) {
		t.Fatalf("after the session was terminated: %v; want a fatal error", err)
	}
}
