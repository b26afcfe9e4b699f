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
	db, _ := openDSN(t, d)
	return db, addFile(t, db, d, "a.json")
}

// openDSN is open without the file, with a way to open the database again.
func openDSN(t *testing.T, d string) (*sql.DB, func() *sql.DB) {
	t.Helper()
	driver, dsn := "postgres", ""
	if d == dialect.Postgres {
		dsn = plugintest.PostgresDSN(t)
	} else {
		driver, dsn = "sqlite", plugintest.SQLiteDSN(t)
	}
	reopen := func() *sql.DB {
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := reopen()
	if err := migrate.NewSchema(entsql.OpenDB(d, db)).Create(t.Context()); err != nil {
		t.Fatalf("creating the fixed tables: %v", err)
	}
	return db, reopen
}

// OpenForTest lets the store's tests, outside this package, use open.
var OpenForTest = open

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
func q(d, query string) string { return Bind(d, query) }

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

func mustApply(t *testing.T, db *sql.DB, d string, ts ...plugins.Table) plugins.Plan {
	t.Helper()
	p, err := Apply(t.Context(), db, d, ts)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return p
}

func mustPlan(t *testing.T, db *sql.DB, d string, ts ...plugins.Table) plugins.Plan {
	t.Helper()
	p, err := Plan(t.Context(), db, d, ts)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

// kinds lists a plan's changes as kind:table[.column].
func kindsOf(p plugins.Plan) []string {
	var ks []string
	for _, c := range p.Changes {
		k := c.Kind + ":" + c.Table
		if c.Column != "" {
			k += "." + c.Column
		}
		ks = append(ks, k)
	}
	return ks
}

func checkKinds(t *testing.T, p plugins.Plan, want ...string) {
	t.Helper()
	if got := kindsOf(p); !reflect.DeepEqual(got, want) {
		t.Errorf("plan = %q, want %q\n%+v", got, want, p)
	}
}

// dump is the rows of a query as text.
func dump(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if s, ok := v.([]byte); ok {
				v = string(s)
			}
			fmt.Fprintf(&b, "%v|", v)
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// catalog is everything Plan must leave as it is: the tables, columns,
// indexes and constraints, and the file_types rows.
func catalog(t *testing.T, db *sql.DB, d string) string {
	t.Helper()
	rows := dump(t, db, "SELECT name, table_name, digest, columns, key, has_time, version, updated_at FROM file_types ORDER BY name")
	if d == dialect.SQLite {
		return dump(t, db, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name") + rows
	}
	return dump(t, db, `SELECT table_name, column_name, data_type, is_nullable, ordinal_position FROM information_schema.columns
		WHERE table_schema = 'public' ORDER BY 1, 5`) +
		dump(t, db, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1") +
		dump(t, db, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1") + rows
}

// columns lists a table's columns in their physical order, with types.
func columns(t *testing.T, db *sql.DB, d, table string) string {
	t.Helper()
	if d == dialect.SQLite {
		// SQLite writes the types it knows (INTEGER, TEXT) in capitals.
		return strings.ToLower(dump(t, db, "SELECT name, type, \"notnull\" FROM pragma_table_info('"+table+"') ORDER BY cid"))
	}
	return dump(t, db, `SELECT column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_schema = 'public' AND table_name = '`+table+`' ORDER BY ordinal_position`)
}

func fileType(t *testing.T, db *sql.DB, fileType string) (digest string, version int) {
	t.Helper()
	err := db.QueryRowContext(t.Context(), "SELECT digest, version FROM file_types WHERE name = '"+fileType+"'").Scan(&digest, &version)
	if err != nil {
		t.Fatal(err)
	}
	return digest, version
}

func TestCreate(t *testing.T) {
	want := map[string]struct {
		sql     []string
		columns string
	}{
		dialect.Postgres: {
			sql: []string{`CREATE TABLE "vehicle_status" ("_file_id" bigint NOT NULL, "_event_time" timestamptz NULL, "report_time" timestamptz NULL, ` +
				`"_index" integer NOT NULL, "vehicle_id" text NULL, "status" text NULL, "_extra" jsonb NULL, CONSTRAINT "vehicle_status__file_id_fkey" ` +
				`FOREIGN KEY ("_file_id") REFERENCES "files" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION)`,
				`CREATE UNIQUE INDEX "vehicle_status_key" ON "vehicle_status" ("vehicle_id", "report_time")`},
			columns: "_file_id|bigint|NO|\n_event_time|timestamp with time zone|YES|\nreport_time|timestamp with time zone|YES|\n" +
				"_index|integer|NO|\nvehicle_id|text|YES|\nstatus|text|YES|\n_extra|jsonb|YES|\n",
		},
		dialect.SQLite: {
			sql: []string{"CREATE TABLE `vehicle_status` (`_file_id` integer NOT NULL, `_event_time` datetime NULL, `report_time` datetime NULL, " +
				"`_index` integer NOT NULL, `vehicle_id` text NULL, `status` text NULL, `_extra` json NULL, CONSTRAINT `vehicle_status__file_id_fkey` " +
				"FOREIGN KEY (`_file_id`) REFERENCES `files` (`id`) ON UPDATE NO ACTION ON DELETE NO ACTION)",
				"CREATE UNIQUE INDEX `vehicle_status_key` ON `vehicle_status` (`vehicle_id`, `report_time`)"},
			columns: "_file_id|integer|1|\n_event_time|datetime|0|\nreport_time|datetime|0|\n" +
				"_index|integer|1|\nvehicle_id|text|0|\nstatus|text|0|\n_extra|json|0|\n",
		},
	}
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db, id := open(t, d)
			ctx := t.Context()
			planned := mustPlan(t, db, d, status(), noKey())
			p := mustApply(t, db, d, status(), noKey())
			checkKinds(t, p, "create:vehicle_status", "create:plain")
			if !reflect.DeepEqual(p, planned) {
				t.Errorf("Apply did\n%+v\nPlan said\n%+v", p, planned)
			}
			if got := p.Changes[0].SQL; !reflect.DeepEqual(got, want[d].sql) {
				t.Errorf("SQL =\n%q\nwant\n%q", got, want[d].sql)
			}
			if got := columns(t, db, d, "vehicle_status"); got != want[d].columns {
				t.Errorf("columns:\n%s\nwant\n%s", got, want[d].columns)
			}
			if got := columns(t, db, d, "plain"); !strings.Contains(got, "_key|text|") || strings.Contains(got, "_event_time") {
				t.Errorf("a type without key and time has columns\n%s", got)
			}
			// The unique index holds the key; the foreign key holds _file_id.
			ins := q(d, "INSERT INTO vehicle_status (_file_id, _index, vehicle_id, report_time) VALUES (?, 0, 'v1', '2020-09-13T12:00:00.000000Z')")
			if _, err := db.ExecContext(ctx, ins, id); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, ins, id); err == nil {
				t.Error("a second row with the same key was stored")
			}
			if _, err := db.ExecContext(ctx, ins, id+100); err == nil {
				t.Error("a row of a file the ledger does not hold was stored")
			}
			stored, err := Stored(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stored, map[string]plugins.Table{"vehicles_status": status(), "plain": noKey()}) {
				t.Errorf("Stored = %+v", stored)
			}
			if _, v := fileType(t, db, "vehicles_status"); v != 1 {
				t.Errorf("version %d, want 1", v)
			}
			before := catalog(t, db, d)
			checkKinds(t, mustApply(t, db, d, status(), noKey()))
			if after := catalog(t, db, d); after != before {
				t.Errorf("a second Apply changed the catalog:\n%s\nto\n%s", before, after)
			}
			// The longest name: Ent shortens the foreign key's name the
			// same way each time.
			long := noKey()
			long.Name, long.FileType = strings.Repeat("l", 59), "long"
			checkKinds(t, mustApply(t, db, d, long), "create:"+long.Name)
			checkKinds(t, mustApply(t, db, d, long))
			long.Name += "l"
			if _, err := Plan(ctx, db, d, []plugins.Table{long}); err == nil || !strings.Contains(err.Error(), "at most 59 bytes") {
				t.Errorf("Plan of a 60-byte name: %v", err)
			}
		})
	}
}

func noKey() plugins.Table {
	return plugins.Table{Name: "plain", FileType: "plain",
		Columns: []plugins.Column{{Name: "msg", Property: "msg", Type: plugins.ColText}}, Digest: "sha256:p"}
}

func TestAddColumn(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db, id := open(t, d)
			ctx := t.Context()
			mustApply(t, db, d, status(), noKey())
			if _, err := db.ExecContext(ctx, q(d, "INSERT INTO vehicle_status (_file_id, _index, vehicle_id, status) VALUES (?, 0, 'v1', 'ok')"), id); err != nil {
				t.Fatal(err)
			}
			s2 := status()
			s2.Columns = append(s2.Columns, plugins.Column{Name: "speed", Property: "speed", Type: plugins.ColNumber},
				plugins.Column{Name: "moving", Property: "moving", Type: plugins.ColBoolean})
			s2.Digest = "sha256:2"
			k2 := noKey()
			k2.HasTime = true
			planned := mustPlan(t, db, d, s2, k2)
			// Added together, the columns are in the order of their widths too.
			checkKinds(t, planned, "add_column:vehicle_status.moving", "add_column:vehicle_status.speed", "add_column:plain._event_time")
			for _, c := range planned.Changes {
				if len(c.SQL) != 1 || !strings.HasPrefix(c.SQL[0], "ALTER TABLE") || !strings.Contains(c.SQL[0], c.Column) {
					t.Errorf("%s: SQL %q", c.Column, c.SQL)
				}
			}
			if p := mustApply(t, db, d, s2, k2); !reflect.DeepEqual(p, planned) {
				t.Errorf("Apply did\n%+v\nPlan said\n%+v", p, planned)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM vehicle_status WHERE speed IS NULL AND moving IS NULL").Scan(&n); err != nil || n != 1 {
				t.Errorf("the old row reads %d rows with NULL in the new columns (%v), want 1", n, err)
			}
			if _, v := fileType(t, db, "vehicles_status"); v != 2 {
				t.Errorf("version %d, want 2", v)
			}
			// A property the schema drops keeps its column, still known.
			s3 := s2
			s3.Columns = []plugins.Column{s2.Columns[0], s2.Columns[1], s2.Columns[3]}
			s3.Key, s3.Digest = []int{0, 1}, "sha256:3"
			checkKinds(t, mustApply(t, db, d, s3, k2), "schema:vehicle_status")
			if !strings.Contains(columns(t, db, d, "vehicle_status"), "speed|") {
				t.Error("the dropped property's column is gone")
			}
			stored, err := Stored(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			s2.Digest = s3.Digest
			if !reflect.DeepEqual(stored["vehicles_status"], s2) {
				t.Errorf("Stored = %+v, want %+v", stored["vehicles_status"], s2)
			}
			if digest, v := fileType(t, db, "vehicles_status"); digest != "sha256:3" || v != 3 {
				t.Errorf("digest %s version %d, want sha256:3 and 3", digest, v)
			}
			// The record reads back without the columns it never had.
			var recs []string
			err = Scan(ctx, db, d, stored["vehicles_status"], func(_ int64, _ int, r []byte) error {
				recs = append(recs, string(r))
				return nil
			})
			if err != nil || !reflect.DeepEqual(recs, []string{`{"vehicle_id":"v1","status":"ok"}`}) {
				t.Errorf("Scan: %q, %v", recs, err)
			}
		})
	}
}

