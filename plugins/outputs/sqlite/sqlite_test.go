package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

var env = plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}

// open initialises the plugin on path, with a second handle on the file.
func open(t *testing.T, path string) (*SQLite, *sql.DB) {
	t.Helper()
	s := &SQLite{Path: path}
	if err := s.Init(t.Context(), env); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return s, db
}

// withTables migrates s and gives it tables.
func withTables(t testing.TB, s *SQLite, db *sql.DB, tables []plugins.Table) {
	t.Helper()
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), tables); err != nil {
		t.Fatal(err)
	}
}

func TestLedger(t *testing.T) {
	plugintest.Ledger(t, func(t *testing.T, tables []plugins.Table) (plugins.Ledger, *sql.DB) {
		s, db := open(t, filepath.Join(t.TempDir(), "carpipe.db"))
		withTables(t, s, db, tables)
		return s, db
	})
}

func TestInitCreatesFolders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "c", "carpipe.db")
	s, _ := open(t, path)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("database file after Init and Migrate: %v", err)
	}
}

// TestPathIsTaken: the file lands exactly at Path, whatever characters a
// folder name holds (the DSN is a URI, where # ? % mean something).
func TestPathIsTaken(t *testing.T) {
	for sub, name := range map[string]string{"hash": "run #1", "question": "what?", "percent": "100%25", "space": "a b"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name, "carpipe.db")
			s := &SQLite{Path: path}
			err := s.Init(t.Context(), env)
			if err == nil {
				defer s.Close()
				err = s.Migrate(t.Context())
			}
			if err != nil {
				t.Fatalf("Init and Migrate of %s: %v", path, err)
			}
			var made []string
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					made = append(made, strings.TrimPrefix(p, dir))
				}
				return nil
			})
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the database is not at Path %s (files made: %q): the path is not escaped in the DSN", path, made)
			}
		})
	}
}

func TestNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carpipe.db")
	junk := []byte(strings.Repeat("this is a text file, not a database\n", 200))
	if err := os.WriteFile(path, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &SQLite{Path: path}
	err := s.Init(t.Context(), env)
	if err == nil {
		defer s.Close()
		err = s.Migrate(t.Context())
	}
	if err == nil {
		t.Fatal("Init and Migrate of a text file succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "not a database") {
		t.Errorf("error %q should name the file and say it is not a database", msg)
	}
	if !outage(err) {
		t.Errorf("outage(%v) = false: a file that is not a database must end the run", err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != string(junk) {
		t.Error("Init or Migrate changed the file that is not a database")
	}
}

// TestReadOnlyIsFatal makes the plugin's only connection query_only, which
// fails writes with SQLITE_READONLY as a read-only file would; permission
// bits cannot do it, as the tests may run as root.
func TestReadOnlyIsFatal(t *testing.T) {
	ctx := t.Context()
	s, _ := open(t, filepath.Join(t.TempDir(), "carpipe.db"))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	run, err := s.StartRun(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	s.DB.SetMaxOpenConns(1)
	if _, err := s.DB.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
		t.Fatal(err)
	}
	info := plugins.FileInfo{Run: run, Input: "in", Path: "a.json", FileType: "t", SHA256: "00"}
	tx, err := s.Load(ctx, []plugins.FileInfo{info})
	if err == nil {
		tx.Rollback()
		t.Fatal("Load on a read-only database succeeded")
	}
	if !errors.Is(err, plugins.ErrFatal) || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("Load on a read-only database: %v; want a fatal readonly error", err)
	}
	if _, err := s.Fail(ctx, info, "x"); !errors.Is(err, plugins.ErrFatal) {
		t.Errorf("Fail on a read-only database: %v; want a fatal error", err)
	}
	// Reads still work, and Load released the writer's turn.
	if st, err := s.Lookup(ctx, "in", "a.json", "00"); err != nil || st != "" {
		t.Errorf("Lookup = %q, %v", st, err)
	}
	if _, err := s.DB.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		t.Fatal(err)
	}
	tx, err = s.Load(ctx, []plugins.FileInfo{info})
	if err != nil {
		t.Fatalf("Load once writable again: %v", err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

type outageCase struct {
	name string
	err  error
	code int // the SQLite primary code the error must carry, 0 for none
	want bool
}

// TestOutage classifies errors made by real SQLite databases: those of a
// database that cannot be used end the run, those of a file's rows fail
// the file.
func TestOutage(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, _ := open(t, filepath.Join(dir, "carpipe.db"))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) error {
		_, err := s.DB.ExecContext(ctx, q, args...)
		return err
	}
	if err := exec("INSERT INTO runs (id, pipeline, started_at) VALUES (7, 'p', CURRENT_TIMESTAMP)"); err != nil {
		t.Fatal(err)
	}
	cases := []outageCase{
		{"unique constraint", exec("INSERT INTO runs (id, pipeline, started_at) VALUES (7, 'p', CURRENT_TIMESTAMP)"), sqlite3.SQLITE_CONSTRAINT, false},
		{"foreign key", exec("INSERT INTO files (input, path, path_key, file_type, size, sha256, status, processed_at, run_id) VALUES ('i', 'p', 'p', 't', 0, 's', 'processed', CURRENT_TIMESTAMP, 99)"), sqlite3.SQLITE_CONSTRAINT, false},
		{"datatype mismatch", exec("INSERT INTO runs (id, pipeline, started_at) VALUES ('seven', 'p', CURRENT_TIMESTAMP)"), sqlite3.SQLITE_MISMATCH, false},
		{"too big", tooBig(t, s.DB), sqlite3.SQLITE_TOOBIG, false},
		{"syntax", exec("INSRT INTO runs"), sqlite3.SQLITE_ERROR, false},
		{"no such table", exec("INSERT INTO nope VALUES (1)"), sqlite3.SQLITE_ERROR, false},
		{"missing argument", exec("SELECT ?2"), 0, false},
		{"full", full(t, filepath.Join(dir, "full.db")), sqlite3.SQLITE_FULL, true},
		{"busy", busy(t, filepath.Join(dir, "busy.db")), sqlite3.SQLITE_BUSY, true},
		{"read-only", readOnly(t, filepath.Join(dir, "ro.db")), sqlite3.SQLITE_READONLY, true},
		{"folder gone", folderGone(t, filepath.Join(dir, "gone", "carpipe.db")), sqlite3.SQLITE_CANTOPEN, true},
		{"not a database", notADatabase(t, filepath.Join(dir, "text.db")), sqlite3.SQLITE_NOTADB, true},
		{"corrupt", corrupt(t, filepath.Join(dir, "corrupt.db")), sqlite3.SQLITE_CORRUPT, true},
		{"canceled", canceled(t, s.DB), 0, false},
		{"wrapped canceled", fmt.Errorf("x: %w", context.Canceled), 0, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), 0, false},
		{"conn done", fmt.Errorf("x: %w", sql.ErrConnDone), 0, true},
		{"plain error", errors.New("boom"), 0, false},
	}
	cases = append(cases, platformCases(t)...)
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: the statement did not fail", c.name)
			continue
		}
		var se *sqlite.Error
		if c.code != 0 && (!errors.As(c.err, &se) || se.Code()&0xff != c.code) {
			t.Errorf("%s: %v; want SQLite code %d", c.name, c.err, c.code)
		}
		if got := outage(c.err); got != c.want {
			t.Errorf("%s: outage(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// tooBig stores a value over the connection's length limit.
func tooBig(t *testing.T, db *sql.DB) error {
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	old, err := sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, old)
	_, err = conn.ExecContext(t.Context(), "INSERT INTO runs (pipeline, started_at) VALUES (?, CURRENT_TIMESTAMP)", strings.Repeat("x", 200))
	return err
}

// full fills a database capped at a few pages, as a full disk would.
func full(t *testing.T, path string) error {
	db := handle(t, DSN(path))
	db.SetMaxOpenConns(1) // max_page_count is the connection's
	for _, q := range []string{"CREATE TABLE t (s text)", "PRAGMA max_page_count = 4"} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.ExecContext(t.Context(), hundred+"INSERT INTO t SELECT hex(randomblob(1000)) FROM n")
	return err
}

// busy writes while another connection holds the write lock.
func busy(t *testing.T, path string) error {
	holder := handle(t, DSN(path))
	if _, err := holder.ExecContext(t.Context(), "CREATE TABLE t (s text)"); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.BeginTx(t.Context(), nil) // _txlock=immediate: takes the lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other := handle(t, "file:"+path+"?_pragma=busy_timeout(0)")
	_, err = other.ExecContext(t.Context(), "INSERT INTO t VALUES ('x')")
	return err
}

// readOnly writes to a database opened read-only.
func readOnly(t *testing.T, path string) error {
	if _, err := handle(t, DSN(path)).ExecContext(t.Context(), "CREATE TABLE t (s text)"); err != nil {
		t.Fatal(err)
	}
	_, err := handle(t, "file:"+path+"?mode=ro").ExecContext(t.Context(), "INSERT INTO t VALUES ('x')")
	return err
}

// folderGone opens a database whose folder was removed.
func folderGone(t *testing.T, path string) error {
	if _, err := handle(t, DSN(path)).ExecContext(t.Context(), "CREATE TABLE t (s text)"); err == nil {
		t.Fatal("a database in a missing folder was created")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db := handle(t, DSN(path))
	if _, err := db.ExecContext(t.Context(), "CREATE TABLE t (s text)"); err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(0) // the next statement opens the file anew
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	_, err := db.ExecContext(t.Context(), "INSERT INTO t VALUES ('x')")
	return err
}

// notADatabase reads a text file as a database.
func notADatabase(t *testing.T, path string) error {
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 500)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := handle(t, DSN(path)).ExecContext(t.Context(), "SELECT count(*) FROM sqlite_master")
	return err
}

// corrupt reads a table whose page was overwritten.
func corrupt(t *testing.T, path string) error {
	db := handle(t, "file:"+path)
	for _, q := range []string{"CREATE TABLE t (s text)", hundred + "INSERT INTO t SELECT hex(randomblob(500)) FROM n"} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Page 2, the table's root, in a file of 4096-byte pages.
	if _, err := f.WriteAt([]byte(strings.Repeat("\xff", 4096)), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var n int
	return handle(t, "file:"+path).QueryRowContext(t.Context(), "SELECT count(*) FROM t").Scan(&n)
}

// canceled is a long query whose context ends: the run stopping.
func canceled(t *testing.T, db *sql.DB) error {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rows, err := db.QueryContext(ctx, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for i := 0; rows.Next(); i++ {
		if i == 1000 {
			cancel()
		}
	}
	return rows.Err()
}

// hundred makes a table n of 100 rows for the statement after it.
const hundred = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "

func handle(t *testing.T, dsn string) *sql.DB {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// keyless is a table keyed by the records' digest, _key.
var keyless = plugins.Table{Name: "t", FileType: "t", Columns: []plugins.Column{{Name: "v", Property: "v", Type: plugins.ColText}}}

// load loads files of records keyed by their path in one transaction.
func load(ctx context.Context, s *SQLite, files []plugins.FileInfo) ([]plugins.Outcome, error) {
	tx, err := s.Load(ctx, files)
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		err := tx.Add(ctx, i, plugins.Batch{Records: []plugins.Record{{Key: f.Path, Values: []plugins.Value{{Text: "x", Valid: true}}}}})
		if err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	out, err := tx.Commit(ctx)
	if err != nil {
		tx.Rollback()
	}
	return out, err
}

// TestGroupKeepsForeignKeys: a group turns SQLite's foreign-key checks off
// for its own transaction only; the connection it used enforces them again
// afterwards, whether the group committed or was refused.
func TestGroupKeepsForeignKeys(t *testing.T) {
	s, db := open(t, filepath.Join(t.TempDir(), "carpipe.db"))
	ctx := t.Context()
	withTables(t, s, db, []plugins.Table{keyless})
	s.DB.SetMaxOpenConns(1) // the next statements run on the group's connection
	run, err := s.StartRun(ctx, "fk", "")
	if err != nil {
		t.Fatal(err)
	}
	file := func(path string, run int64) plugins.FileInfo {
		return plugins.FileInfo{Run: run, Input: "in", Path: path, FileType: "t", SHA256: path}
	}
	orphan := func() {
		t.Helper()
		_, err := s.DB.ExecContext(ctx, `INSERT INTO t (_file_id, _index, _key, v) VALUES (424242, 0, 'orphan', 'x')`)
		if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Fatalf("a record without its file was stored (%v): foreign keys are off", err)
		}
	}
	if _, err := load(ctx, s, []plugins.FileInfo{file("a", run), file("b", run)}); err != nil {
		t.Fatal(err)
	}
	orphan()
	// A run that does not exist is refused as the foreign key would.
	if _, err := load(ctx, s, []plugins.FileInfo{file("c", run), file("d", run+1000)}); err == nil ||
		!strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("a group naming a missing run: %v", err)
	}
	orphan()
	var n int
	if err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM files").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d ledger rows (%v), want the first group's 2", n, err)
	}
}
