package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// carpipe runs the CLI in-process, exactly as main does.
func carpipe(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// backend is a database output the run tests are repeated on.
type backend struct {
	name string
	// output returns the YAML of the output entry and a handle on the same
	// database for the test's own queries.
	output func(t *testing.T) (string, *sql.DB)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (string, *sql.DB) {
		path := filepath.Join(t.TempDir(), "carpipe.db")
		db, err := sql.Open("sqlite", sqlite.DSN(path))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return fmt.Sprintf("{name: db, type: sqlite, path: %q}", path), db
	}},
	{"postgres", func(t *testing.T) (string, *sql.DB) {
		dsn := plugintest.PostgresDSN(t)
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return fmt.Sprintf("{name: db, type: postgres, dsn: %q}", dsn), db
	}},
}

// pipe is a pipeline set up in a temp folder.
type pipe struct {
	config string
	inbox  string
	db     *sql.DB
}

// newPipe copies a case's files into an inbox and writes a config reading
// it into b's database.
func newPipe(t *testing.T, b backend, files, schemas, onSuccess, onFailure string) pipe {
	t.Helper()
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	copyDir(t, files, inbox)
	out, db := b.output(t)
	abs, _ := filepath.Abs(schemas)
	cfg := fmt.Sprintf(`version: 1
name: test
schemas: %q
inputs:
  - name: inbox
    type: dir
    path: inbox
    on_success: %s
    on_failure: %s
outputs:
  - %s
`, abs, onSuccess, onFailure, out)
	path := filepath.Join(dir, "carpipe.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return pipe{config: path, inbox: inbox, db: db}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (p pipe) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := p.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// ls lists the files under the inbox, relative to it.
func (p pipe) ls(t *testing.T) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(p.inbox, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(p.inbox, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func wantCode(t *testing.T, got, want int, stdout, stderr string) {
	t.Helper()
	if got != want {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, want, stdout, stderr)
	}
}

func wantContains(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("output lacks %q:\n%s", sub, s)
		}
	}
}

func abs(p string) string {
	a, _ := filepath.Abs(p)
	return a
}

// stored counts the records held in the tables of every file type the
// database knows (file_types lists them); where, when given, filters the
// rows, e.g. "_file_id = 3".
func stored(t *testing.T, db *sql.DB, where string) int {
	t.Helper()
	rows, err := db.Query("SELECT table_name FROM file_types ORDER BY table_name")
	if err != nil {
		t.Fatalf("file_types: %v", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	n := 0
	for _, name := range tables {
		q := `SELECT count(*) FROM "` + name + `"`
		if where != "" {
			q += " WHERE " + where
		}
		var c int
		if err := db.QueryRow(q).Scan(&c); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		n += c
	}
	return n
}
