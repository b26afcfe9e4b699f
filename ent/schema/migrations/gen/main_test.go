package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
)

// TestUpToDate: the committed migrations build exactly the Ent schema, on
// each dialect, as Ent's replay on a clean database sees it.
func TestUpToDate(t *testing.T) {
	for _, d := range []struct{ dialect, dir string }{{dialect.Postgres, "postgres"}, {dialect.SQLite, "sqlite"}} {
		t.Run(d.dir, func(t *testing.T) {
			files, err := generate(context.Background(), d.dialect, filepath.Join("..", d.dir), "", migrate.NewVersion(), false)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				t.Errorf("the Ent schema has changes no migration holds; run go run ./ent/schema/migrations/gen NAME:\n%s", f.Bytes())
			}
		})
	}
}

// TestWrite: from an empty folder, a named run writes one file per change
// and the sum, and a second run finds nothing left.
func TestWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files, err := generate(ctx, dialect.SQLite, dir, "init", "20250101000000", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Name() != "20250101000000_init.sql" {
		t.Fatalf("wrote %v, want 20250101000000_init.sql", files)
	}
	local, err := migrate.NewLocalDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.Validate(local); err != nil {
		t.Fatalf("the written folder does not match its sum: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, migrate.HashFileName)); err != nil {
		t.Fatal(err)
	}
	if files, err := generate(ctx, dialect.SQLite, dir, "again", "20250101000001", true); err != nil || len(files) != 0 {
		t.Fatalf("second run wrote %v (%v), want nothing", files, err)
	}
}
