package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/carpipe/carpipe/plugins/plugintest"
)

var dialects = []string{dialect.Postgres, dialect.SQLite}

// openFresh returns an empty database of dialect d, gone at cleanup.
func openFresh(t *testing.T, d string) *sql.DB {
	t.Helper()
	return open(t, d, dsn(t, d))
}

// dsn makes a fresh database of dialect d and returns its DSN.
func dsn(t *testing.T, d string) string {
	t.Helper()
	switch d {
	case dialect.Postgres:
		return plugintest.PostgresDSN(t)
	case dialect.SQLite:
		return plugintest.SQLiteDSN(t)
	}
	t.Fatalf("no test database for dialect %q", d)
	return ""
}

func open(t *testing.T, d, dsn string) *sql.DB {
	t.Helper()
	driver := "sqlite"
	if d == dialect.Postgres {
		driver = "postgres"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

// embedded returns the migrations the binary carries for dialect d.
func embedded(t *testing.T, d string) []migrate.File {
	t.Helper()
	dir, err := migrations(d)
	if err != nil {
		t.Fatal(err)
	}
	files, err := dir.Files()
	if err != nil || len(files) == 0 {
		t.Fatalf("no embedded migrations for %s (%v)", d, err)
	}
	return files
}

// memDir is a migration folder of files given as name, SQL, name, SQL...,
// with its atlas.sum.
func memDir(t *testing.T, nameSQL ...string) *migrate.MemDir {
	t.Helper()
	dir := &migrate.MemDir{}
	for i := 0; i < len(nameSQL); i += 2 {
		if err := dir.WriteFile(nameSQL[i], []byte(nameSQL[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := dir.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(dir, sum); err != nil {
		t.Fatal(err)
	}
	return dir
}

// schemaDiff is the DDL that would still make db's fixed tables equal the
// Ent schema; "" when they do.
func schemaDiff(t *testing.T, db *sql.DB, d string) string {
	t.Helper()
	ddl, err := pendingDDL(context.Background(), entsql.OpenDB(d, db))
	if err != nil {
		t.Fatal(err)
	}
	return ddl
}

// legacyDB builds a database as carpipe v0.1's runner left it at version
// upTo, from the copies of its files in testdata/legacy.
func legacyDB(t *testing.T, d string, upTo int) *sql.DB {
	t.Helper()
	return open(t, d, legacyDSN(t, d, upTo))
}

// legacyDSN is legacyDB's, returning the database's DSN.
func legacyDSN(t *testing.T, d string, upTo int) string {
	t.Helper()
	ctx := context.Background()
	source := dsn(t, d)
	db := open(t, d, source)
	defer db.Close()
	name, err := dialectDir(d)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "legacy", name, "*.sql"))
	if err != nil || len(files) != legacyVersion {
		t.Fatalf("legacy files %v (%v), want %d", files, err, legacyVersion)
	}
	sort.Strings(files)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// As the old runner did: SQLite rebuilds tables with foreign keys off.
	if d == dialect.SQLite {
		mustExec(t, conn, "PRAGMA foreign_keys = off")
		defer mustExec(t, conn, "PRAGMA foreign_keys = on")
	}
	mustExec(t, conn, "CREATE TABLE carpipe_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamp NOT NULL)")
	for i, f := range files[:upTo] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, conn, string(b))
		mustExec(t, conn, fmt.Sprintf("INSERT INTO carpipe_migrations VALUES (%d, '%s', CURRENT_TIMESTAMP)", i+1, filepath.Base(f)))
	}
	return source
}

func mustExec(t *testing.T, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// legacyRows fills a v3 database as carpipe v0.1 would: a run, two files
// (one with a path past the key's limit), a reject, a claim, records and a
// typed view over them.
func legacyRows(t *testing.T, db *sql.DB, d string) {
	t.Helper()
	long := strings.Repeat("d/", 300) + "b.json"
	stmts := []string{
		`INSERT INTO runs (id, pipeline, started_at, finished_at, status, holder, files_processed, records_inserted) VALUES (1, 'cars', '2024-05-01 10:00:00', '2024-05-01 10:01:00', 'ok', 'h/1/a', 2, 3)`,
		`INSERT INTO runs (id, pipeline, started_at, status, holder) VALUES (2, 'cars', '2024-05-02 10:00:00', 'running', 'h/2/b')`,
		`INSERT INTO files (id, run_id, input, path, path_key, file_type, size, sha256, status, records_total, records_inserted, records_rejected, location, processed_at)
			VALUES (1, 1, 'in', 'a.json', 'a.json', 'vehicle_status', 10, 's1', 'processed', 3, 2, 1, 'done/a.json', '2024-05-01 10:00:30')`,
		`INSERT INTO files (id, run_id, input, path, path_key, file_type, size, sha256, status, error, processed_at)
			VALUES (2, 1, 'in', '` + long + `', 'sha256:abc', 'vehicle_status', 5, 's2', 'failed', 'bad json', '2024-05-01 10:00:40')`,
		`INSERT INTO rejects (id, file_id, record_index, errors, payload) VALUES (1, 1, 2, '[{"pointer":"/status","message":"missing"}]', '{"x":1}')`,
		`INSERT INTO claims (id, input, path, path_key, holder, expires_at) VALUES (1, 'in', 'c.json', 'c.json', 'h/2/b', '2024-05-02 10:05:00')`,
		`INSERT INTO records (file_type, record_key, event_time, payload, file_id) VALUES ('vehicle_status', 'k1', '2024-05-01 09:00:00', '{"status":"ok"}', 1)`,
		`INSERT INTO records (file_type, record_key, payload, file_id) VALUES ('vehicle_status', 'k2', '{"status":"off"}', 1)`,
		`CREATE VIEW vehicle_status AS SELECT r.id AS record_id, r.file_id AS file_id FROM records AS r WHERE r.file_type = 'vehicle_status'`,
	}
	if d == dialect.Postgres {
		stmts = append(stmts, `COMMENT ON VIEW vehicle_status IS 'carpipe: typed view of file type vehicle_status; sha256:00'`)
	}
	for _, s := range stmts {
		mustExec(t, db, s)
	}
}

// dump reads the rows of carpipe v0.1's tables in a stable text form.
func dump(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		"SELECT id, pipeline, status, holder, finished_at IS NULL, files_processed, records_inserted FROM runs ORDER BY id",
		"SELECT id, run_id, input, path, path_key, file_type, size, sha256, status, records_total, records_inserted, records_rejected, error, location FROM files ORDER BY id",
		"SELECT id, file_id, record_index, errors, payload FROM rejects ORDER BY id",
		"SELECT id, input, path, path_key, holder FROM claims ORDER BY id",
		"SELECT file_type, record_key, payload, file_id FROM records ORDER BY record_key",
		"SELECT record_id, file_id FROM vehicle_status ORDER BY record_id",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				// The JSON type may reformat, not change, the value.
				if cols[i] == "errors" {
					v = strings.ReplaceAll(fmt.Sprint(v), " ", "")
				}
				fmt.Fprintf(&b, "%v|", v)
			}
			b.WriteString("\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

func tableExistsT(t *testing.T, db *sql.DB, d, table string) bool {
	t.Helper()
	ok, err := tableExists(context.Background(), db, d, table)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// revisionRows reads carpipe_revisions as version:type:applied/total.
func revisionRows(t *testing.T, db *sql.DB, d string) []string {
	t.Helper()
	revs, err := readRevisions(context.Background(), db, d)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range revs {
		out = append(out, fmt.Sprintf("%s:%s:%d/%d", r.Version, r.Type, r.Applied, r.Total))
	}
	return out
}
