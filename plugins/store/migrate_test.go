package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/carpipe/carpipe/ent"
	entschema "github.com/carpipe/carpipe/ent/schema"
	"github.com/carpipe/carpipe/plugins"
)

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			files := embedded(t, d)
			latest := files[len(files)-1].Version()
			db := openFresh(t, d)
			if v, err := Version(ctx, db); err != nil || v != "" {
				t.Fatalf("Version of an empty database = %q, %v; want none", v, err)
			}
			applied, version, err := Migrate(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			if applied != len(files) || version != latest {
				t.Fatalf("first Migrate = %d applied, revision %s; want %d, %s", applied, version, len(files), latest)
			}
			if ddl := schemaDiff(t, db, d); ddl != "" {
				t.Fatalf("after Migrate the tables differ from the Ent schema; Ent would still run:\n%s", ddl)
			}
			var want []string
			for _, f := range files {
				stmts, err := f.Stmts()
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprintf("%s:applied:%d/%d", f.Version(), len(stmts), len(stmts)))
			}
			if got := revisionRows(t, db, d); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("carpipe_revisions = %v, want %v", got, want)
			}
			var (
				hash string
				at   time.Time
			)
			q := "SELECT hash, executed_at FROM carpipe_revisions WHERE version = '" + files[0].Version() + "'"
			if err := db.QueryRow(q).Scan(&hash, &at); err != nil {
				t.Fatal(err)
			}
			dir, _ := migrations(d)
			sums, err := dir.Checksum()
			if err != nil {
				t.Fatal(err)
			}
			if want, err := sums.SumByName(files[0].Name()); err != nil || hash != want {
				t.Errorf("revision hash %q, want %q from atlas.sum (%v)", hash, want, err)
			}
			if age := time.Since(at); age < -time.Minute || age > time.Hour {
				t.Errorf("executed_at %v is not about now", at)
			}

			applied, version, err = Migrate(ctx, db, d)
			if err != nil || applied != 0 || version != latest {
				t.Fatalf("second Migrate = %d applied, revision %s, %v; want 0, %s, nil", applied, version, err, latest)
			}
			if v, err := Version(ctx, db); err != nil || v != latest {
				t.Fatalf("Version = %q, %v; want %s", v, err, latest)
			}
			if n := len(revisionRows(t, db, d)); n != len(files) {
				t.Fatalf("second Migrate left %d revisions, want %d", n, len(files))
			}
			if legacy, err := Legacy(ctx, db, d); err != nil || legacy {
				t.Fatalf("Legacy of a fresh database = %v, %v; want false", legacy, err)
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

// TestMigrateEditedFile: a migration changed after its sum was written is
// refused before anything runs, naming the file.
func TestMigrateEditedFile(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			name, _ := dialectDir(d)
			root := "migrations/" + name
			fsys := fstest.MapFS{}
			err := fs.WalkDir(entschema.Migrations, root, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				b, err := fs.ReadFile(entschema.Migrations, p)
				fsys[p] = &fstest.MapFile{Data: b}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			first := embedded(t, d)[0].Name()
			fsys[root+"/"+first].Data = append(fsys[root+"/"+first].Data, "CREATE TABLE sneaky (x integer);\n"...)
			_, err = loadDir(fsys, root)
			want := fmt.Sprintf("store: migration %s/%s does not match %s/atlas.sum (edited since the sum was written)", root, first, root)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("loading an edited folder: err = %v; want it to start with %q", err, want)
			}
			// The applier checks too, whatever folder it is given.
			dir := memDir(t, "1_a.sql", "CREATE TABLE a (x integer);\n")
			if err := dir.WriteFile("1_a.sql", []byte("CREATE TABLE a (x integer, y integer);\n")); err != nil {
				t.Fatal(err)
			}
			db := openFresh(t, d)
			if _, _, err := migrateDir(context.Background(), db, d, dir); !errors.Is(err, migrate.ErrChecksumMismatch) {
				t.Fatalf("migrating an edited folder: err = %v; want a checksum mismatch", err)
			}
			if tableExistsT(t, db, d, "a") {
				t.Fatal("the edited file ran")
			}
		})
	}
}

