package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/carpipe/carpipe/ent"
	entschema "github.com/carpipe/carpipe/ent/schema"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// embedded returns the migrations the binary carries for dialect d.
func embedded(t *testing.T, d string) []migration {
	t.Helper()
	dir, err := dialectDir(d)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(entschema.Migrations, path.Join("migrations", dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatalf("no embedded migrations for %s", d)
	}
	return ms
}

type appliedRow struct {
	Version int
	Name    string
}

func appliedRows(t *testing.T, db *sql.DB) []appliedRow {
	t.Helper()
	rows, err := db.Query("SELECT version, name FROM carpipe_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []appliedRow
	for rows.Next() {
		var r appliedRow
		if err := rows.Scan(&r.Version, &r.Name); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			ms := embedded(t, d)
			db := openFresh(t, d)
			if v, err := Version(ctx, db); err != nil || v != 0 {
				t.Fatalf("Version of an empty database = %d, %v; want 0", v, err)
			}
			applied, version, err := Migrate(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			if applied != len(ms) || version != len(ms) {
				t.Fatalf("first Migrate = %d applied, version %d; want %d, %d", applied, version, len(ms), len(ms))
			}
			rows := appliedRows(t, db)
			if len(rows) != len(ms) {
				t.Fatalf("carpipe_migrations has %v, want one row per file", rows)
			}
			for i, r := range rows {
				if r.Version != ms[i].Version || r.Name != ms[i].Name {
					t.Errorf("row %d = %+v, want version %d name %s", i, r, ms[i].Version, ms[i].Name)
				}
			}
			var appliedAt time.Time
			if err := db.QueryRow("SELECT applied_at FROM carpipe_migrations WHERE version = 1").Scan(&appliedAt); err != nil {
				t.Fatal(err)
			}
			if age := time.Since(appliedAt); age < -time.Minute || age > time.Hour {
				t.Errorf("applied_at %v is not about now (UTC)", appliedAt)
			}

			applied, version, err = Migrate(ctx, db, d)
			if err != nil || applied != 0 || version != len(ms) {
				t.Fatalf("second Migrate = %d applied, version %d, %v; want 0, %d, nil", applied, version, err, len(ms))
			}
			if v, err := Version(ctx, db); err != nil || v != len(ms) {
				t.Fatalf("Version = %d, %v; want %d", v, err, len(ms))
			}
			if n := len(appliedRows(t, db)); n != len(ms) {
				t.Fatalf("second Migrate left %d rows, want %d", n, len(ms))
			}
		})
	}
}

func TestMigrateUnknownDialect(t *testing.T) {
	db := openFresh(t, dialect.SQLite)
	if _, _, err := Migrate(context.Background(), db, dialect.MySQL); err == nil {
		t.Fatal("Migrate accepted dialect mysql")
	}
}

func TestMigrateNewerDatabase(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			n := len(embedded(t, d))
			db := openFresh(t, d)
			if _, _, err := Migrate(ctx, db, d); err != nil {
				t.Fatal(err)
			}
			newer := n + 2
			if _, err := db.Exec(fmt.Sprintf("INSERT INTO carpipe_migrations (version, name, applied_at) VALUES (%d, 'future.sql', CURRENT_TIMESTAMP)", newer)); err != nil {
				t.Fatal(err)
			}
			_, version, err := Migrate(ctx, db, d)
			want := fmt.Sprintf("database schema version %d is newer than this carpipe (%d); upgrade carpipe", newer, n)
			if err == nil || err.Error() != want {
				t.Fatalf("Migrate error = %v; want %q", err, want)
			}
			if version != newer {
				t.Errorf("Migrate version = %d, want %d", version, newer)
			}
			// The failed call must not have left the connection locked.
			if _, _, err := Migrate(ctx, db, d); err == nil || err.Error() != want {
				t.Fatalf("second Migrate error = %v; want %q", err, want)
			}
		})
	}
}