func TestRelaxed(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db, _ := open(t, d)
			mustApply(t, db, d, status())
			relaxed := status()
			relaxed.Digest = "sha256:relaxed"
			before := catalog(t, db, d)
			checkKinds(t, mustPlan(t, db, d, relaxed), "schema:vehicle_status")
			if after := catalog(t, db, d); after != before {
				t.Errorf("Plan changed the catalog")
			}
			checkKinds(t, mustApply(t, db, d, relaxed), "schema:vehicle_status")
			checkKinds(t, mustPlan(t, db, d, relaxed))
			if digest, v := fileType(t, db, "vehicles_status"); digest != "sha256:relaxed" || v != 2 {
				t.Errorf("digest %s version %d, want sha256:relaxed and 2", digest, v)
			}
		})
	}
}

func TestBreaking(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*plugins.Table)
		detail []string
	}{
		{"key", func(t *plugins.Table) { t.Key = []int{0} }, []string{
			"key would change from (vehicle_id, report_time) to (vehicle_id): a unique index cannot change under stored rows; " +
				"load into a new type name or x-carpipe.table, or migrate the rows yourself"}},
		{"key order", func(t *plugins.Table) { t.Key = []int{1, 0} }, []string{
			"key would change from (vehicle_id, report_time) to (report_time, vehicle_id)"}},
		{"no key", func(t *plugins.Table) { t.Key = nil }, []string{
			"key would change from (vehicle_id, report_time) to (_key)"}},
		{"type", func(t *plugins.Table) { t.Columns[2].Type = plugins.ColInteger }, []string{
			"column status would change type from text to integer: stored values cannot be converted safely"}},
		{"rename", func(t *plugins.Table) { t.Name = "vehicles_status" }, []string{
			"table would change from vehicle_status to vehicles_status: carpipe does not rename tables; set x-carpipe.table back to vehicle_status"}},
	} {
		for _, d := range dialects {
			t.Run(c.name+"/"+d, func(t *testing.T) {
				db, id := open(t, d)
				ctx := t.Context()
				mustApply(t, db, d, status())
				if _, err := db.ExecContext(ctx, q(d, "INSERT INTO vehicle_status (_file_id, _index, vehicle_id, status) VALUES (?, 0, 'v1', 'ok')"), id); err != nil {
					t.Fatal(err)
				}
				changed := status()
				changed.Columns = append(changed.Columns, plugins.Column{Name: "speed", Property: "speed", Type: plugins.ColNumber})
				changed.Digest = "sha256:2"
				c.change(&changed)
				before := catalog(t, db, d)
				// A new type beside the breaking one is not created either.
				p, err := Apply(ctx, db, d, []plugins.Table{changed, noKey()})
				if !errors.Is(err, plugins.ErrBreaking) {
					t.Fatalf("Apply: %v, want ErrBreaking", err)
				}
				checkKinds(t, p, "breaking:"+changed.Name, "create:plain")
				for _, w := range c.detail {
					if !strings.Contains(p.Changes[0].Detail, w) || !strings.Contains(err.Error(), w) {
						t.Errorf("detail %q\nerror %q\nwant %q", p.Changes[0].Detail, err, w)
					}
				}
				if !strings.Contains(err.Error(), "nothing was changed") {
					t.Errorf("error %q does not say that nothing changed", err)
				}
				if after := catalog(t, db, d); after != before {
					t.Errorf("a refused Apply changed the catalog:\n%s\nto\n%s", before, after)
				}
				if pp := mustPlan(t, db, d, changed, noKey()); !reflect.DeepEqual(pp, p) {
					t.Errorf("Plan says\n%+v\nApply said\n%+v", pp, p)
				}
			})
		}
	}
}