// TestMigrateLegacy upgrades a database of carpipe v0.1 with rows in every
// table: the rows stay, the tables become the Ent schema, the records and
// their views stay for the move into typed tables.
func TestMigrateLegacy(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			files := embedded(t, d)
			latest := files[len(files)-1].Version()
			db := legacyDB(t, d, legacyVersion)
			legacyRows(t, db, d)
			before := dump(t, db)
			if legacy, err := Legacy(ctx, db, d); err != nil || !legacy {
				t.Fatalf("Legacy = %v, %v; want true", legacy, err)
			}
			applied, version, err := Migrate(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			if applied != 1 || version != latest {
				t.Fatalf("Migrate = %d applied, revision %s; want 1 (the baseline), %s", applied, version, latest)
			}
			if after := dump(t, db); after != before {
				t.Fatalf("the upgrade changed rows:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if ddl := schemaDiff(t, db, d); ddl != "" {
				t.Fatalf("after the upgrade the tables differ from the Ent schema; Ent would still run:\n%s", ddl)
			}
			if got, want := revisionRows(t, db, d), []string{latest + ":baseline:0/0"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("carpipe_revisions = %v, want %v", got, want)
			}
			if tableExistsT(t, db, d, "carpipe_migrations") {
				t.Error("carpipe_migrations is still there")
			}
			if legacy, err := Legacy(ctx, db, d); err != nil || !legacy {
				t.Fatalf("Legacy after the upgrade = %v, %v; want true: the records are not moved yet", legacy, err)
			}
			// The new tables work: a file type, and the sweep's index.
			client := ent.NewClient(ent.Driver(entsql.OpenDB(d, db)))
			if _, err := client.FileType.Create().SetName("vehicle_status").SetTableName("vehicle_status").SetDigest("sha256:00").
				SetColumns([]entschema.TableColumn{{Name: "status", Property: "status", Type: "text"}}).Save(ctx); err != nil {
				t.Fatal(err)
			}
			if n := client.Run.Query().CountX(ctx); n != 2 {
				t.Errorf("%d runs through Ent, want 2", n)
			}
			applied, version, err = Migrate(ctx, db, d)
			if err != nil || applied != 0 || version != latest {
				t.Fatalf("second Migrate = %d applied, revision %s, %v; want 0, %s, nil", applied, version, err, latest)
			}
		})
	}
}

// TestMigrateLegacyOld: only carpipe v0.1's last migration is upgraded.
func TestMigrateLegacyOld(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := legacyDB(t, d, 2)
			_, _, err := Migrate(context.Background(), db, d)
			want := "store: the database is at migration 2 of carpipe v0.1, and this carpipe upgrades only from its last (3): upgrade with carpipe v0.1 first"
			if err == nil || err.Error() != want {
				t.Fatalf("Migrate error = %v; want %q", err, want)
			}
			var v int
			if err := db.QueryRow("SELECT MAX(version) FROM carpipe_migrations").Scan(&v); err != nil || v != 2 {
				t.Fatalf("carpipe_migrations at %d (%v), want 2 untouched", v, err)
			}
			for _, table := range []string{revisionsTable, "file_types"} {
				if tableExistsT(t, db, d, table) {
					t.Errorf("the refused upgrade created %s", table)
				}
			}
		})
	}
}

// TestMigrateLegacyDiffers: a v0.1 database changed by hand is not taken
// for one that matches, and the failed upgrade leaves it as it was.
func TestMigrateLegacyDiffers(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := legacyDB(t, d, legacyVersion)
			mustExec(t, db, "ALTER TABLE runs ADD COLUMN note text")
			_, _, err := Migrate(context.Background(), db, d)
			// Postgres drops the column; SQLite rebuilds the table without it.
			if err == nil || !strings.Contains(err.Error(), "differ from this carpipe's") || !strings.Contains(err.Error(), "runs") {
				t.Fatalf("Migrate error = %v; want the difference in runs", err)
			}
			if !tableExistsT(t, db, d, "carpipe_migrations") || tableExistsT(t, db, d, "file_types") || tableExistsT(t, db, d, revisionsTable) {
				t.Fatal("the failed upgrade was not rolled back")
			}
		})
	}
}

