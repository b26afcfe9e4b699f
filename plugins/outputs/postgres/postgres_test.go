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
	plugintest.Ledger(t, func(t *testing.T, tables []plugins.Table) (plugins.Ledger, *sql.DB) {
		p, db := open(t)
		if err := p.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Apply(t.Context(), tables); err != nil {
			t.Fatal(err)
		}
		return p, db
	})
}

func TestDSN(t *testing.T) {
	pw := `it's a "pass\word" `
	p := &Postgres{Host: "db.example.com", Port: 6543, User: "o'neil", Password: pw, Database: "my db", ConnectTimeout: 3 * time.Second}
	cfg, err := p.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != p.Host || cfg.Port != 6543 || cfg.User != p.User || cfg.Password != pw || cfg.Database != p.Database ||
		string(cfg.SSLMode) != "verify-full" || cfg.ConnectTimeout != 3*time.Second || cfg.ApplicationName != "carpipe" {
		t.Errorf("settings read as host %q port %d user %q password %q dbname %q sslmode %q connect_timeout %v application %q",
			cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database, cfg.SSLMode, cfg.ConnectTimeout, cfg.ApplicationName)
	}
	if want := "at db.example.com:6543 database my db as user o'neil"; where(cfg) != want {
		t.Errorf("where = %q, want %q", where(cfg), want)
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
		cfg, err := p.config()
		if err != nil {
			t.Errorf("host %q sslmode %q: %v", c.host, c.mode, err)
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
		if _, err := p.config(); err == nil {
			t.Errorf("%s: config() succeeded; want an error (a field given next to dsn would be silently ignored)", name)
		} else if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted what config() refuses", name)
		}
	}
	p := &Postgres{DSN: url}
	cfg, err := p.config()
	if err != nil || cfg.Host != "db.example.com" || cfg.User != "u" || cfg.Database != "d" || cfg.SSLMode != "verify-full" {
		t.Errorf("dsn only: %+v, %v", cfg, err)
	}
}

// TestParseDSNAsLibPQ: a well-formed dsn reads as lib/pq itself reads it.
func TestParseDSNAsLibPQ(t *testing.T) {
	for _, dsn := range []string{
		`host=db.example.com port=6543 user=loader password=plain dbname=warehouse sslmode=require`,
		`host=db user=loader password='with spaces and \'quotes\'' dbname=w`,
		`  host = db   password = a\ b\\c  dbname=w connect_timeout=7`,
		`host=db password=it'sfine dbname=`,
		`host=/var/run/postgresql dbname=w database=other`,
		`host=h1,h2 port=5432,5433 dbname=w target_session_attrs=read-write`,
		`host=db password='' dbname=w application_name='my app'`,
		`postgres://loader:p%40ss%2Fw%20rd@db.example.com:6543/warehouse?sslmode=require&connect_timeout=4`,
		`postgresql://loader:a@b@db/w`,
		`postgres://db/w?user=loader&password=p+q`,
		`postgres://[::1]:5433/w`,
		`postgres://db`,
	} {
		want, err := pq.NewConfig(dsn)
		if err != nil {
			t.Fatalf("lib/pq refuses %q: %v", dsn, err)
		}
		got, err := parseDSN(dsn)
		if err != nil {
			t.Errorf("parseDSN(%q): %v", dsn, err)
			continue
		}
		if got.Host != want.Host || got.Port != want.Port || got.User != want.User || got.Password != want.Password ||
			got.Database != want.Database || got.SSLMode != want.SSLMode || got.ConnectTimeout != want.ConnectTimeout ||
			got.ApplicationName != want.ApplicationName || got.TargetSessionAttrs != want.TargetSessionAttrs || len(got.Multi) != len(want.Multi) {
			t.Errorf("parseDSN(%q) = %+v\nlib/pq reads %+v", dsn, got, want)
		}
	}
}

