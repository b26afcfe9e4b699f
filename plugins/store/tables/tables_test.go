package tables

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/carpipe/carpipe/ent/migrate"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

var dialects = []string{dialect.Postgres, dialect.SQLite}

// open gives a fresh database of dialect d holding carpipe's fixed tables
// (made by Ent until the versioned migrations give them) and one run and
// file, whose id it returns.
func open(t *testing.T, d string) (*sql.DB, int64) {
	t.Helper()
	driver, dsn := "postgres", ""
	if d == dialect.Postgres {
		dsn = plugintest.PostgresDSN(t)
	} else {
		driver, dsn = "sqlite", plugintest.SQLiteDSN(t)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	if err := migrate.NewSchema(entsql.OpenDB(d, db)).Create(ctx); err != nil {
		t.Fatalf("creating the fixed tables: %v", err)
	}
	return db, addFile(t, db, d, "a.json")
}

// addFile records a file in the ledger, for the records' foreign key.
func addFile(t *testing.T, db *sql.DB, d, path string) int64 {
	t.Helper()
	ctx := t.Context()
	var run, id int64
	if err := db.QueryRowContext(ctx, q(d, `SELECT count(*) FROM runs`)).Scan(&run); err != nil {
		t.Fatal(err)
	}
	if run == 0 {
		if err := db.QueryRowContext(ctx, q(d, `INSERT INTO runs (pipeline, started_at, status, holder, files_processed, files_failed,
		files_skipped, files_unmatched, files_ambiguous, files_held, files_left, records_inserted, records_duplicate, records_rejected)
		VALUES ('p', CURRENT_TIMESTAMP, 'running', '', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) RETURNING id`)).Scan(&run); err != nil {
			t.Fatal(err)
		}
	} else {
		run = 1
	}
	err := db.QueryRowContext(ctx, q(d, `INSERT INTO files (run_id, input, path, path_key, file_type, size, sha256, status,
		records_total, records_inserted, records_duplicate, records_rejected, error, location, processed_at)
		VALUES (?, 'in', ?, ?, 't', 1, 'x', 'processed', 0, 0, 0, 0, '', '', CURRENT_TIMESTAMP) RETURNING id`), run, path, path).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// q writes ? placeholders as the dialect wants them.
func q(d, query string) string {
	if d != dialect.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func status() plugins.Table {
	return plugins.Table{
		Name: "vehicle_status", FileType: "vehicles_status",
		Columns: []plugins.Column{
			{Name: "vehicle_id", Property: "vehicle_id", Type: plugins.ColText},
			{Name: "report_time", Property: "report_time", Type: plugins.ColTimestamp},
			{Name: "status", Property: "status", Type: plugins.ColText},
		},
		Key: []int{0, 1}, HasTime: true, Digest: "sha256:1",
	}
}

func TestSQLSample(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db, _ := open(t, d)
			p, err := Apply(t.Context(), db, d, []plugins.Table{status()})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Changes {
				t.Logf("%+v", c)
			}
			p, err = Plan(t.Context(), db, d, []plugins.Table{status()})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", p)
		})
	}
}

var (
	_ = errors.Is
	_ = reflect.DeepEqual
	_ sync.Mutex
	_ context.Context
)
