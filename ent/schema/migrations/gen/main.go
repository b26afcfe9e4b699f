// Command gen writes the next versioned migration of the fixed tables (the
// Ent schema) for each dialect, in Atlas's format: <version>_<name>.sql and
// atlas.sum, under ent/schema/migrations/<dialect>.
//
//	go run ./ent/schema/migrations/gen NAME   write what the files lack
//	go run ./ent/schema/migrations/gen        only check; exit 1 when they lack something
//	go run ./ent/schema/migrations/gen -hash  rewrite atlas.sum after a hand edit
//
// Ent replays the existing files on a clean dev database and diffs the
// result with the schema: SQLite in memory, and for PostgreSQL a scratch
// database created on the server of $CARPIPE_TEST_PG (default: the local
// one) and dropped after.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	_ "github.com/lib/pq"
	_ "modernc.org/sqlite"

	entmigrate "github.com/carpipe/carpipe/ent/migrate"
)

const defaultAdminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: gen [-hash] [NAME]\n\nWith NAME, writes the next migration of each dialect; without, checks that none is missing.")
		flag.PrintDefaults()
	}
	hash := flag.Bool("hash", false, "rewrite each atlas.sum from its files (after editing a file not yet applied anywhere)")
	flag.Parse()
	name := flag.Arg(0)
	if flag.NArg() > 1 || name != "" && !validName.MatchString(name) {
		flag.Usage()
		os.Exit(2)
	}
	root, err := migrationsRoot()
	if err != nil {
		fail(err)
	}
	if *hash {
		for _, d := range []string{"postgres", "sqlite"} {
			if err := rehash(filepath.Join(root, d)); err != nil {
				fail(err)
			}
		}
		return
	}
	// One version for both dialects, so that a change reads the same in each.
	version := migrate.NewVersion()
	missing := false
	for _, d := range []struct{ dialect, dir string }{{dialect.Postgres, "postgres"}, {dialect.SQLite, "sqlite"}} {
		path := filepath.Join(root, d.dir)
		files, err := generate(context.Background(), d.dialect, path, name, version, name != "")
		if err != nil {
			fail(fmt.Errorf("%s: %w", path, err))
		}
		switch {
		case len(files) == 0:
			fmt.Printf("%s: up to date\n", path)
		case name == "":
			missing = true
			fmt.Printf("%s: the Ent schema has changes no migration holds:\n%s\n", path, files[0].Bytes())
		default:
			fmt.Printf("%s: wrote %s\n", path, files[0].Name())
		}
	}
	if missing {
		fail(errors.New("write them with: go run ./ent/schema/migrations/gen NAME (see ent/schema/migrations/README.md)"))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}

// migrationsRoot finds ent/schema/migrations from the module's root, so
// that both `go generate` (in ent/schema) and `go run` (anywhere) work.
func migrationsRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "ent", "schema", "migrations"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// generate diffs the files in path with the Ent schema on a dev database of
// dialect d, and returns the files the difference makes: none when the
// folder is up to date. With write, it adds them and the new atlas.sum.
func generate(ctx context.Context, d, path, name, version string, write bool) ([]migrate.File, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	local, err := migrate.NewLocalDir(path)
	if err != nil {
		return nil, err
	}
	// Diff into memory; copy out only what is new.
	mem := &migrate.MemDir{}
	before, err := local.Files()
	if err != nil {
		return nil, err
	}
	for _, f := range before {
		if err := mem.WriteFile(f.Name(), f.Bytes()); err != nil {
			return nil, err
		}
	}
	if sum, err := os.ReadFile(filepath.Join(path, migrate.HashFileName)); err == nil {
		if err := mem.WriteFile(migrate.HashFileName, sum); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	db, done, err := devDatabase(ctx, d)
	if err != nil {
		return nil, err
	}
	defer done()
	m, err := schema.NewMigrate(entsql.OpenDB(d, db),
		schema.WithDir(mem),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(d),
		schema.WithFormatter(versioned(version)),
		// The files must equal the schema, not merely cover it.
		schema.WithDropColumn(true),
		schema.WithDropIndex(true),
		schema.WithErrNoPlan(true),
	)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = "check"
	}
	err = m.NamedDiff(ctx, name, entmigrate.Tables...)
	if errors.Is(err, migrate.ErrNoPlan) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	after, err := mem.Files()
	if err != nil {
		return nil, err
	}
	var added []migrate.File
	for _, f := range after {
		if _, err := os.Stat(filepath.Join(path, f.Name())); errors.Is(err, os.ErrNotExist) {
			added = append(added, f)
		}
	}
	if !write {
		return added, nil
	}
	for _, f := range added {
		if err := local.WriteFile(f.Name(), f.Bytes()); err != nil {
			return nil, err
		}
	}
	return added, rehash(path)
}

func rehash(path string) error {
	local, err := migrate.NewLocalDir(path)
	if err != nil {
		return err
	}
	sum, err := local.Checksum()
	if err != nil {
		return err
	}
	return migrate.WriteSumFile(local, sum)
}

// versioned formats plans as Atlas does, with a fixed version.
type versioned string

func (v versioned) Format(p *migrate.Plan) ([]migrate.File, error) {
	p.Version = string(v)
	return migrate.DefaultFormatter.Format(p)
}

// devDatabase opens a clean database of dialect d; done removes it.
func devDatabase(ctx context.Context, d string) (*sql.DB, func(), error) {
	if d == dialect.SQLite {
		db, err := sql.Open("sqlite", "file:dev?mode=memory&_pragma=foreign_keys(1)")
		if err != nil {
			return nil, nil, err
		}
		db.SetMaxOpenConns(1) // one connection: one memory database
		return db, func() { db.Close() }, nil
	}
	admin := os.Getenv("CARPIPE_TEST_PG")
	if admin == "" {
		admin = defaultAdminDSN
	}
	u, err := url.Parse(admin)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, nil, fmt.Errorf("CARPIPE_TEST_PG must be a postgres:// URL")
	}
	adb, err := sql.Open("postgres", admin)
	if err != nil {
		return nil, nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "carpipe_migrategen_" + hex.EncodeToString(b)
	if _, err := adb.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		adb.Close()
		return nil, nil, fmt.Errorf("creating the dev database on %s: %w", u.Redacted(), err)
	}
	u.Path = "/" + name
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		adb.Close()
		return nil, nil, err
	}
	done := func() {
		db.Close()
		if _, err := adb.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "gen: dropping the dev database %s: %v\n", name, err)
		}
		adb.Close()
	}
	return db, done, nil
}