func TestForeignTable(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db, _ := open(t, d)
			ctx := t.Context()
			if _, err := db.ExecContext(ctx, "CREATE TABLE vehicle_status (vehicle_id text, report_time timestamp, status text)"); err != nil {
				t.Fatal(err)
			}
			before := catalog(t, db, d)
			p, err := Apply(ctx, db, d, []plugins.Table{status()})
			if !errors.Is(err, plugins.ErrBreaking) {
				t.Fatalf("Apply: %v, want ErrBreaking", err)
			}
			checkKinds(t, p, "breaking:vehicle_status")
			if w := "table vehicle_status exists and carpipe did not create it: drop or rename it, or set x-carpipe.table"; p.Changes[0].Detail != w {
				t.Errorf("detail %q, want %q", p.Changes[0].Detail, w)
			}
			if after := catalog(t, db, d); after != before {
				t.Errorf("a refused Apply changed the catalog")
			}
			// Another type's table is in the way too.
			other := noKey()
			other.Name = "vehicle_status2"
			mustApply(t, db, d, other)
			taker := status()
			taker.Name = "vehicle_status2"
			p, err = Apply(ctx, db, d, []plugins.Table{taker})
			if !errors.Is(err, plugins.ErrBreaking) || !strings.Contains(p.Changes[0].Detail, "table vehicle_status2 holds file type plain") {
				t.Errorf("Apply: %v\n%+v", err, p)
			}
		})
	}
}

