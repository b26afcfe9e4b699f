// Package store holds what the Ent-backed outputs (postgres, sqlite) share.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"
	"modernc.org/sqlite"

	entschema "github.com/carpipe/carpipe/ent/schema"
)

// advisoryLockKey serialises Migrate across every process that shares a
// Postgres database. Fixed, so all replicas agree on it.
const advisoryLockKey int64 = 0x63617270_6d696772 // "carpmigr"

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS carpipe_migrations (
	version integer PRIMARY KEY,
	name text NOT NULL,
	applied_at timestamp NOT NULL
)`

// migration is one SQL file of a dialect.
type migration struct {
	Version int
	Name    string // file name, e.g. 0001_init.sql
	SQL     string
}

var migrationFile = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// dialectDir maps an Ent dialect to its folder under migrations/.
func dialectDir(d string) (string, error) {
	switch d {
	case dialect.Postgres:
		return "postgres", nil
	case dialect.SQLite:
		return "sqlite", nil
	}
	return "", fmt.Errorf("store: unsupported dialect %q", d)
}

// loadMigrations reads dir of fsys. Versions must run 1..N without gaps so
// that "the highest applied version" fully describes a database.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: reading migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries { // ReadDir sorts by name, so by version
		m := migrationFile.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("store: unexpected file %s in migrations; want NNNN_name.sql", path.Join(dir, e.Name()))
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("store: migration %s: want version %04d, the versions must run from 0001 without gaps", path.Join(dir, e.Name()), len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: reading migrations: %w", err)
		}
		ms = append(ms, migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	return ms, nil
}

// Migrate applies the pending embedded migrations of dialect ("postgres" or
// "sqlite3") to db, each file in its own transaction together with its row
// in carpipe_migrations. It is safe to call from several processes at once.
// It returns how many files it applied and the version the database is at.
func Migrate(ctx context.Context, db *sql.DB, dialect string) (applied int, version int, err error) {
	dir, err := dialectDir(dialect)
	if err != nil {
		return 0, 0, err
	}
	ms, err := loadMigrations(entschema.Migrations, path.Join("migrations", dir))
	if err != nil {
		return 0, 0, err
	}
	return migrateFiles(ctx, db, dialect, ms)
}

func migrateFiles(ctx context.Context, db *sql.DB, d string, ms []migration) (applied int, version int, err error) {
	if _, err := dialectDir(d); err != nil {
		return 0, 0, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("store: migrate: %w", err)
	}
	// After a failure the connection may still hold the lock or an open
	// transaction; it must not go back to the pool, so it is discarded.
	bad := false
	defer func() {
		if bad {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
	}()
	if d == dialect.Postgres {
		// Session-level lock: held across the per-file transactions below.
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", advisoryLockKey); err != nil {
			bad = true // a cancel may have raced the grant
			return 0, 0, fmt.Errorf("store: migrate: taking the migration lock: %w", err)
		}
		defer func() {
			_, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", advisoryLockKey)
			if uerr != nil {
				bad = true
			}
		}()
	}
	if d == dialect.SQLite {
		// Rebuilding a table (SQLite's ALTER) must run with foreign keys off,
		// and the pragma is a no-op inside a transaction: switch it off
		// around the transactions; step checks the keys before each commit.
		var fk int
		if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			return 0, 0, fmt.Errorf("store: migrate: %w", err)
		}
		if fk == 1 {
			if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = off"); err != nil {
				return 0, 0, fmt.Errorf("store: migrate: %w", err)
			}
			defer func() {
				if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = on"); err != nil {
					bad = true
				}
			}()
		}
	}
	for {
		done, v, err := step(ctx, conn, d, ms)
		if err != nil {
			bad = true
			return applied, v, err
		}
		if done {
			return applied, v, nil
		}
		applied++
	}
}

// step applies the first pending migration, if any, in one transaction that
// also re-reads the version, so a concurrent migrator never applies a file
// twice. It reports done when nothing was pending.
func step(ctx context.Context, conn *sql.Conn, d string, ms []migration) (done bool, version int, err error) {
	tx, err := begin(ctx, conn, d)
	if err != nil {
		return false, 0, fmt.Errorf("store: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return false, 0, fmt.Errorf("store: migrate: creating carpipe_migrations: %w", err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM carpipe_migrations").Scan(&version); err != nil {
		return false, 0, fmt.Errorf("store: migrate: reading the version: %w", err)
	}
	if version > len(ms) {
		return false, version, fmt.Errorf("database schema version %d is newer than this carpipe (%d); upgrade carpipe", version, len(ms))
	}
	if version == len(ms) {
		return true, version, tx.Commit()
	}
	m := ms[version]
	// Without arguments lib/pq uses the simple protocol and modernc runs
	// statement after statement, so a whole file goes in one Exec.
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, version, fmt.Errorf("store: migration %s: %w", m.Name, err)
	}
	if d == dialect.SQLite {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return false, version, fmt.Errorf("store: migration %s: %w", m.Name, err)
		}
	}
	ins := "INSERT INTO carpipe_migrations (version, name, applied_at) VALUES (?, ?, CURRENT_TIMESTAMP)"
	if d == dialect.Postgres {
		ins = "INSERT INTO carpipe_migrations (version, name, applied_at) VALUES ($1, $2, now() AT TIME ZONE 'UTC')"
	}
	if _, err := tx.ExecContext(ctx, ins, m.Version, m.Name); err != nil {
		return false, version, fmt.Errorf("store: migration %s: recording it: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, version, fmt.Errorf("store: migration %s: commit: %w", m.Name, err)
	}
	return false, m.Version, nil
}

// foreignKeyCheck fails when a row references a missing one, which SQLite
// did not prevent while foreign keys were off.
func foreignKeyCheck(ctx context.Context, tx txn) error {
	var table string
	err := tx.QueryRowContext(ctx, "SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1").Scan(&table)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("checking foreign keys: %w", err)
	}
	return fmt.Errorf("it leaves rows of table %s referencing missing rows", table)
}

type txn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Commit() error
	Rollback() error
}

func begin(ctx context.Context, conn *sql.Conn, d string) (txn, error) {
	if d == dialect.Postgres {
		return conn.BeginTx(ctx, nil)
	}
	// database/sql's BeginTx is DEFERRED on SQLite: two migrators could both
	// read the version before either writes. IMMEDIATE takes the write lock
	// first (waiting out busy_timeout).
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	return immediateTx{conn: conn, ctx: ctx}, nil
}

// immediateTx is a transaction opened by hand on one connection.
type immediateTx struct {
	conn *sql.Conn
	ctx  context.Context
}

func (t immediateTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(ctx, q, args...)
}

func (t immediateTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(ctx, q, args...)
}

func (t immediateTx) Commit() error {
	_, err := t.conn.ExecContext(t.ctx, "COMMIT")
	return err
}

func (t immediateTx) Rollback() error {
	_, err := t.conn.ExecContext(context.WithoutCancel(t.ctx), "ROLLBACK")
	return err
}

// Version returns the migration version of db, 0 when it has none. db must
// be opened with lib/pq ("postgres") or modernc.org/sqlite ("sqlite").
func Version(ctx context.Context, db *sql.DB) (int, error) {
	var exists string
	switch db.Driver().(type) {
	case *pq.Driver:
		exists = "SELECT CASE WHEN to_regclass('carpipe_migrations') IS NULL THEN 0 ELSE 1 END"
	case *sqlite.Driver:
		exists = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'carpipe_migrations'"
	default:
		return 0, fmt.Errorf("store: version: unsupported driver %T", db.Driver())
	}
	var n, v int
	if err := db.QueryRowContext(ctx, exists).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: version: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM carpipe_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: version: %w", err)
	}
	return v, nil
}