func TestMigrateNewerDatabase(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			files := embedded(t, d)
			db := openFresh(t, d)
			if _, _, err := Migrate(ctx, db, d); err != nil {
				t.Fatal(err)
			}
			future := "99990101000000"
			rrw := &revisions{q: db, d: d}
			if err := rrw.WriteRevision(ctx, &migrate.Revision{Version: future, Description: "future", Type: migrate.RevisionTypeExecute, Applied: 1, Total: 1, ExecutedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("the database is at revision %s, newer than this carpipe's last (%s); upgrade carpipe", future, files[len(files)-1].Version())
			_, version, err := Migrate(ctx, db, d)
			if err == nil || err.Error() != want {
				t.Fatalf("Migrate error = %v; want %q", err, want)
			}
			if version != future {
				t.Errorf("Migrate revision = %s, want %s", version, future)
			}
			// The failed call must not have left the connection locked.
			if _, _, err := Migrate(ctx, db, d); err == nil || err.Error() != want {
				t.Fatalf("second Migrate error = %v; want %q", err, want)
			}
			// It holds all this carpipe needs.
			if msg, err := unmigrated(ctx, db, d); err != nil || msg != "" {
				t.Fatalf("unmigrated = %q, %v; want nothing", msg, err)
			}
		})
	}
}