// TestMigrateConcurrent starts several migrators at once, each with its own
// pool as separate replicas would have: the embedded files, then a longer
// synthetic series that gives the replicas more chances to collide.
func TestMigrateConcurrent(t *testing.T) {
	var series []migration
	for v := 1; v <= 12; v++ {
		sql := fmt.Sprintf("CREATE TABLE t%d (x integer);\n", v)
		if v == 1 {
			sql += "CREATE TABLE applied (v integer PRIMARY KEY);\n"
		}
		sql += fmt.Sprintf("INSERT INTO applied VALUES (%d);\n", v)
		series = append(series, migration{Version: v, Name: fmt.Sprintf("%04d_t.sql", v), SQL: sql})
	}
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			n := len(embedded(t, d))
			runConcurrently(t, d, n, func(ctx context.Context, db *sql.DB) (int, int, error) {
				return Migrate(ctx, db, d)
			})
		})
		t.Run(d+" series", func(t *testing.T) {
			db := runConcurrently(t, d, len(series), func(ctx context.Context, db *sql.DB) (int, int, error) {
				return migrateFiles(ctx, db, d, series)
			})
			var n int
			if err := db.QueryRow("SELECT count(*) FROM applied").Scan(&n); err != nil || n != len(series) {
				t.Errorf("the series ran %d times (%v), want %d", n, err, len(series))
			}
		})
	}
}

// runConcurrently runs migrate from several pools on one fresh database at
// once, checks that n files were applied exactly once in all, and returns
// one of the pools.
func runConcurrently(t *testing.T, d string, n int, migrate func(context.Context, *sql.DB) (int, int, error)) *sql.DB {
	t.Helper()
	ctx := context.Background()
	driver, dsn := "sqlite", ""
	if d == dialect.Postgres {
		driver, dsn = "postgres", plugintest.PostgresDSN(t)
	} else {
		dsn = plugintest.SQLiteDSN(t)
	}
	const replicas = 6
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		applied [replicas]int
		errs    [replicas]error
		dbs     [replicas]*sql.DB
	)
	for i := range replicas {
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		dbs[i] = db
	}
	// Start from an existing, empty carpipe_migrations, as an upgrade would:
	// creating that table must not be what serialises the replicas.
	if _, _, err := migrateFiles(ctx, dbs[0], d, nil); err != nil {
		t.Fatal(err)
	}
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var v int
			applied[i], v, errs[i] = migrate(ctx, dbs[i])
			if errs[i] == nil && v != n {
				errs[i] = fmt.Errorf("version %d, want %d", v, n)
			}
		}()
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != n {
		t.Errorf("replicas applied %d files in all (%v), want %d: each exactly once", total, applied, n)
	}
	if rows := appliedRows(t, dbs[0]); len(rows) != n {
		t.Errorf("carpipe_migrations has %v, want %d rows", rows, n)
	}
	return dbs[0]
}

// TestMigrateFailedFile: a file that fails leaves nothing of itself, not
// even its own earlier statements, and the next run retries it.
func TestMigrateFailedFile(t *testing.T) {
	ctx := context.Background()
	good := []migration{
		{Version: 1, Name: "0001_a.sql", SQL: "CREATE TABLE a (x integer);\nINSERT INTO a VALUES (1);\n"},
		{Version: 2, Name: "0002_b.sql", SQL: "CREATE TABLE b (x integer);\nINSERT INTO a VALUES (2);\n"},
	}
	broken := []migration{good[0], {Version: 2, Name: "0002_b.sql", SQL: "CREATE TABLE b (x integer);\nINSERT INTO a VALUES (2);\nINSERT INTO nope VALUES (1);\n"}}
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openFresh(t, d)
			applied, version, err := migrateFiles(ctx, db, d, broken)
			if err == nil || applied != 1 || version != 1 {
				t.Fatalf("migrate = %d applied, version %d, %v; want 1, 1, an error", applied, version, err)
			}
			var n int
			if err := db.QueryRow("SELECT count(*) FROM a").Scan(&n); err != nil || n != 1 {
				t.Fatalf("table a has %d rows (%v), want 1: the failed file's insert must be rolled back", n, err)
			}
			if _, err := db.Exec("SELECT * FROM b"); err == nil {
				t.Fatal("table b exists after its migration failed")
			}
			if rows := appliedRows(t, db); len(rows) != 1 {
				t.Fatalf("carpipe_migrations has %v, want version 1 only", rows)
			}
			applied, version, err = migrateFiles(ctx, db, d, good)
			if err != nil || applied != 1 || version != 2 {
				t.Fatalf("retry = %d applied, version %d, %v; want 1, 2, nil", applied, version, err)
			}
		})
	}
}

