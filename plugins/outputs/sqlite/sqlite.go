// Package sqlite stores records and the file ledger in an embedded SQLite
// file: the default that needs no database server.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"entgo.io/ent/dialect"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
)

//go:embed sample.yaml
var sample string

func init() {
	plugins.Default.AddOutput(plugins.OutputSpec{
		Name:   "sqlite",
		Doc:    "Stores records and the file ledger in an embedded SQLite database file.",
		Sample: sample,
		New:    func() any { return &SQLite{Store: store.Store{Dialect: dialect.SQLite}} },
	})
}

// SQLite is the output's config and its open database.
type SQLite struct {
	Path string `yaml:"path" required:"true" carpipe:"path" doc:"the database file; run and migrate create it when missing"`

	store.Store `yaml:"-"`
}

var (
	_ plugins.Ledger  = (*SQLite)(nil)
	_ plugins.Claimer = (*SQLite)(nil)
	_ plugins.Initer  = (*SQLite)(nil)
	_ plugins.Closer  = (*SQLite)(nil)
)

// DSN is the modernc connection string carpipe uses for a database file.
func DSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)",
		"cache_size(-65536)", "wal_autocheckpoint(10000)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// Times round-trip only in SQLite's own format: the driver's default
	// (Go's String) cannot be read back for some zones.
	q.Set("_time_format", "sqlite")
	return "file:" + escapePath(path) + "?" + q.Encode()
}

// readOnlyDSN opens an existing file for reading only: no journal mode
// is set, since that writes.
func readOnlyDSN(path string) string {
	q := url.Values{}
	// foreign_keys only sets the connection: Ent's planner wants it on.
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("mode", "ro")
	q.Set("_time_format", "sqlite")
	return "file:" + escapePath(path) + "?" + q.Encode()
}

// escapePath: SQLite decodes %HH in a URI path; ? and # would end it.
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// Init opens the database file, creating it unless env is read-only.
func (s *SQLite) Init(ctx context.Context, env plugins.Env) error {
	dsn := DSN(s.Path)
	if env.ReadOnly {
		// A mistyped path must not leave a new database behind.
		if _, err := os.Stat(s.Path); errors.Is(err, os.ErrNotExist) {
			return plugins.NotMigrated(fmt.Sprintf("no database file at %s (is the path right?)", s.Path))
		}
		dsn = readOnlyDSN(s.Path)
	} else if dir := filepath.Dir(s.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("opening %s: %w", s.Path, err)
	}
	// Every process on the file must find the same holders' folder,
	// whatever path leads it there.
	holders := s.Path
	if p, err := filepath.EvalSymlinks(holders); err == nil {
		holders = p
	}
	if p, err := filepath.Abs(holders); err == nil {
		holders = p
	}
	s.Store = store.Store{DB: db, Dialect: dialect.SQLite, Loader: newLoader, Fatal: outage, Serial: true, Log: env.Logger,
		Holders: holders + "-holders"}
	s.Store.Open()
	return nil
}

// outage tells a database file that cannot be used, which the engine
// waits out and then ends the run on, from an error of one file's rows,
// which fails only that file. Unusable is: the file cannot be opened or
// its folder is gone (CANTOPEN), the disk fails (IOERR), the disk is full
// or memory runs out (FULL, NOMEM: the "insufficient resources" of
// PostgreSQL's class 53), the file may not be written (READONLY, PERM), or
// another process keeps its lock past busy_timeout (BUSY, LOCKED,
// PROTOCOL). A file that is not a database or is corrupt (NOTADB, CORRUPT)
// is one too, though waiting will not mend it: no data file is at fault,
// and failing them all would move every one to on_failure, where stopping
// leaves them in their inputs until the database is repaired. The rest (a
// constraint, TOOBIG, MISMATCH, RANGE, an SQL error) is the file's. A
// canceled context is the run stopping, which the engine sees for itself.
func outage(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM,
			sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
			sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return true
		}
		return false
	}
	return errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn)
}