// TestMigrateConcurrent starts several migrators at once, each with its own
// pool as separate replicas would have, on a fresh and on a v0.1 database.
func TestMigrateConcurrent(t *testing.T) {
	for _, d := range dialects {
		n := len(embedded(t, d))
		t.Run(d+" fresh", func(t *testing.T) {
			runConcurrently(t, d, dsn(t, d), n)
		})
		t.Run(d+" legacy", func(t *testing.T) {
			source := legacyDSN(t, d, legacyVersion)
			db := open(t, d, source)
			legacyRows(t, db, d)
			before := dump(t, db)
			runConcurrently(t, d, source, 1)
			if after := dump(t, db); after != before {
				t.Fatalf("the upgrade changed rows:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// runConcurrently runs Migrate from several pools on one database at once
// and checks that n revisions were recorded exactly once in all.
func runConcurrently(t *testing.T, d, source string, n int) {
	t.Helper()
	ctx := context.Background()
	files := embedded(t, d)
	latest := files[len(files)-1].Version()
	const replicas = 6
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		applied [replicas]int
		errs    [replicas]error
		dbs     [replicas]*sql.DB
	)
	for i := range replicas {
		dbs[i] = open(t, d, source)
	}
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var v string
			applied[i], v, errs[i] = Migrate(ctx, dbs[i], d)
			if errs[i] == nil && v != latest {
				errs[i] = fmt.Errorf("revision %s, want %s", v, latest)
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
		t.Errorf("replicas recorded %d revisions in all (%v), want %d: each exactly once", total, applied, n)
	}
	if ddl := schemaDiff(t, dbs[0], d); ddl != "" {
		t.Errorf("the tables differ from the Ent schema; Ent would still run:\n%s", ddl)
	}
}

// TestMigrateFailedFile: a file that fails leaves nothing of itself, not
// even its own earlier statements, and the next run retries it.
func TestMigrateFailedFile(t *testing.T) {
	ctx := context.Background()
	a := "CREATE TABLE a (x integer);\nINSERT INTO a VALUES (1);\n"
	good := memDir(t, "1_a.sql", a, "2_b.sql", "CREATE TABLE b (x integer);\nINSERT INTO a VALUES (2);\n")
	broken := memDir(t, "1_a.sql", a, "2_b.sql", "CREATE TABLE b (x integer);\nINSERT INTO a VALUES (2);\nINSERT INTO nope VALUES (1);\n")
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openFresh(t, d)
			applied, version, err := migrateDir(ctx, db, d, broken)
			if err == nil || applied != 1 || version != "1" || !strings.Contains(err.Error(), "store: migration 2_b.sql: ") {
				t.Fatalf("migrate = %d applied, revision %s, %v; want 1, 1, an error naming 2_b.sql", applied, version, err)
			}
			var n int
			if err := db.QueryRow("SELECT count(*) FROM a").Scan(&n); err != nil || n != 1 {
				t.Fatalf("table a has %d rows (%v), want 1: the failed file's insert must be rolled back", n, err)
			}
			if tableExistsT(t, db, d, "b") {
				t.Fatal("table b exists after its migration failed")
			}
			if got := revisionRows(t, db, d); fmt.Sprint(got) != "[1:applied:2/2]" {
				t.Fatalf("carpipe_revisions = %v, want 1 only", got)
			}
			applied, version, err = migrateDir(ctx, db, d, good)
			if err != nil || applied != 1 || version != "2" {
				t.Fatalf("retry = %d applied, revision %s, %v; want 1, 2, nil", applied, version, err)
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
	init := "CREATE TABLE p (id integer PRIMARY KEY);\nCREATE TABLE c (p integer NOT NULL REFERENCES p (id));\nINSERT INTO p VALUES (1);\nINSERT INTO c VALUES (1);\n"
	rebuild := "PRAGMA foreign_keys = off;\nCREATE TABLE new_p (id integer PRIMARY KEY, n text);\nINSERT INTO new_p (id) SELECT id FROM p;\nDROP TABLE p;\nALTER TABLE new_p RENAME TO p;\nPRAGMA foreign_keys = on;\n"
	if _, _, err := migrateDir(ctx, db, dialect.SQLite, memDir(t, "1_init.sql", init, "2_rebuild.sql", rebuild)); err != nil {
		t.Fatalf("rebuilding a referenced table: %v", err)
	}
	var fk int
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d (%v) after migrate, want 1", fk, err)
	}
	orphan := memDir(t, "1_init.sql", init, "2_rebuild.sql", rebuild, "3_bad.sql", "DELETE FROM p;\n")
	_, version, err := migrateDir(ctx, db, dialect.SQLite, orphan)
	if err == nil || version != "2" || !strings.Contains(err.Error(), "referencing missing rows") {
		t.Fatalf("migrate = revision %s, %v; want 2 and an error for the orphaned row", version, err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM p").Scan(&n); err != nil || n != 1 {
		t.Fatalf("p has %d rows (%v), want 1: the bad file must be rolled back", n, err)
	}
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d (%v) after a failed migrate, want 1", fk, err)
	}
}

// TestReady: Ready reads only, and says what is missing.
func TestReady(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			files := embedded(t, d)
			latest := files[len(files)-1].Version()
			ready := func(db *sql.DB) error {
				s := &Store{DB: db, Dialect: d, Fatal: func(error) bool { return false }}
				return s.Ready(ctx)
			}
			notMigrated := func(what string, err error, want string) {
				t.Helper()
				if !errors.Is(err, plugins.ErrNotMigrated) || err.Error() != want {
					t.Errorf("%s: Ready = %v; want not migrated: %q", what, err, want)
				}
			}

			source := dsn(t, d)
			fresh := open(t, d, source)
			ro := open(t, d, readOnly(d, source))
			notMigrated("fresh", ready(fresh), "the database has no carpipe tables")
			notMigrated("fresh, read-only", ready(ro), "the database has no carpipe tables")
			if tableExistsT(t, fresh, d, revisionsTable) {
				t.Fatal("Ready left carpipe_revisions behind")
			}
			if _, _, err := Migrate(ctx, fresh, d); err != nil {
				t.Fatal(err)
			}
			if err := ready(fresh); err != nil {
				t.Errorf("migrated: Ready = %v", err)
			}
			if err := ready(ro); err != nil {
				t.Errorf("migrated, read-only: Ready = %v", err)
			}

			legacy := legacyDB(t, d, legacyVersion)
			notMigrated("legacy", ready(legacy), "the database is at migration 3 of carpipe v0.1; this carpipe needs revision "+latest)

			// A revision behind, with a folder of two files.
			two := memDir(t, "1_a.sql", "CREATE TABLE a (x integer);\n", "2_b.sql", "CREATE TABLE b (x integer);\n")
			behind := openFresh(t, d)
			if _, _, err := migrateDir(ctx, behind, d, memDir(t, "1_a.sql", "CREATE TABLE a (x integer);\n")); err != nil {
				t.Fatal(err)
			}
			if msg, err := unmigratedDir(ctx, behind, d, two); err != nil || msg != "the database is at revision 1; this carpipe needs 2" {
				t.Errorf("behind: unmigrated = %q, %v", msg, err)
			}
			if _, _, err := migrateDir(ctx, behind, d, two); err != nil {
				t.Fatal(err)
			}
			if msg, err := unmigratedDir(ctx, behind, d, two); err != nil || msg != "" {
				t.Errorf("caught up: unmigrated = %q, %v", msg, err)
			}
		})
	}
}

// readOnly turns a test DSN into one whose connections cannot write.
func readOnly(d, source string) string {
	if d == dialect.Postgres {
		sep := "?"
		if strings.Contains(source, "?") {
			sep = "&"
		}
		return source + sep + "default_transaction_read_only=on"
	}
	return source + "&mode=ro"
}

func TestRevisions(t *testing.T) {
	ctx := context.Background()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openFresh(t, d)
			rrw := &revisions{q: db, d: d}
			if err := rrw.create(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := rrw.ReadRevision(ctx, "1"); !errors.Is(err, migrate.ErrRevisionNotExist) {
				t.Fatalf("ReadRevision of a missing one: %v", err)
			}
			at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
			r := &migrate.Revision{Version: "1", Description: "a", Type: migrate.RevisionTypeExecute, Applied: 1, Total: 2,
				ExecutedAt: at, ExecutionTime: 3 * time.Millisecond, Error: "boom", ErrorStmt: "SELECT 1", Hash: "h1:x",
				PartialHashes: []string{"h1:p"}, OperatorVersion: "carpipe"}
			if err := rrw.WriteRevision(ctx, r); err != nil {
				t.Fatal(err)
			}
			r.Applied = 2 // written twice: an update, not a second row
			if err := rrw.WriteRevision(ctx, r); err != nil {
				t.Fatal(err)
			}
			got, err := rrw.ReadRevision(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			got.ExecutedAt = got.ExecutedAt.UTC()
			if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *r) {
				t.Fatalf("read back %+v, want %+v", *got, *r)
			}
			if err := rrw.DeleteRevision(ctx, "1"); err != nil {
				t.Fatal(err)
			}
			if revs, err := rrw.ReadRevisions(ctx); err != nil || len(revs) != 0 {
				t.Fatalf("after delete: %v, %v", revs, err)
			}
		})
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
			if _, err := newFile("a.csv", "s1").Save(ctx); err != nil {
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
			newType := func(name, table string) error {
				return client.FileType.Create().SetName(name).SetTableName(table).SetDigest("sha256:00").
					SetColumns([]entschema.TableColumn{}).Exec(ctx)
			}
			if err := newType("a", "a"); err != nil {
				t.Fatal(err)
			}
			if err := newType("a", "b"); !ent.IsConstraintError(err) {
				t.Fatalf("second file type a: err = %v, want a constraint error", err)
			}
			if err := newType("b", "a"); !ent.IsConstraintError(err) {
				t.Fatalf("second file type with table a: err = %v, want a constraint error", err)
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
			_, err := client.Reject.Create().SetFileID(12345).SetRecordIndex(0).SetErrors([]entschema.FieldError{}).SetPayload("{}").Save(ctx)
			if !ent.IsConstraintError(err) {
				t.Fatalf("reject of a missing file: err = %v, want a constraint error", err)
			}
		})
	}
}

// TestPostgresTypes pins the column types the outputs rely on, and the
// sweep's partial index.
func TestPostgresTypes(t *testing.T) {
	db := openFresh(t, dialect.Postgres)
	if _, _, err := Migrate(context.Background(), db, dialect.Postgres); err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{
		"rejects.errors":        "jsonb",
		"files.path":            "text",
		"files.file_time":       "timestamp with time zone",
		"runs.started_at":       "timestamp with time zone",
		"runs.id":               "bigint",
		"file_types.columns":    "jsonb",
		"file_types.updated_at": "timestamp with time zone",
	} {
		var got string
		err := db.QueryRow("SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name || '.' || column_name = $1", col).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) || got != want {
			t.Errorf("%s is %q (%v), want %s", col, got, err, want)
		}
	}
	var def string
	if err := db.QueryRow("SELECT indexdef FROM pg_indexes WHERE indexname = 'runs_running'").Scan(&def); err != nil || !strings.Contains(def, "WHERE") {
		t.Errorf("runs_running = %q (%v), want a partial index", def, err)
	}
}