// TestMigrateSQLiteRebuild: SQLite alters a table by rebuilding it, which
// needs foreign keys off while rows reference it; migrate must still check
// the keys before committing and switch them back on.
func TestMigrateSQLiteRebuild(t *testing.T) {
	ctx := context.Background()
	db := openFresh(t, dialect.SQLite)
	db.SetMaxOpenConns(1) // so the pragma check below sees migrate's connection
	ms := []migration{
		{Version: 1, Name: "0001_init.sql", SQL: "CREATE TABLE p (id integer PRIMARY KEY);\nCREATE TABLE c (p integer NOT NULL REFERENCES p (id));\nINSERT INTO p VALUES (1);\nINSERT INTO c VALUES (1);\n"},
		{Version: 2, Name: "0002_auto.sql", SQL: "CREATE TABLE new_p (id integer PRIMARY KEY, n text);\nINSERT INTO new_p (id) SELECT id FROM p;\nDROP TABLE p;\nALTER TABLE new_p RENAME TO p;\n"},
	}
	if _, _, err := migrateFiles(ctx, db, dialect.SQLite, ms); err != nil {
		t.Fatalf("rebuilding a referenced table: %v", err)
	}
	var fk int
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d (%v) after migrate, want 1", fk, err)
	}
	orphan := append(ms, migration{Version: 3, Name: "0003_bad.sql", SQL: "DELETE FROM p;\n"})
	_, version, err := migrateFiles(ctx, db, dialect.SQLite, orphan)
	if err == nil || version != 2 {
		t.Fatalf("migrate = version %d, %v; want 2 and an error for the orphaned row", version, err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM p").Scan(&n); err != nil || n != 1 {
		t.Fatalf("p has %d rows (%v), want 1: the bad file must be rolled back", n, err)
	}
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d (%v) after a failed migrate, want 1", fk, err)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	ms, err := loadMigrations(fstest.MapFS{
		"m/0002_b.sql": file("B"),
		"m/0001_a.sql": file("A"),
	}, "m")
	if err != nil || len(ms) != 2 || ms[0].Name != "0001_a.sql" || ms[1].SQL != "B" || ms[1].Version != 2 {
		t.Fatalf("loadMigrations = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":       {"m/0001_a.sql": file(""), "m/0003_c.sql": file("")},
		"zero":      {"m/0000_a.sql": file("")},
		"duplicate": {"m/0001_a.sql": file(""), "m/0001_b.sql": file("")},
		"bad name":  {"m/0001-a.sql": file("")},
		"stray":     {"m/0001_a.sql": file(""), "m/notes.txt": file("")},
	} {
		if ms, err := loadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: loadMigrations accepted %+v", name, ms)
		}
	}
}

