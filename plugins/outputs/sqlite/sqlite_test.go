package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestLedger(t *testing.T) {
	plugintest.Ledger(t, func(t *testing.T) (plugins.Ledger, *sql.DB) {
		return open(t, filepath.Join(t.TempDir(), "carpipe.db"))
	})
}

func TestGroup(t *testing.T) {
	plugintest.Group(t, func(t *testing.T) (plugins.Ledger, *sql.DB) {
		return open(t, filepath.Join(t.TempDir(), "carpipe.db"))
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
	if !fatal(err) {
		t.Errorf("fatal(%v) = false: a file that is not a database must end the run", err)
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
	tx, err := s.Begin(ctx, info)
	if err == nil {
		tx.Rollback()
		t.Fatal("Begin on a read-only database succeeded")
	}
	if !errors.Is(err, plugins.ErrFatal) || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("Begin on a read-only database: %v; want a fatal readonly error", err)
	}
	if err := s.Fail(ctx, info, "x"); !errors.Is(err, plugins.ErrFatal) {
		t.Errorf("Fail on a read-only database: %v; want a fatal error", err)
	}
	// Reads still work, and Begin released the writer's turn.
	if st, err := s.Lookup(ctx, "in", "a.json", "00"); err != nil || st != "" {
		t.Errorf("Lookup = %q, %v", st, err)
	}
	if _, err := s.DB.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		t.Fatal(err)
	}
	tx, err = s.Begin(ctx, info)
	if err != nil {
		t.Fatalf("Begin once writable again: %v", err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// TestFatal classifies real SQLite errors and the context/sql sentinels.
func TestFatal(t *testing.T) {
	ctx := t.Context()
	s, _ := open(t, filepath.Join(t.TempDir(), "carpipe.db"))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) error {
		_, err := s.DB.ExecContext(ctx, q)
		return err
	}
	if err := exec("INSERT INTO runs (id, pipeline, started_at) VALUES (7, 'p', CURRENT_TIMESTAMP)"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"unique constraint", exec("INSERT INTO runs (id, pipeline, started_at) VALUES (7, 'p', CURRENT_TIMESTAMP)"), false},
		{"foreign key", exec("INSERT INTO files (input, path, path_key, file_type, size, sha256, status, processed_at, run_id) VALUES ('i', 'p', 'p', 't', 0, 's', 'processed', CURRENT_TIMESTAMP, 99)"), false},
		{"syntax", exec("INSRT INTO runs"), false},
		{"plain error", errors.New("boom"), false},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"conn done", fmt.Errorf("x: %w", sql.ErrConnDone), true},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: the statement did not fail", c.name)
			continue
		}
		if got := fatal(c.err); got != c.want {
			t.Errorf("%s: fatal(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestGroupKeepsForeignKeys: a group turns SQLite's foreign-key checks off
// for its own transaction only; the connection it used enforces them again
// afterwards, whether the group committed or was refused.
func TestGroupKeepsForeignKeys(t *testing.T) {
	s, _ := open(t, filepath.Join(t.TempDir(), "carpipe.db"))
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s.DB.SetMaxOpenConns(1) // the next statements run on the group's connection
	run, err := s.StartRun(ctx, "fk", "")
	if err != nil {
		t.Fatal(err)
	}
	file := func(path string, run int64) plugins.FileData {
		return plugins.FileData{Info: plugins.FileInfo{Run: run, Input: "in", Path: path, FileType: "t", SHA256: path},
			Batch: plugins.Batch{Records: []plugins.Record{{Key: path, Payload: []byte(`{}`)}}}}
	}
	orphan := func() {
		t.Helper()
		_, err := s.DB.ExecContext(ctx, `INSERT INTO records (file_type, record_key, payload, file_id, created_at)
			VALUES ('t', 'orphan', '{}', 424242, '2020-01-01 00:00:00')`)
		if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Fatalf("a record without its file was stored (%v): foreign keys are off", err)
		}
	}
	if _, err := s.LoadFiles(ctx, []plugins.FileData{file("a", run), file("b", run)}); err != nil {
		t.Fatal(err)
	}
	orphan()
	// A run that does not exist is refused as the foreign key would.
	if _, err := s.LoadFiles(ctx, []plugins.FileData{file("c", run), file("d", run+1000)}); err == nil ||
		!strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("a group naming a missing run: %v", err)
	}
	orphan()
	var n int
	if err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM files").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d ledger rows (%v), want the first group's 2", n, err)
	}
}

// TestAppendTime: the fast path writes what the driver itself would.
func TestAppendTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		time.Date(2020, 9, 13, 12, 26, 40, 0, time.UTC),
		time.Date(2020, 9, 13, 12, 26, 40, 100000, time.UTC),
		time.Date(2020, 9, 13, 12, 26, 40, 123456000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2020, 1, 1, 2, 0, 0, 0, time.FixedZone("", 2*3600)),
	}
	for range 10000 {
		times = append(times, time.UnixMicro(r.Int64N(400_000_000_000_000)-100_000_000_000_000).UTC())
	}
	for _, ts := range times {
		if got, want := string(appendTime(nil, ts)), ts.Format(timeLayout); got != want {
			t.Fatalf("%v: %q, want %q", ts, got, want)
		}
	}
}
