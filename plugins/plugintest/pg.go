// Package plugintest holds helpers for the tests of plugins: real databases
// to test outputs against.
package plugintest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"  // driver "postgres"
	_ "modernc.org/sqlite" // driver "sqlite"
)

// EnvPostgres names the variable holding a DSN to the admin database of the
// PostgreSQL server that tests use.
const EnvPostgres = "CARPIPE_TEST_PG"

const defaultAdminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// answerTimeout is how long a configured server gets to answer before the
// tests fall back to a throw-away cluster.
const answerTimeout = 5 * time.Second

var (
	serverOnce sync.Once
	serverDSN  string
	serverDB   *sql.DB
	serverErr  error
	serverNote string // why the throw-away cluster is used, if it is
)

// PostgresDSN returns the DSN of a fresh, empty database on a real server, dropped at cleanup.
//
// The server is $CARPIPE_TEST_PG (a DSN to its admin database), else
// postgres://postgres@127.0.0.1:5432/postgres. When it does not answer and
// initdb is installed, a throw-away cluster is started once per test binary
// (see startLocal). With neither, the test fails: a missing database must
// never pass as a skipped test.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { serverDSN, serverDB, serverErr = server() })
	if serverErr != nil {
		t.Fatalf("plugintest: no PostgreSQL server for the tests: %v", serverErr)
	}
	if serverNote != "" {
		t.Log(serverNote)
	}
	name := "carpipe_t_" + randomHex(8)
	dsn, err := withDatabase(serverDSN, name)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := serverDB.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("plugintest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE: a test that leaked a connection must not leak the database.
		if _, err := serverDB.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("plugintest: dropping database %s: %v", name, err)
		}
	})
	return dsn
}

// server finds the admin database to create test databases on.
func server() (string, *sql.DB, error) {
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		dsn = defaultAdminDSN
	}
	db, err0 := openAdmin(dsn, answerTimeout)
	if err0 == nil {
		return dsn, db, nil
	}
	local, err := startLocal()
	if err != nil {
		return "", nil, fmt.Errorf("%s did not answer (%v) and no throw-away cluster could be started (%v); set %s to the DSN of a PostgreSQL admin database",
			redact(dsn), err0, err, EnvPostgres)
	}
	db, err = openAdmin(local, time.Minute)
	if err != nil {
		return "", nil, fmt.Errorf("throw-away cluster at %s: %w", local, err)
	}
	serverNote = fmt.Sprintf("plugintest: %s did not answer (%v); using a throw-away cluster at %s", redact(dsn), err0, local)
	return local, db, nil
}

func openAdmin(dsn string, timeout time.Duration) (*sql.DB, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// withDatabase points a lib/pq DSN, URL or key=value form, at database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parsing %s: %w", EnvPostgres, err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// lib/pq lets a later key win.
	return dsn + " dbname=" + name, nil
}

// redact hides a password in a URL DSN for error messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// SQLiteDSN returns a modernc.org/sqlite DSN (driver "sqlite") for a fresh
// database file in a temporary folder removed at cleanup.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "carpipe.db")
	return "file:" + p + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)"
}