func TestDrift(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db, _ := open(t, d)
			ctx := t.Context()
			mustApply(t, db, d, status(), noKey())
			exec := func(query string) {
				t.Helper()
				if _, err := db.ExecContext(ctx, query); err != nil {
					t.Fatal(err)
				}
			}
			// What carpipe made and someone dropped is made again.
			exec("DROP TABLE plain")
			exec("ALTER TABLE vehicle_status DROP COLUMN status")
			checkKinds(t, mustPlan(t, db, d, status(), noKey()), "add_column:vehicle_status.status", "create:plain")
			p := mustApply(t, db, d, status(), noKey())
			if !strings.Contains(p.Changes[0].Detail, "column status is missing: add it again") ||
				!strings.Contains(p.Changes[1].Detail, "table plain is missing: create it again") {
				t.Errorf("%+v", p)
			}
			checkKinds(t, mustPlan(t, db, d, status(), noKey()))
			// Columns and indexes beyond carpipe's are left alone.
			exec("ALTER TABLE vehicle_status ADD COLUMN mine text")
			exec("CREATE INDEX mine ON vehicle_status (mine)")
			checkKinds(t, mustPlan(t, db, d, status(), noKey()))
			if d != dialect.Postgres {
				return
			}
			// A column whose type someone changed is not carpipe's to fix.
			exec("ALTER TABLE vehicle_status ALTER COLUMN status TYPE varchar(20)")
			p, err := Apply(ctx, db, d, []plugins.Table{status()})
			if !errors.Is(err, plugins.ErrBreaking) || len(p.Changes) != 1 ||
				p.Changes[0].Detail != "table vehicle_status differs from what carpipe created: column status is character varying(20) NULL, "+
					"carpipe made it text NULL; put it back, or load into a new type name or x-carpipe.table" {
				t.Errorf("Apply: %v\n%+v", err, p)
			}
		})
	}
}

