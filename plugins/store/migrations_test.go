package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"

	"github.com/carpipe/carpipe/ent"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

var update = plugintest.Update

var dialects = []string{dialect.Postgres, dialect.SQLite}

// openFresh returns an empty database of dialect d, gone at cleanup.
func openFresh(t *testing.T, d string) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", ""
	switch d {
	case dialect.Postgres:
		driver, dsn = "postgres", plugintest.PostgresDSN(t)
	case dialect.SQLite:
		dsn = plugintest.SQLiteDSN(t)
	default:
		t.Fatalf("no test database for dialect %q", d)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMigrations proves that the migration files of each dialect build the
// schema Ent expects, and with -update writes what is missing.
func TestMigrations(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			dir, err := dialectDir(d)
			if err != nil {
				t.Fatal(err)
			}
			src := filepath.Join("..", "..", "ent", "schema", "migrations", dir)
			missing := missingDDL(t, d, src)
			if missing == "" {
				return
			}
			if !*update {
				t.Fatalf("Ent schema and migrations/%s disagree; run go test ./plugins/store -run TestMigrations -update\nmissing:\n%s", dir, missing)
			}
			ms, err := loadMigrations(os.DirFS(src), ".")
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%04d_auto.sql", len(ms)+1)
			if len(ms) == 0 {
				name = "0001_init.sql"
			}
			out := filepath.Join(src, name)
			text := "-- Written by TestMigrations from ent/schema; never edit it once applied.\n" + missing
			if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", out)
			if still := missingDDL(t, d, src); still != "" {
				t.Fatalf("after writing %s the migrations still miss:\n%s", out, still)
			}
		})
	}
}

// missingDDL applies the migration files in src to a fresh database and
// returns the DDL Ent would still run there.
func missingDDL(t *testing.T, d, src string) string {
	t.Helper()
	ctx := context.Background()
	ms, err := loadMigrations(os.DirFS(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	db := openFresh(t, d)
	if _, _, err := migrateFiles(ctx, db, d, ms); err != nil {
		t.Fatalf("applying %s: %v", src, err)
	}
	client := ent.NewClient(ent.Driver(entsql.OpenDB(d, db)))
	var buf bytes.Buffer
	// Drops too: the files must match the schema, not merely cover it.
	if err := client.Schema.WriteTo(ctx, &buf, schema.WithDropColumn(true), schema.WithDropIndex(true)); err != nil {
		t.Fatalf("diffing the Ent schema: %v", err)
	}
	// Ent toggles SQLite's foreign keys around its own transaction; in a
	// migration file the pragma would be a no-op, and migrate does it.
	var out strings.Builder
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		switch strings.TrimSpace(line) {
		case "", "PRAGMA foreign_keys = off;", "PRAGMA foreign_keys = on;":
			continue
		}
		out.WriteString(line)
	}
	return out.String()
}