// TestUniqueIndexes: de-duplication is the database's job, so its unique
// indexes must really reject duplicates.
func TestUniqueIndexes(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openFresh(t, d)
			if _, _, err := Migrate(ctx, db, d); err != nil {
				t.Fatal(err)
			}
			client := ent.NewClient(ent.Driver(entsql.OpenDB(d, db)))
			run, err := client.Run.Create().SetPipeline("p").Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			newFile := func(path, sum string) *ent.FileCreate {
				return client.File.Create().SetRun(run).SetInput("in").SetPath(path).SetPathKey(PathKey(path)).
					SetFileType("t").SetSize(1).SetSha256(sum).SetStatus("processed")
			}
			f, err := newFile("a.csv", "s1").Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newFile("a.csv", "s1").Save(ctx); !ent.IsConstraintError(err) {
				t.Fatalf("second file (in, a.csv, s1): err = %v, want a constraint error", err)
			}
			// Paths far over a btree entry's limit, differing only at the end.
			long := strings.Repeat("d/", 2000)
			for _, other := range [][2]string{{"a.csv", "s2"}, {"b.csv", "s1"}, {long + "a.csv", "s1"}, {long + "b.csv", "s1"}} {
				if _, err := newFile(other[0], other[1]).Save(ctx); err != nil {
					t.Fatalf("file %v: %v", other, err)
				}
			}

			if _, err := newFile(long+"a.csv", "s1").Save(ctx); !ent.IsConstraintError(err) {
				t.Fatalf("second file with a long path: err = %v, want a constraint error", err)
			}

			newRecord := func(typ, key string) *ent.RecordCreate {
				return client.Record.Create().SetFile(f).SetFileType(typ).SetRecordKey(key).SetPayload(`{"a":1}`)
			}
			if _, err := newRecord("t", "k1").Save(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := newRecord("t", "k1").Save(ctx); !ent.IsConstraintError(err) {
				t.Fatalf("second record (t, k1): err = %v, want a constraint error", err)
			}
			if _, err := newRecord("u", "k1").Save(ctx); err != nil {
				t.Fatalf("same key, other file type: %v", err)
			}
			// A raw insert may omit created_at, and must still hit the index.
			ins := "INSERT INTO records (file_type, record_key, payload, file_id) VALUES ('t', 'k2', '{}', ?)"
			if d == dialect.Postgres {
				ins = "INSERT INTO records (file_type, record_key, payload, file_id) VALUES ('t', 'k2', '{}', $1)"
			}
			if _, err := db.ExecContext(ctx, ins, f.ID); err != nil {
				t.Fatalf("raw insert without created_at: %v", err)
			}
			if _, err := db.ExecContext(ctx, ins, f.ID); err == nil {
				t.Fatal("raw duplicate insert of (t, k2) succeeded")
			}
			r, err := client.Record.Query().Where(func(s *entsql.Selector) { s.Where(entsql.EQ(s.C("record_key"), "k2")) }).Only(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if age := time.Since(r.CreatedAt); age < -time.Minute || age > time.Hour {
				t.Errorf("created_at from the DB default = %v, want about now", r.CreatedAt)
			}
			if n := client.Record.Query().CountX(ctx); n != 3 {
				t.Errorf("%d records, want 3", n)
			}
		})
	}
}

// TestForeignKeys: rows must point at existing parents on both dialects.
func TestForeignKeys(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openFresh(t, d)
			if _, _, err := Migrate(ctx, db, d); err != nil {
				t.Fatal(err)
			}
			client := ent.NewClient(ent.Driver(entsql.OpenDB(d, db)))
			_, err := client.Record.Create().SetFileID(12345).SetFileType("t").SetRecordKey("k").SetPayload("{}").Save(ctx)
			if !ent.IsConstraintError(err) {
				t.Fatalf("record of a missing file: err = %v, want a constraint error", err)
			}
		})
	}
}

// TestPostgresTypes pins the column types the outputs rely on.
func TestPostgresTypes(t *testing.T) {
	db := openFresh(t, dialect.Postgres)
	if _, _, err := Migrate(context.Background(), db, dialect.Postgres); err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{
		"records.payload":    "jsonb",
		"records.created_at": "timestamp with time zone",
		"records.record_key": "text",
		"rejects.errors":     "jsonb",
		"files.path":         "text",
		"files.file_time":    "timestamp with time zone",
		"runs.started_at":    "timestamp with time zone",
		"runs.id":            "bigint",
	} {
		var got string
		err := db.QueryRow("SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name || '.' || column_name = $1", col).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) || got != want {
			t.Errorf("%s is %q (%v), want %s", col, got, err, want)
		}
	}
}