func TestPlanChangesNothing(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db, _ := open(t, d)
			before := catalog(t, db, d)
			p := mustPlan(t, db, d, status(), every())
			checkKinds(t, p, "create:vehicle_status", "create:every")
			if len(p.Changes[1].SQL) != 2 {
				t.Errorf("SQL %q", p.Changes[1].SQL)
			}
			if after := catalog(t, db, d); after != before {
				t.Errorf("Plan changed the catalog:\n%s\nto\n%s", before, after)
			}
			mustApply(t, db, d, status())
			s2 := status()
			s2.Columns = append(s2.Columns, plugins.Column{Name: "speed", Property: "speed", Type: plugins.ColNumber})
			s2.Digest = "sha256:2"
			before = catalog(t, db, d)
			checkKinds(t, mustPlan(t, db, d, s2, every()), "add_column:vehicle_status.speed", "create:every")
			if after := catalog(t, db, d); after != before {
				t.Errorf("Plan changed the catalog:\n%s\nto\n%s", before, after)
			}
		})
	}
}

// every has a column of every type, and a property whose name is not
// its column's.
func every() plugins.Table {
	return plugins.Table{Name: "every", FileType: "every", Columns: []plugins.Column{
		{Name: "id", Property: "id", Type: plugins.ColText},
		{Name: "at", Property: "at", Type: plugins.ColTimestamp},
		{Name: "n", Property: "n", Type: plugins.ColInteger},
		{Name: "x", Property: "x", Type: plugins.ColNumber},
		{Name: "ok", Property: "ok", Type: plugins.ColBoolean},
		{Name: "doc", Property: "doc", Type: plugins.ColJSON},
		{Name: "speed_km_h", Property: "Speed km/h", Type: plugins.ColNumber},
	}, Key: []int{0}, HasTime: true, Digest: "sha256:e"}
}

