package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/postgres"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// ledger is what the database outputs offer beyond loading.
type ledger interface {
	plugins.Ledger
	plugins.History
	plugins.Locator
	plugins.Closer
	plugins.Planner
}

// keyless is the table of type t: no columns, keyed by the records' digest.
var keyless = plugins.Table{Name: "t", FileType: "t"}

// ledgers opens a fresh, migrated database of each dialect, and a plain
// handle on it.
func ledgers(t *testing.T, fn func(t *testing.T, l ledger, db *sql.DB)) {
	open := map[string]func(t *testing.T) (ledger, string, string){
		"postgres": func(t *testing.T) (ledger, string, string) {
			dsn := plugintest.PostgresDSN(t)
			return &postgres.Postgres{DSN: dsn, ConnectTimeout: 5 * time.Second}, "postgres", dsn
		},
		"sqlite": func(t *testing.T) (ledger, string, string) {
			path := filepath.Join(t.TempDir(), "h.db")
			return &sqlite.SQLite{Path: path}, "sqlite", sqlite.DSN(path)
		},
	}
	for _, name := range []string{"postgres", "sqlite"} {
		t.Run(name, func(t *testing.T) {
			l, driver, dsn := open[name](t)
			if err := l.(plugins.Initer).Init(t.Context(), plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			if err := l.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if _, err := l.Apply(t.Context(), []plugins.Table{keyless}); err != nil {
				t.Fatal(err)
			}
			fn(t, l, db)
		})
	}
}

func location(t *testing.T, db *sql.DB, sha string) string {
	t.Helper()
	var loc string
	if err := db.QueryRow("SELECT location FROM files WHERE sha256 = '" + sha + "'").Scan(&loc); err != nil {
		t.Fatal(err)
	}
	return loc
}

// load loads a file alone and returns its ledger row.
func load(t *testing.T, l ledger, f plugins.FileInfo, b plugins.Batch) int64 {
	t.Helper()
	tx, err := l.Load(t.Context(), []plugins.FileInfo{f})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Add(t.Context(), 0, b); err != nil {
		t.Fatal(err)
	}
	out, err := tx.Commit(t.Context())
	if err != nil || out[0].Err != nil {
		t.Fatal(out, err)
	}
	return out[0].Counts.FileID
}

// TestMoved: a move is recorded on the row it names, written in batches
// or when the run finishes. Two rows at one place of one size (the same
// path and size, other bytes) each get their own location, in whatever
// order their moves come.
func TestMoved(t *testing.T) {
	ledgers(t, func(t *testing.T, l ledger, db *sql.DB) {
		ctx := t.Context()
		run, _ := l.StartRun(ctx, "p", "")
		a := plugins.FileInfo{Run: run, Input: "in", Path: "x.json", FileType: "t", Size: 10, SHA256: "a"}
		idA, err := l.Fail(ctx, a, "bad")
		if err != nil {
			t.Fatal(err)
		}
		if got := location(t, db, "a"); got != "x.json" {
			t.Fatalf("a failed file is at %q before its action", got)
		}
		b := plugins.FileInfo{Run: run, Input: "in", Path: "x.json", FileType: "t", Size: 10, SHA256: "b"}
		idB := load(t, l, b, plugins.Batch{Records: []plugins.Record{{Key: "k", Payload: []byte(`{}`)}}})
		c := plugins.FileInfo{Run: run, Input: "in", Path: "x.json", FileType: "t", Size: 10, SHA256: "c"}
		idC := load(t, l, c, plugins.Batch{})
		if idA == 0 || idB == 0 || idC == 0 || idA == idB || idB == idC {
			t.Fatalf("ledger rows %d, %d, %d", idA, idB, idC)
		}
		// The oldest first, though the newest is just as much at x.json.
		for _, m := range []struct {
			id  int64
			loc string
		}{{idA, "failed/x.json"}, {idC, "processed/x-1.json"}, {idB, "processed/x.json"}, {idC, ""}} {
			if err := l.Moved(ctx, m.id, m.loc); err != nil {
				t.Fatal(err)
			}
		}
		if got := location(t, db, "a"); got != "x.json" {
			t.Errorf("a move was written before its batch: a is at %q", got)
		}
		// The run's end writes what is pending.
		if err := l.FinishRun(ctx, plugins.RunSummary{ID: run, Status: "ok", Started: time.Now(), Finished: time.Now()}); err != nil {
			t.Fatal(err)
		}
		for sha, want := range map[string]string{"a": "failed/x.json", "b": "processed/x.json", "c": ""} {
			if got := location(t, db, sha); got != want {
				t.Errorf("%s is at %q, want %q", sha, got, want)
			}
		}

		files, err := l.Files(ctx, plugins.FileQuery{Status: plugins.StatusFailed})
		if err != nil || len(files) != 1 || files[0].SHA256 != "a" || files[0].Error != "bad" || files[0].Location != "failed/x.json" {
			t.Fatalf("failed files %+v, %v", files, err)
		}
		if err := l.SetLocation(ctx, files[0].ID, "x.json"); err != nil {
			t.Fatal(err)
		}
		f, err := l.File(ctx, files[0].ID)
		if err != nil || f.Location != "x.json" || f.Run != run || f.Input != "in" || f.Size != 10 {
			t.Errorf("file %+v, %v", f, err)
		}
		if _, err := l.File(ctx, 999); !errors.Is(err, plugins.ErrNotFound) {
			t.Errorf("File(999): %v", err)
		}
		if err := l.SetLocation(ctx, 999, "x"); !errors.Is(err, plugins.ErrNotFound) {
			t.Errorf("SetLocation(999): %v", err)
		}
		all, _ := l.Files(ctx, plugins.FileQuery{})
		none, _ := l.Files(ctx, plugins.FileQuery{Since: time.Now().Add(time.Hour)})
		one, _ := l.Files(ctx, plugins.FileQuery{Limit: 1})
		if len(all) != 3 || all[0].SHA256 != "c" || len(none) != 0 || len(one) != 1 || one[0].SHA256 != "c" {
			t.Errorf("files: all %d (newest %s), since later %d, limit 1 %d", len(all), all[0].SHA256, len(none), len(one))
		}
	})
}

// TestMovedBatch: a full batch is written at once, in one go.
func TestMovedBatch(t *testing.T) {
	ledgers(t, func(t *testing.T, l ledger, db *sql.DB) {
		ctx := t.Context()
		run, _ := l.StartRun(ctx, "p", "")
		const n = 200
		var ids []int64
		for i := range n {
			f := plugins.FileInfo{Run: run, Input: "in", Path: fmt.Sprintf("f%d.json", i), FileType: "t", Size: int64(i), SHA256: fmt.Sprint(i)}
			id, err := l.Fail(ctx, f, "bad")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for i, id := range ids {
			if err := l.Moved(ctx, id, fmt.Sprintf("failed/f%d.json", i)); err != nil {
				t.Fatal(err)
			}
		}
		var moved int
		db.QueryRow("SELECT count(*) FROM files WHERE location = 'failed/' || path").Scan(&moved)
		if moved != n {
			t.Errorf("%d of %d locations written", moved, n)
		}
	})
}

func TestRunsAndRejects(t *testing.T) {
	ledgers(t, func(t *testing.T, l ledger, db *sql.DB) {
		ctx := t.Context()
		runs, err := l.Runs(ctx, 10)
		if err != nil || len(runs) != 0 {
			t.Fatalf("runs of a new database: %v, %v", runs, err)
		}
		first, _ := l.StartRun(ctx, "p", "")
		start := time.Now().Add(-time.Minute)
		l.FinishRun(ctx, plugins.RunSummary{ID: first, Started: start, Finished: start.Add(time.Second), Status: "partial", FilesProcessed: 1, RecordsRejected: 2})
		second, _ := l.StartRun(ctx, "q", "")
		runs, err = l.Runs(ctx, 0)
		if err != nil || len(runs) != 2 || runs[0].ID != second || runs[0].Status != "running" || !runs[0].Finished.IsZero() ||
			runs[1].Status != "partial" || runs[1].FilesProcessed != 1 || runs[1].RecordsRejected != 2 || runs[1].Pipeline != "p" {
			t.Fatalf("runs %+v, %v", runs, err)
		}
		if runs, _ := l.Runs(ctx, 1); len(runs) != 1 || runs[0].ID != second {
			t.Errorf("Runs(1) = %+v", runs)
		}

		f := plugins.FileInfo{Run: first, Input: "in", Path: "y.json", FileType: "t", Size: 5, SHA256: "c"}
		load(t, l, f, plugins.Batch{Rejects: []plugins.Reject{
			{Index: 3, Errors: []plugins.FieldError{{Pointer: "/b", Message: "m2"}}, Payload: []byte(`{"b":1}`)},
			{Index: 1, Errors: []plugins.FieldError{{Pointer: "", Message: "m0"}, {Pointer: "/a", Message: "m1"}}, Payload: []byte(`{"a":1}`)},
		}})
		files, _ := l.Files(ctx, plugins.FileQuery{Run: first, FileType: "t", Input: "in", Status: plugins.StatusProcessed})
		if len(files) != 1 || files[0].RecordsRejected != 2 {
			t.Fatalf("files %+v", files)
		}
		rs, err := l.Rejects(ctx, files[0].ID)
		if err != nil || len(rs) != 2 || rs[0].Index != 1 || rs[1].Index != 3 || rs[0].Payload != `{"a":1}` ||
			!slices.Equal(rs[0].Errors, []plugins.FieldError{{Pointer: "", Message: "m0"}, {Pointer: "/a", Message: "m1"}}) {
			t.Errorf("rejects %+v, %v", rs, err)
		}
	})
}
