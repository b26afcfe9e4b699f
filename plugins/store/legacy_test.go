package store_test

import (
	"database/sql"
	"log/slog"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/postgres"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/plugins/store"
)

// status is the shipped vehicles_status type's table, with one more
// column of each other kind.
var status = plugins.Table{Name: "vehicles_status", FileType: "vehicles_status", HasTime: true, Key: []int{0, 1}, Digest: "sha256:1",
	Columns: []plugins.Column{
		{Name: "vehicle_id", Property: "vehicle_id", Type: plugins.ColText},
		{Name: "report_time", Property: "report_time", Type: plugins.ColTimestamp},
		{Name: "status", Property: "status", Type: plugins.ColText},
		{Name: "speed", Property: "speed", Type: plugins.ColNumber},
		{Name: "odometer", Property: "odometer", Type: plugins.ColInteger},
		{Name: "moving", Property: "moving", Type: plugins.ColBoolean},
		{Name: "tags", Property: "tags", Type: plugins.ColJSON},
	}}

// TestUpgradeRecords: a database written by carpipe v0.1 keeps its records
// in one generic table with views over it; Apply moves them into the typed
// tables, losing nothing (a value that no longer fits its column goes to
// _extra), and drops the old table and views, unless records of a type no
// schema declares would be lost.
func TestUpgradeRecords(t *testing.T) {
	for _, d := range []string{dialect.Postgres, dialect.SQLite} {
		for _, orphans := range []bool{false, true} {
			name := d
			if orphans {
				name += "/orphans"
			}
			t.Run(name, func(t *testing.T) { upgrade(t, d, orphans) })
		}
	}
}

func upgrade(t *testing.T, d string, orphans bool) {
	ctx := t.Context()
	dsn := store.LegacyDSN(t, d, 3)
	driver := map[string]string{dialect.Postgres: "postgres", dialect.SQLite: "sqlite"}[d]
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		`INSERT INTO runs (id, pipeline, started_at, finished_at, status, holder) VALUES (1, 'cars', '2024-05-01 10:00:00', '2024-05-01 10:01:00', 'ok', '')`,
		`INSERT INTO files (id, run_id, input, path, path_key, file_type, size, sha256, status, processed_at)
			VALUES (1, 1, 'in', 'a.json', 'a.json', 'vehicles_status', 10, 's1', 'processed', '2024-05-01 10:00:30')`,
		`INSERT INTO files (id, run_id, input, path, path_key, file_type, size, sha256, status, processed_at)
			VALUES (2, 1, 'in', 'b.json', 'b.json', 'vehicles_status', 10, 's2', 'processed', '2024-05-01 10:00:40')`,
		`INSERT INTO records (file_type, record_key, event_time, payload, file_id) VALUES ('vehicles_status', '["v1","2024-05-01T09:00:00.000000Z"]', '2024-05-01 09:00:00',
			'{"vehicle_id":"v1","report_time":"2024-05-01T11:00:00.1234567+02:00","status":"ok","speed":1234.5678901,"odometer":1e3,"moving":true,"tags":{"b":1,"a":[2]},"note":"kept"}', 1)`,
		// Loaded under an older schema: status was a number then.
		`INSERT INTO records (file_type, record_key, event_time, payload, file_id) VALUES ('vehicles_status', '["v2","2024-05-01T09:00:00.000000Z"]', '2024-05-01 09:00:00',
			'{"vehicle_id":"v2","report_time":"2024-05-01T09:00:00Z","status":3,"odometer":1.5}', 1)`,
		`INSERT INTO records (file_type, record_key, event_time, payload, file_id) VALUES ('vehicles_status', '["v3","2024-05-01T09:00:00.000000Z"]', '2024-05-01 09:00:00',
			'{"vehicle_id":"v3","report_time":"2024-05-01T09:00:00Z"}', 2)`,
		`CREATE VIEW vehicles_status AS SELECT r.id AS record_id, r.file_id AS file_id FROM records AS r WHERE r.file_type = 'vehicles_status'`,
	}
	if d == dialect.Postgres {
		stmts = append(stmts, `COMMENT ON VIEW vehicles_status IS 'carpipe: typed view of file type vehicles_status; sha256:00'`)
	} else {
		stmts[len(stmts)-1] = "CREATE VIEW vehicles_status AS\n-- carpipe: typed view of file type vehicles_status; sha256:00\nSELECT r.id AS record_id FROM records AS r"
	}
	if orphans {
		stmts = append(stmts, `INSERT INTO records (file_type, record_key, payload, file_id) VALUES ('gone', 'k', '{"x":1}', 2)`)
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}

	// Replicas starting together: each migrates and applies at once, and
	// the records move once.
	ledgers := []upgrader{openLedger(t, d, dsn), openLedger(t, d, dsn), openLedger(t, d, dsn)}
	errs := make(chan error, len(ledgers))
	for _, l := range ledgers {
		go func() {
			err := l.Migrate(ctx)
			if err == nil {
				_, err = l.Apply(ctx, []plugins.Table{status})
			}
			errs <- err
		}()
	}
	for range ledgers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	l := ledgers[0]

	// jsonb orders an object's keys by length first.
	extra := `{"odometer":1.5,"status":3}`
	if d == dialect.Postgres {
		extra = `{"status":3,"odometer":1.5}`
	}
	got := rows(t, db, `SELECT _file_id, _index, vehicle_id, report_time, status, speed, odometer, moving, tags, _extra FROM vehicles_status ORDER BY vehicle_id`, d)
	want := strings.Join([]string{
		`1|0|v1|2024-05-01T09:00:00.123456Z|ok|1234.5678901|1000|true|{"a":[2],"b":1}|{"note":"kept"}`,
		`1|1|v2|2024-05-01T09:00:00.000000Z|NULL|NULL|NULL|NULL|NULL|` + extra,
		`2|0|v3|2024-05-01T09:00:00.000000Z|NULL|NULL|NULL|NULL|NULL|NULL`,
	}, "\n")
	if got != want {
		t.Errorf("typed rows:\n%s\nwant\n%s", got, want)
	}
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM vehicles_status WHERE _event_time IS NOT NULL").Scan(&n)
	if err != nil || n != 3 {
		t.Errorf("%d rows with an event time (%v), want 3", n, err)
	}
	left := rows(t, db, "SELECT file_type FROM records", d)
	switch {
	case orphans && left != "gone":
		t.Errorf("records left: %q, want only the undeclared type's", left)
	case !orphans && left != "no table":
		t.Errorf("records table still there with %q", left)
	}
	// A second Apply has nothing more to move.
	if _, err := l.Apply(ctx, []plugins.Table{status}); err != nil {
		t.Fatal(err)
	}
	if again := rows(t, db, `SELECT count(*) FROM vehicles_status`, d); again != "3" {
		t.Errorf("after a second Apply: %s rows", again)
	}
}