func TestScan(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db, id := open(t, d)
			ctx := t.Context()
			mustApply(t, db, d, every())
			ins := q(d, `INSERT INTO every (_file_id, _index, _event_time, id, "at", n, x, ok, doc, speed_km_h, _extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			at := "2020-09-13T12:00:00.123456Z"
			big := "12345678901234567890.123456789"
			// PostgreSQL's numeric spells a number its own way; SQLite keeps
			// the text of one no double spells (the loader binds a double
			// where one does).
			x := "1500"
			if d == dialect.SQLite {
				x = "1.50e3"
			}
			for i, r := range [][]any{
				{at, `a<&>"é` + "\n", at, "9007199254740993", "1.50e3", true, `{"a": [1, {"b": null}], "s": "x"}`, big, `{"y": "w", "zz": 1}`},
				{nil, "b", nil, nil, "-7", false, "1.10", nil, nil},
				{nil, "c", "1999-12-31T23:59:59.000000Z", "-1", nil, nil, "null", nil, `{}`},
			} {
				if _, err := db.ExecContext(ctx, ins, append([]any{id, i}, r...)...); err != nil {
					t.Fatal(err)
				}
			}
			want := []string{
				`{"id":"a<&>\"é\n","at":"2020-09-13T12:00:00.123456Z","n":9007199254740993,"x":` + x + `,"ok":true,"doc":{"a":[1,{"b":null}],"s":"x"},"Speed km/h":` + big + `,"y":"w","zz":1}`,
				`{"id":"b","x":-7,"ok":false,"doc":1.10}`,
				`{"id":"c","at":"1999-12-31T23:59:59.000000Z","n":-1,"doc":null}`,
			}
			stored, err := Stored(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			err = Scan(ctx, db, d, stored["every"], func(fileID int64, index int, r []byte) error {
				if fileID != id || index != len(got) {
					t.Errorf("record %d of file %d, want %d of %d", index, fileID, len(got), id)
				}
				got = append(got, string(r))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Scan:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			stop := errors.New("stop")
			n := 0
			err = Scan(ctx, db, d, stored["every"], func(int64, int, []byte) error { n++; return stop })
			if err != stop || n != 1 {
				t.Errorf("Scan went on after fn failed: %v, %d calls", err, n)
			}
		})
	}
}

func TestConcurrentApply(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			a, reopen := openDSN(t, d)
			b := reopen()
			for round := range 4 {
				tab := status()
				tab.Name, tab.FileType = fmt.Sprintf("t%d", round), fmt.Sprintf("t%d", round)
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					plans [2]plugins.Plan
					errs  [2]error
				)
				for i, db := range []*sql.DB{a, b} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						plans[i], errs[i] = Apply(context.Background(), db, d, []plugins.Table{tab})
					}()
				}
				close(start)
				wg.Wait()
				if errs[0] != nil || errs[1] != nil {
					t.Fatalf("round %d: %v; %v", round, errs[0], errs[1])
				}
				if n := len(plans[0].Changes) + len(plans[1].Changes); n != 1 {
					t.Errorf("round %d: plans %+v and %+v, want one create between them", round, plans[0], plans[1])
				}
			}
		})
	}
}
