// Package sqlite stores records and the file ledger in an embedded SQLite
// file: the default that needs no database server.
package sqlite

import (
	"bytes"
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
	"time"

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
		New:    func() plugins.Output { return &SQLite{} },
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
	// Times round-trip only in SQLite's own format (timeLayout): the
	// driver's default (Go's String) cannot be read back for some zones.
	q.Set("_time_format", "sqlite")
	return "file:" + escapePath(path) + "?" + q.Encode()
}

// readOnlyDSN opens an existing file for reading only: no journal mode
// is set, since that writes.
func readOnlyDSN(path string) string {
	q := url.Values{}
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
	s.Store = store.Store{DB: db, Dialect: dialect.SQLite, Loader: newLoader, Many: insertMany, Fatal: outage, Serial: true, Log: env.Logger,
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

// batchRows is how many records one INSERT carries: SQLite's cost is per
// statement, and 6 columns x 200 stays far below its variable limit.
const batchRows = 200

// loader streams a file's records into SQLite in the file's transaction.
type loader struct {
	tx       *sql.Tx
	fileType string
	fileID   int
	inserted int64
}

func newLoader(_ context.Context, _ *sql.Conn, tx *sql.Tx, fileType string, fileID int) (store.Loader, error) {
	return &loader{tx: tx, fileType: fileType, fileID: fileID}, nil
}

func (l *loader) Add(ctx context.Context, recs []plugins.Record) error {
	rows := make([]store.Row, len(recs))
	for i, r := range recs {
		rows[i] = store.Row{FileType: l.fileType, Key: r.Key, Time: r.EventTime, Payload: r.Payload, FileID: l.fileID}
	}
	n, err := insertMany(ctx, l.tx, rows)
	l.inserted += n[l.fileID]
	return err
}

func (l *loader) Merge(context.Context) (int64, error) { return l.inserted, nil }

// INSERT OR IGNORE rather than ON CONFLICT DO NOTHING: the same rows go in,
// but no constraint can abort the statement halfway, so SQLite keeps no
// statement journal of the pages it changes.
func insert(n int) string {
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO records (file_type, record_key, event_time, payload, file_id, created_at) VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?)")
	}
	return b.String()
}

// insertMany inserts rows in the order given, telling how many it
// inserted for each file. It counts affected rows rather than return them,
// which cost a tenth of the load; only when some rows were duplicates and
// they span several files does it ask which files the new rows (ids past
// the largest before, as SQLite's ids only grow) belong to.
func insertMany(ctx context.Context, tx *sql.Tx, rows []store.Row) (map[int]int64, error) {
	out := map[int]int64{}
	if len(rows) == 0 {
		return out, nil
	}
	one := true
	for _, r := range rows {
		one = one && r.FileID == rows[0].FileID
	}
	var last int64
	if !one {
		if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM records").Scan(&last); err != nil {
			return nil, err
		}
	}
	affected, err := execMany(ctx, tx, rows)
	switch {
	case err != nil:
		return nil, err
	case one:
		out[rows[0].FileID] = affected
		return out, nil
	case affected == int64(len(rows)):
		for _, r := range rows {
			out[r.FileID]++
		}
		return out, nil
	}
	res, err := tx.QueryContext(ctx, "SELECT file_id, count(*) FROM records WHERE id > ? GROUP BY file_id", last)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	for res.Next() {
		var id int
		var n int64
		if err := res.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, res.Err()
}

// execMany runs the inserts, batchRows rows a statement, and returns how
// many rows went in.
func execMany(ctx context.Context, tx *sql.Tx, rows []store.Row) (int64, error) {
	var buf []byte
	now := string(appendTime(buf, time.Now().UTC()))
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	var affected int64
	args := make([]any, 0, 6*batchRows)
	for len(rows) > 0 {
		n := min(len(rows), batchRows)
		args = args[:0]
		for _, r := range rows[:n] {
			var ts any
			if r.Time != nil {
				buf = appendTime(buf[:0], *r.Time)
				ts = string(buf)
			}
			args = append(args, r.FileType, r.Key, ts, string(r.Payload), r.FileID, now)
		}
		var res sql.Result
		var err error
		if n == batchRows {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, insert(batchRows)); err != nil {
					return 0, err
				}
			}
			res, err = full.ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, insert(n), args...)
		}
		if err != nil {
			return 0, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		affected += k
		rows = rows[n:]
	}
	return affected, nil
}

// timeLayout is how the driver writes times ("sqlite" in the DSN).
const timeLayout = "2006-01-02 15:04:05.999999999-07:00"

// appendTime writes t as the driver would in timeLayout, without
// time.Format, which was a tenth of the insert's own cost. Record times
// are UTC to the microsecond; any other time takes Format's path.
func appendTime(b []byte, t time.Time) []byte {
	if y := t.Year(); t.Location() != time.UTC || y < 0 || y > 9999 || t.Nanosecond()%1000 != 0 {
		return t.AppendFormat(b, timeLayout)
	}
	b = plugins.AppendTime(b, t, ' ')
	b = b[:len(b)-1] // the Z
	b = bytes.TrimRight(b, "0")
	b = bytes.TrimSuffix(b, []byte("."))
	return append(b, "+00:00"...)
}
