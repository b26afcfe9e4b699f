package plugintest

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

func TestPostgresDSN(t *testing.T) {
	ctx := context.Background()
	var names []string
	for _, sub := range []string{"a", "b"} {
		t.Run(sub, func(t *testing.T) {
			db, err := sql.Open("postgres", PostgresDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var name string
			var tables int
			if err := db.QueryRowContext(ctx, "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&name, &tables); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(name, "carpipe_t_") || tables != 0 {
				t.Fatalf("got database %q with %d tables, want a fresh carpipe_t_ one", name, tables)
			}
			if _, err := db.ExecContext(ctx, "CREATE TABLE t (x int)"); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("databases %q, want two different ones", names)
	}
	// The subtests' cleanups have run: both databases must be gone.
	for _, name := range names {
		var n int
		if err := serverDB.QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after cleanup", name)
		}
	}
}

// TestLocalCluster proves the fallback works, as the usual server hides it.
func TestLocalCluster(t *testing.T) {
	dsn, err := startLocal()
	if err != nil {
		t.Fatalf("startLocal: %v", err)
	}
	db, err := openAdmin(dsn, answerTimeout)
	if err != nil {
		t.Fatalf("throw-away cluster at %s does not answer: %v", dsn, err)
	}
	defer db.Close()
	var dir string
	if err := db.QueryRow("SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dir, "carpipe-pg-") {
		t.Fatalf("data_directory %q, want the throw-away cluster's", dir)
	}
	// The cluster outlives the test within one process (-count=2).
	for _, q := range []string{"CREATE DATABASE local_check", "DROP DATABASE local_check"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h:1/postgres?sslmode=disable": "postgres://u:p@h:1/x?sslmode=disable",
		"host=h user=u dbname=postgres":               "host=h user=u dbname=postgres dbname=x",
	} {
		got, err := withDatabase(in, "x")
		if err != nil || got != want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestSQLiteDSN(t *testing.T) {
	db, err := sql.Open("sqlite", SQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fk, busy int
	var mode string
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if fk != 1 || mode != "wal" || busy != 10000 {
		t.Fatalf("foreign_keys=%d journal_mode=%s busy_timeout=%d; want 1, wal, 10000", fk, mode, busy)
	}
}