type upgrader interface {
	plugins.Ledger
	plugins.Planner
	plugins.Closer
}

// openLedger opens the database output of dialect d on dsn.
func openLedger(t *testing.T, d, dsn string) upgrader {
	t.Helper()
	var l interface {
		upgrader
		plugins.Initer
	}
	if d == dialect.Postgres {
		l = &postgres.Postgres{DSN: dsn, ConnectTimeout: 5 * time.Second}
	} else {
		path := strings.TrimPrefix(dsn, "file:")
		l = &sqlite.SQLite{Path: path[:strings.IndexByte(path, '?')]}
	}
	if err := l.Init(t.Context(), plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rows reads a query's rows as text, "NULL" for nulls, the columns joined
// by "|" and the rows by new lines; "no table" when the query's table is
// gone. Timestamps read back in one spelling on both databases.
func rows(t *testing.T, db *sql.DB, q, d string) string {
	t.Helper()
	if d == dialect.Postgres {
		q = strings.Replace(q, "report_time,", "to_char(report_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),", 1)
		q = strings.Replace(q, "tags,", "tags::text,", 1)
		q = strings.Replace(q, "_extra FROM", "_extra::text FROM", 1)
	} else {
		// Read the stored text, which the driver would parse into a time.
		q = strings.Replace(q, "report_time,", "CAST(report_time AS TEXT),", 1)
		q = strings.Replace(q, "moving,", "CASE moving WHEN 1 THEN 'true' WHEN 0 THEN 'false' END,", 1)
	}
	rs, err := db.QueryContext(t.Context(), q)
	if err != nil {
		if strings.Contains(err.Error(), "records") && (strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "no such table")) {
			return "no table"
		}
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var out []string
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			s := "NULL"
			if v.Valid {
				s = strings.ReplaceAll(v.String, " ", "")
			}
			parts = append(parts, s)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}