// TestHostileDSN: whatever shape a dsn has, no piece of its password (3
// characters or more) appears in an error, from Validate or from Init.
func TestHostileDSN(t *testing.T) {
	for _, c := range []struct {
		dsn, password string
		valid         bool // well formed: only connecting fails
	}{
		{`host=127.0.0.1 port=1 user=loader password=Zq9 Xw7Kv dbname=d sslmode=disable`, "Zq9 Xw7Kv", false},
		{`host=127.0.0.1 port=1 user=loader password=Jr4 Mv8=Tq2 dbname=d`, "Jr4 Mv8=Tq2", false},
		{`host=127.0.0.1 port=1 user=loader password='Hb5Wk9Rz dbname=d`, "Hb5Wk9Rz", false},
		{`host=127.0.0.1 port=1 user=loader password=Pf6Yn3\`, `Pf6Yn3\`, false},
		{`Wc3Ls8Nq`, "Wc3Ls8Nq", false},
		{`password='Ub7 Ke4'Sx2 host=127.0.0.1 port=1`, "Ub7 Ke4'Sx2", false},
		{`host=127.0.0.1 port=1 password=Xj3Fh6 connect_timeout=Xj3Fh6`, "Xj3Fh6", false},
		{`postgres://loader:Zk5/Bq7Wd@127.0.0.1:1/d`, "Zk5/Bq7Wd", false},
		{`postgres://loader:4821/Vy6Hm@127.0.0.1:1/d`, "4821/Vy6Hm", false},
		{`postgres://loader:Gx2#Tn5Rj@127.0.0.1:1/d`, "Gx2#Tn5Rj", false},
		{`postgres://loader:Mq7?Lw3Zc@127.0.0.1:1/d`, "Mq7?Lw3Zc", false},
		{`postgres://loader:Ny4 Fr8Kb@127.0.0.1:1/d`, "Ny4 Fr8Kb", false},
		{`postgres://loader:Jt9%zzWq4@127.0.0.1:1/d`, "Jt9%zzWq4", false},
		{`postgres://loader:Hs8Dk2Wm@127.0.0.1:notaport/d`, "Hs8Dk2Wm", false},
		{`postgres://loader@127.0.0.1:1/d?sslmode=disable&password=Cv5&Bn2Qx`, "Cv5&Bn2Qx", false},
		{`postgres://loader:Qm3Zt7@127.0.0.1:1/d?sslmode=Qm3Zt7`, "Qm3Zt7", false},
		{`host=127.0.0.1 port=1 user=loader password='Fq3 \'Zx9\' Mk2' dbname=d sslmode=disable`, "Fq3 'Zx9' Mk2", true},
		{`postgres://loader:Tg7%2FYp4%40Rw@127.0.0.1:1/d?sslmode=disable`, "Tg7/Yp4@Rw", true},
		{`postgresql://loader:Vb2@Kj6Hn@127.0.0.1:1/d?sslmode=disable`, "Vb2@Kj6Hn", true},
	} {
		p := &Postgres{DSN: c.dsn, ConnectTimeout: time.Second}
		verr := p.Validate()
		if (verr == nil) != c.valid {
			t.Errorf("Validate(%s) = %v; want an error: %v", c.dsn, verr, !c.valid)
		}
		if verr != nil {
			if leak := leaked(verr.Error(), c.password); leak != "" {
				t.Errorf("Validate(%s): %q shows %q of the password", c.dsn, verr, leak)
			}
			if !strings.HasPrefix(verr.Error(), notShown) {
				t.Errorf("Validate(%s): %q does not say why the dsn is not shown", c.dsn, verr)
			}
		}
		err := p.Init(t.Context(), env)
		if err == nil {
			p.Close()
			t.Errorf("Init(%s) succeeded", c.dsn)
			continue
		}
		if leak := leaked(err.Error(), c.password); leak != "" {
			t.Errorf("Init(%s): %q shows %q of the password", c.dsn, err, leak)
		}
		if c.valid && !strings.Contains(err.Error(), "cannot connect to postgres at 127.0.0.1:1 database d as user loader") {
			t.Errorf("Init(%s): %q does not say where it could not connect", c.dsn, err)
		}
	}
}

// leaked returns a piece of pw, 3 characters or longer, that msg holds.
func leaked(msg, pw string) string {
	r := []rune(pw)
	for i := 0; i+3 <= len(r); i++ {
		if s := string(r[i : i+3]); strings.Contains(msg, s) {
			return s
		}
	}
	return ""
}

// TestDSNMessages: a malformed dsn is told apart by the part at fault.
func TestDSNMessages(t *testing.T) {
	for _, c := range []struct{ dsn, want string }{
		{`host=h password=a b dbname=d`, `a word without = after the value of password`},
		{`secret`, `a word without = at the start`},
		{`host=h password='a b`, `the value of password opens a quote that is never closed`},
		{`host=h password=ab\`, `the value of password ends in a backslash`},
		{`host=h password=a b=c`, `the key of the setting after the value of password is not a libpq keyword`},
		{`host=h port=x`, `lib/pq refuses the value of port`},
		{`host=h sslmode=on`, `lib/pq refuses the value of sslmode`},
		{`host=h1,h2,h3 port=1,2`, `the settings taken together`},
		{`postgres://u:a/b@h/d`, `cannot parse the postgres:// URL`},
		{`postgres://u:12/b@h/d`, `an @ after its host`},
		{`postgres://h/d?sslmode=disable;x`, `the query of the postgres:// URL`},
		{`postgres://h/d?sslmod=disable`, `a key in the query of the postgres:// URL (after ?) is not a libpq keyword`},
	} {
		_, err := parseDSN(c.dsn)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseDSN(%s) = %v; want %q", c.dsn, err, c.want)
		}
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

func TestOutage(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	// A dial past its deadline: a network timeout, which is also
	// context.DeadlineExceeded to errors.Is.
	_, timeout := (&net.Dialer{Deadline: time.Now().Add(-time.Second)}).Dial("tcp", "127.0.0.1:1")
	if !errors.Is(timeout, context.DeadlineExceeded) {
		t.Fatalf("a dial past its deadline gave %v", timeout)
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"08000 connection exception", &pq.Error{Code: "08000"}, true},
		{"08003 connection does not exist", &pq.Error{Code: "08003"}, true},
		{"08006 connection failure", &pq.Error{Code: "08006"}, true},
		{"08001 cannot establish", &pq.Error{Code: "08001"}, true},
		{"08P01 protocol violation", &pq.Error{Code: "08P01"}, true},
		{"53000 insufficient resources", &pq.Error{Code: "53000"}, true},
		{"53100 disk full", &pq.Error{Code: "53100"}, true},
		{"53200 out of memory", &pq.Error{Code: "53200"}, true},
		{"53300 too many connections", &pq.Error{Code: "53300"}, true},
		{"57P01 admin shutdown", &pq.Error{Code: "57P01"}, true},
		{"57P02 crash shutdown", &pq.Error{Code: "57P02"}, true},
		{"57P03 cannot connect now", &pq.Error{Code: "57P03"}, true},
		{"57P04 database dropped", &pq.Error{Code: "57P04"}, true},
		{"57P05 idle session timeout", &pq.Error{Code: "57P05"}, true},
		{"57014 statement timeout", &pq.Error{Code: "57014"}, false},
		{"57000 operator intervention", &pq.Error{Code: "57000"}, false},
		{"22021 invalid byte sequence", &pq.Error{Code: "22021"}, false},
		{"54000 index row too big", &pq.Error{Code: "54000"}, false},
		{"22008 datetime out of range", &pq.Error{Code: "22008"}, false},
		{"XX000 invalid memory alloc request", &pq.Error{Code: "XX000", Message: "invalid memory alloc request size 1073741824"}, false},
		{"XX001 data corrupted", &pq.Error{Code: "XX001"}, false},
		{"22P02 bad text representation", &pq.Error{Code: "22P02"}, false},
		{"22P05 untranslatable character", &pq.Error{Code: "22P05"}, false},
		{"23505 unique violation", &pq.Error{Code: "23505"}, false},
		{"23503 foreign key", &pq.Error{Code: "23503"}, false},
		{"58030 io error", &pq.Error{Code: "58030"}, false},
		{"58P01 undefined file", &pq.Error{Code: "58P01"}, false},
		{"40P01 deadlock (a retry)", &pq.Error{Code: "40P01"}, false},
		{"28P01 password failed on a live connection", &pq.Error{Code: "28P01"}, false},
		{"wrapped 08006", fmt.Errorf("commit: %w", &pq.Error{Code: "08006"}), true},
		{"wrapped 57P01", fmt.Errorf("copy: %w", &pq.Error{Code: "57P01"}), true},
		{"wrapped 23505", fmt.Errorf("commit: %w", &pq.Error{Code: "23505"}), false},
		{"connecting: 28P01", connectError{&pq.Error{Code: "28P01"}}, true},
		{"connecting: 3D000", fmt.Errorf("begin: %w", connectError{&pq.Error{Code: "3D000"}}), true},
		{"connecting: refused", connectError{refused}, true},
		{"connecting, canceled", connectError{fmt.Errorf("dial: %w", context.Canceled)}, false},
		{"io.EOF", io.EOF, true},
		{"wrapped io.EOF", fmt.Errorf("read: %w", io.EOF), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"bad conn", fmt.Errorf("x: %w", driver.ErrBadConn), true},
		{"conn done", sql.ErrConnDone, true},
		{"connection refused", refused, true},
		{"connection reset", fmt.Errorf("x: %w", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}), true},
		{"dial timeout", timeout, true},
		{"dns", &net.DNSError{Err: "no such host", Name: "db.example.com"}, true},
		{"canceled", context.Canceled, false},
		{"wrapped canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"plain", errors.New("invalid record"), false},
	} {
		if got := outage(c.err); got != c.want {
			t.Errorf("%s: outage(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestOutageReal classifies errors a real server gives: a file's bad data
// or slow statement is the file's; a server that will not take the
// connection is an outage.
func TestOutageReal(t *testing.T) {
	ctx := t.Context()
	p, _ := open(t)
	if _, err := p.DB.ExecContext(ctx, "CREATE TABLE u (s text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ code, query string }{
		{"22021", `SELECT convert_from('\xff'::bytea, 'UTF8')`},
		{"22008", `SELECT make_timestamp(300000, 1, 1, 0, 0, 0)`},
		{"22P02", `SELECT 'x'::int`},
		{"23505", `INSERT INTO u VALUES ('a'), ('a')`},
		{"54000", `INSERT INTO u SELECT string_agg(md5(i::text), '') FROM generate_series(1, 2000) i`},
		{"57014", `SET LOCAL statement_timeout = '10ms'; SELECT pg_sleep(5)`},
	} {
		tx, err := p.DB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.ExecContext(ctx, c.query)
		tx.Rollback()
		var pe *pq.Error
		if !errors.As(err, &pe) || string(pe.Code) != c.code {
			t.Errorf("%s gave %v, want SQLSTATE %s", c.query, err, c.code)
			continue
		}
		if outage(err) {
			t.Errorf("%s (%s): an outage, want the file's error", c.code, err)
		}
	}
	// Its own session terminated: 57P01, or the connection lost.
	conn, err := p.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
	conn.Close()
	if err == nil || !outage(err) {
		t.Errorf("a terminated session: %v; want an outage", err)
	}

	cfg, err := pq.NewConfig(plugintest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*pq.Config){
		"no database": func(c *pq.Config) { c.Database = "carpipe_none_" + strings.ToLower(rand.Text()[:8]) },
		"closed port": func(c *pq.Config) { c.Host, c.Port = "127.0.0.1", 1 },
	} {
		c := cfg.Clone()
		change(&c)
		pc, err := pq.NewConnectorConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(connector{pc})
		_, err = db.ExecContext(ctx, "SELECT 1")
		db.Close()
		if err == nil || !outage(err) {
			t.Errorf("%s: %v; want an outage", name, err)
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
	table := plugins.Table{Name: "t", FileType: "t", Columns: []plugins.Column{{Name: "s", Property: "s", Type: plugins.ColJSON}}}
	if _, err := p.Apply(ctx, []plugins.Table{table}); err != nil {
		t.Fatal(err)
	}
	run, err := p.StartRun(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	load := func(info plugins.FileInfo, b plugins.Batch) (plugins.Counts, error) {
		tx, err := p.Load(ctx, []plugins.FileInfo{info})
		if err != nil {
			return plugins.Counts{}, err
		}
		defer tx.Rollback()
		if err := tx.Add(ctx, 0, b); err != nil {
			return plugins.Counts{}, err
		}
		out, err := tx.Commit(ctx)
		if err != nil {
			return plugins.Counts{}, err
		}
		return out[0].Counts, out[0].Err
	}
	for _, n := range []int{3, 1500} {
		info := plugins.FileInfo{Run: run, Input: "in", Path: fmt.Sprintf("nul%d.json", n), FileType: "t", SHA256: strconv.Itoa(n)}
		var b plugins.Batch
		for i := range n {
			v := fmt.Sprintf(`{"i":%d}`, i)
			if i == n/2 {
				v = `"a\u0000b"`
			}
			b.Records = append(b.Records, plugins.Record{Index: i, Key: fmt.Sprintf("%d-%d", n, i),
				Values: []plugins.Value{{Text: v, Valid: true}}, Payload: []byte(`{"s":` + v + `}`)})
		}
		_, err := load(info, b)
		var pe *pq.Error
		if err == nil || errors.Is(err, plugins.ErrFatal) || !errors.As(err, &pe) || pe.Code.Class() != "22" {
			t.Fatalf("%d records with a \\u0000: %v; want a data error (class 22) that is not fatal", n, err)
		}
		var files, records int
		if err := db.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM t)").Scan(&files, &records); err != nil {
			t.Fatal(err)
		}
		if files != 0 || records != 0 {
			t.Errorf("%d records: %d files and %d rows left after the failure", n, files, records)
		}
		// What the engine does next: record the failure.
		if _, err := p.Fail(ctx, info, err.Error()); err != nil {
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
	c, err := load(plugins.FileInfo{Run: run, Input: "in", Path: "ok.json", FileType: "t", SHA256: "ok"},
		plugins.Batch{Records: []plugins.Record{{Key: "ok", Values: []plugins.Value{{Text: "true", Valid: true}}, Payload: []byte(`{"s":true}`)}}})
	if err != nil || c.Inserted != 1 {
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
	if _, err := p.Apply(ctx, []plugins.Table{{Name: "t", FileType: "t"}}); err != nil {
		t.Fatal(err)
	}
	run, err := p.StartRun(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := p.Load(ctx, []plugins.FileInfo{{Run: run, Input: "in", Path: "a.json", FileType: "t", SHA256: "a"}})
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
	err = tx.Add(ctx, 0, plugins.Batch{Records: []plugins.Record{{Key: "k", Payload: []byte(`{}`)}}})
	if err == nil {
		_, err = tx.Commit(ctx)
	}
	if !errors.Is(err, plugins.ErrFatal) {
		t.Fatalf("after the session was terminated: %v; want a fatal error", err)
	}
}
