// Package store holds what the Ent-backed outputs (postgres, sqlite) share.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	atlaspg "ariga.io/atlas/sql/postgres"
	atlasschema "ariga.io/atlas/sql/schema"
	atlassqlite "ariga.io/atlas/sql/sqlite"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	sqlschema "entgo.io/ent/dialect/sql/schema"
	"github.com/lib/pq"
	"modernc.org/sqlite"

	entmigrate "github.com/carpipe/carpipe/ent/migrate"
	entschema "github.com/carpipe/carpipe/ent/schema"
	"github.com/carpipe/carpipe/plugins/store/tables"
)

// advisoryLockKey serialises Migrate across every process that shares a
// Postgres database. Fixed, so all replicas agree on it.
const advisoryLockKey int64 = 0x63617270_6d696772 // "carpmigr"

// legacyVersion is the last migration of the old runner (carpipe v0.1),
// numbered in carpipe_migrations; only a database there can be upgraded.
const legacyVersion = 3

// dialectDir maps an Ent dialect to its folder under migrations/.
func dialectDir(d string) (string, error) {
	switch d {
	case dialect.Postgres:
		return "postgres", nil
	case dialect.SQLite:
		return "sqlite", nil
	}
	return "", fmt.Errorf("store: unsupported dialect %q", d)
}

// migrations returns the embedded migrations of dialect d, refused when a
// file no longer matches atlas.sum: an applied file must never change.
func migrations(d string) (*migrate.MemDir, error) {
	name, err := dialectDir(d)
	if err != nil {
		return nil, err
	}
	return loadDir(entschema.Migrations, path.Join("migrations", name))
}

func loadDir(fsys fs.FS, name string) (*migrate.MemDir, error) {
	entries, err := fs.ReadDir(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("store: reading migrations: %w", err)
	}
	dir := &migrate.MemDir{}
	for _, e := range entries {
		b, err := fs.ReadFile(fsys, path.Join(name, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: reading migrations: %w", err)
		}
		if err := dir.WriteFile(e.Name(), b); err != nil {
			return nil, err
		}
	}
	if err := checkSum(dir, name); err != nil {
		return nil, err
	}
	return dir, nil
}

func checkSum(dir migrate.Dir, name string) error {
	err := migrate.Validate(dir)
	var cerr *migrate.ChecksumError
	switch {
	case errors.As(err, &cerr):
		return fmt.Errorf("store: migration %s/%s does not match %s/atlas.sum (%s since the sum was written); a migration must never change once written: undo the change and write a new one (ent/schema/migrations/README.md)",
			name, cerr.File, name, cerr.Reason)
	case err != nil:
		return fmt.Errorf("store: migrations %s: %w", name, err)
	}
	return nil
}

// Migrate brings db to the last embedded migration of dialect ("postgres"
// or "sqlite3"), each file in its own transaction together with its
// revision in carpipe_revisions. A database of carpipe v0.1 is first
// brought under these migrations (its records stay: see Legacy). It is
// safe to call from several processes at once. It returns how many
// revisions it recorded and the revision the database is at.
func Migrate(ctx context.Context, db *sql.DB, dialect string) (applied int, version string, err error) {
	dir, err := migrations(dialect)
	if err != nil {
		return 0, "", err
	}
	return migrateDir(ctx, db, dialect, dir)
}

func migrateDir(ctx context.Context, db *sql.DB, d string, dir migrate.Dir) (applied int, version string, err error) {
	if _, err := dialectDir(d); err != nil {
		return 0, "", err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("store: migrate: %w", err)
	}
	// After a failure the connection may still hold the lock or an open
	// transaction; it must not go back to the pool, so it is discarded.
	bad := false
	defer func() {
		if bad {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
	}()
	if d == dialect.Postgres {
		// Session-level lock: held across the per-file transactions below.
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", advisoryLockKey); err != nil {
			bad = true // a cancel may have raced the grant
			return 0, "", fmt.Errorf("store: migrate: taking the migration lock: %w", err)
		}
		defer func() {
			_, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", advisoryLockKey)
			if uerr != nil {
				bad = true
			}
		}()
	}
	upgraded, err := upgradeLegacy(ctx, conn, d, dir)
	if err != nil {
		bad = true
		return 0, "", err
	}
	if upgraded {
		applied++
	}
	if d == dialect.SQLite {
		// Rebuilding a table (SQLite's ALTER) must run with foreign keys off,
		// and the pragma is a no-op inside a transaction: switch it off
		// around the transactions; step checks the keys before each commit.
		var fk int
		if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			return applied, "", fmt.Errorf("store: migrate: %w", err)
		}
		if fk == 1 {
			if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = off"); err != nil {
				return applied, "", fmt.Errorf("store: migrate: %w", err)
			}
			defer func() {
				if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = on"); err != nil {
					bad = true
				}
			}()
		}
	}
	for {
		done, v, err := step(ctx, conn, d, dir)
		if err != nil {
			bad = true
			return applied, v, err
		}
		if done {
			return applied, v, nil
		}
		applied++
	}
}

// step applies the first pending file, if any, in one transaction that
// also reads the revisions, so a concurrent migrator never applies a file
// twice. It reports done when nothing was pending.
func step(ctx context.Context, conn *sql.Conn, d string, dir migrate.Dir) (done bool, version string, err error) {
	tx, err := begin(ctx, conn, d)
	if err != nil {
		return false, "", fmt.Errorf("store: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	rrw := &revisions{q: tx, d: d}
	if err := rrw.create(ctx); err != nil {
		return false, "", err
	}
	revs, err := rrw.ReadRevisions(ctx)
	if err != nil {
		return false, "", err
	}
	version = last(revs)
	if err := known(revs, dir); err != nil {
		return false, version, err
	}
	drv, err := atlasDriver(d, tx)
	if err != nil {
		return false, version, fmt.Errorf("store: migrate: %w", err)
	}
	// Allow dirty: carpipe may share a database with other tables.
	ex, err := migrate.NewExecutor(drv, dir, rrw, migrate.WithAllowDirty(true))
	if err != nil {
		return false, version, fmt.Errorf("store: migrate: %w", err)
	}
	pending, err := ex.Pending(ctx)
	switch {
	case errors.Is(err, migrate.ErrNoPendingFiles):
		return true, version, tx.Commit()
	case err != nil:
		return false, version, fmt.Errorf("store: migrate: %w", err)
	}
	f := pending[0]
	if err := ex.Execute(ctx, f); err != nil {
		return false, version, fmt.Errorf("store: migration %s: %w", f.Name(), err)
	}
	if d == dialect.SQLite {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return false, version, fmt.Errorf("store: migration %s: %w", f.Name(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, version, fmt.Errorf("store: migration %s: commit: %w", f.Name(), err)
	}
	return false, f.Version(), nil
}

// known fails when the database has a revision that dir lacks: a newer
// carpipe migrated it.
func known(revs []*migrate.Revision, dir migrate.Dir) error {
	files, err := dir.Files()
	if err != nil {
		return err
	}
	for _, r := range revs {
		if !slices.ContainsFunc(files, func(f migrate.File) bool { return f.Version() == r.Version }) {
			latest := "none"
			if len(files) > 0 {
				latest = files[len(files)-1].Version()
			}
			return fmt.Errorf("the database is at revision %s, newer than this carpipe's last (%s); upgrade carpipe", last(revs), latest)
		}
	}
	return nil
}

// last returns the newest fully applied revision, "" when none.
func last(revs []*migrate.Revision) string {
	v := ""
	for _, r := range revs {
		if r.Applied == r.Total && r.Version > v {
			v = r.Version
		}
	}
	return v
}

// upgradeLegacy brings a database of carpipe v0.1, numbered in
// carpipe_migrations, under the Atlas migrations, in one transaction: Ent
// adds what its fixed tables lack, the result must equal the Ent schema,
// the last migration is recorded as the baseline, and carpipe_migrations
// goes. The baseline is the last file, not the first: the tables equal the
// schema, which is what all the files build (TestMigrationFiles). The
// records table and its views stay for the move into typed tables.
func upgradeLegacy(ctx context.Context, conn *sql.Conn, d string, dir migrate.Dir) (upgraded bool, err error) {
	tx, err := begin(ctx, conn, d)
	if err != nil {
		return false, fmt.Errorf("store: migrate: %w", err)
	}
	defer func() {
		if err != nil || !upgraded {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	v, err := legacyAt(ctx, tx, d)
	switch {
	case err != nil:
		return false, err
	case v == 0:
		return false, nil
	case v != legacyVersion:
		return false, fmt.Errorf("store: the database is at migration %d of carpipe v0.1, and this carpipe upgrades only from its last (%d): upgrade with carpipe v0.1 first", v, legacyVersion)
	}
	files, err := dir.Files()
	if err != nil || len(files) == 0 {
		return false, fmt.Errorf("store: migrate: no migrations to upgrade to (%v)", err)
	}
	drv := txDriver{Conn: entsql.Conn{ExecQuerier: tx}, dialect: d}
	// Additions only (Ent's default): nothing of the old tables is lost.
	if err := entmigrate.NewSchema(drv).Create(ctx, sqlschema.WithDiffHook(samePredicates)); err != nil {
		return false, fmt.Errorf("store: upgrading the tables of carpipe v0.1: %w", err)
	}
	switch ddl, err := pendingDDL(ctx, drv); {
	case err != nil:
		return false, fmt.Errorf("store: upgrading the tables of carpipe v0.1: %w", err)
	case ddl != "":
		return false, fmt.Errorf("store: the tables of carpipe v0.1 differ from this carpipe's in what an upgrade must not change by itself:\n%s", ddl)
	}
	rrw := &revisions{q: tx, d: d}
	if err := rrw.create(ctx); err != nil {
		return false, err
	}
	f := files[len(files)-1]
	base := &migrate.Revision{Version: f.Version(), Description: f.Desc(), Type: migrate.RevisionTypeBaseline, ExecutedAt: time.Now()}
	if err := rrw.WriteRevision(ctx, base); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, "DROP TABLE carpipe_migrations"); err != nil {
		return false, fmt.Errorf("store: upgrading the tables of carpipe v0.1: %w", err)
	}
	if d == dialect.SQLite {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return false, fmt.Errorf("store: upgrading the tables of carpipe v0.1: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: upgrading the tables of carpipe v0.1: commit: %w", err)
	}
	return true, nil
}

// legacyAt returns the version in carpipe_migrations, 0 without the table.
func legacyAt(ctx context.Context, q querier, d string) (int, error) {
	ok, err := tableExists(ctx, q, d, "carpipe_migrations")
	if err != nil || !ok {
		return 0, err
	}
	var v int
	if err := q.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM carpipe_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: reading carpipe_migrations: %w", err)
	}
	return v, nil
}

// Legacy tells whether db still has the records table of carpipe v0.1,
// whose rows must move into the typed tables.
func Legacy(ctx context.Context, db *sql.DB, dialect string) (bool, error) {
	if _, err := dialectDir(dialect); err != nil {
		return false, err
	}
	return tableExists(ctx, db, dialect, "records")
}

// pendingDDL returns what Ent would still change, drops included, to make
// the fixed tables equal the Ent schema: "" when they do.
func pendingDDL(ctx context.Context, drv dialect.Driver) (string, error) {
	var buf strings.Builder
	err := entmigrate.NewSchema(drv).WriteTo(ctx, &buf,
		sqlschema.WithDropColumn(true), sqlschema.WithDropIndex(true), sqlschema.WithDiffHook(samePredicates))
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		switch strings.TrimSpace(line) {
		case "", "BEGIN;", "COMMIT;", "PRAGMA foreign_keys = off;", "PRAGMA foreign_keys = on;":
			continue
		}
		out.WriteString(line)
	}
	return out.String(), nil
}

// samePredicates keeps a partial index's predicate as the database holds
// it when it says the same as Ent's: PostgreSQL stores its own normal form
// ("((status)::text = 'running'::text)"), which Atlas, comparing text,
// would take for a change every time.
func samePredicates(next sqlschema.Differ) sqlschema.Differ {
	return sqlschema.DiffFunc(func(current, desired *atlasschema.Schema) ([]atlasschema.Change, error) {
		for _, t := range desired.Tables {
			ct, ok := current.Table(t.Name)
			if !ok {
				continue
			}
			for _, idx := range t.Indexes {
				ci, ok := ct.Index(idx.Name)
				if !ok {
					continue
				}
				want, have := predicate(idx.Attrs), predicate(ci.Attrs)
				if want != nil && have != nil && loose(want.P) == loose(have.P) {
					want.P = have.P
				}
			}
		}
		return next.Diff(current, desired)
	})
}

func predicate(attrs []atlasschema.Attr) *atlaspg.IndexPredicate {
	for _, a := range attrs {
		if p, ok := a.(*atlaspg.IndexPredicate); ok {
			return p
		}
	}
	return nil
}

var casts = regexp.MustCompile(`::[a-z][a-z ]*`)

// loose drops what PostgreSQL adds to a predicate: casts, parentheses,
// spacing and case.
func loose(p string) string {
	p = casts.ReplaceAllString(strings.ToLower(p), "")
	return strings.NewReplacer("(", "", ")", "", " ", "", "\n", "", "\t", "").Replace(p)
}

// txDriver lets Ent migrate inside a transaction the caller holds.
type txDriver struct {
	entsql.Conn
	dialect string
}

func (d txDriver) Tx(context.Context) (dialect.Tx, error) { return dialect.NopTx(d), nil }
func (d txDriver) Close() error                           { return nil }
func (d txDriver) Dialect() string                        { return d.dialect }

func atlasDriver(d string, q atlasschema.ExecQuerier) (migrate.Driver, error) {
	if d == dialect.Postgres {
		return atlaspg.Open(q)
	}
	return atlassqlite.Open(q)
}

// foreignKeyCheck fails when a row references a missing one, which SQLite
// did not prevent while foreign keys were off.
func foreignKeyCheck(ctx context.Context, tx txn) error {
	var table string
	err := tx.QueryRowContext(ctx, "SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1").Scan(&table)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("checking foreign keys: %w", err)
	}
	return fmt.Errorf("it leaves rows of table %s referencing missing rows", table)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type txn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Commit() error
	Rollback() error
}

func begin(ctx context.Context, conn *sql.Conn, d string) (txn, error) {
	if d == dialect.Postgres {
		return conn.BeginTx(ctx, nil)
	}
	// database/sql's BeginTx is DEFERRED on SQLite: two migrators could both
	// read the revisions before either writes. IMMEDIATE takes the write
	// lock first (waiting out busy_timeout).
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	return immediateTx{conn: conn, ctx: ctx}, nil
}

// immediateTx is a transaction opened by hand on one connection.
type immediateTx struct {
	conn *sql.Conn
	ctx  context.Context
}

func (t immediateTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(ctx, q, args...)
}

func (t immediateTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.conn.QueryContext(ctx, q, args...)
}

func (t immediateTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(ctx, q, args...)
}

func (t immediateTx) Commit() error {
	_, err := t.conn.ExecContext(t.ctx, "COMMIT")
	return err
}

func (t immediateTx) Rollback() error {
	_, err := t.conn.ExecContext(context.WithoutCancel(t.ctx), "ROLLBACK")
	return err
}

// tableExists reads the catalog only.
func tableExists(ctx context.Context, q querier, d, table string) (bool, error) {
	query := "SELECT to_regclass($1) IS NOT NULL"
	if d == dialect.SQLite {
		query = "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?"
	}
	var ok bool
	if err := q.QueryRowContext(ctx, query, table).Scan(&ok); err != nil {
		return false, fmt.Errorf("store: looking for table %s: %w", table, err)
	}
	return ok, nil
}

// Version returns the last migration applied to db, "" when none. db must
// be opened with lib/pq ("postgres") or modernc.org/sqlite ("sqlite").
func Version(ctx context.Context, db *sql.DB) (string, error) {
	var d string
	switch db.Driver().(type) {
	case *pq.Driver:
		d = dialect.Postgres
	case *sqlite.Driver:
		d = dialect.SQLite
	default:
		return "", fmt.Errorf("store: version: unsupported driver %T", db.Driver())
	}
	revs, err := readRevisions(ctx, db, d)
	return last(revs), err
}

// readRevisions reads carpipe_revisions, none without the table; it never
// writes.
func readRevisions(ctx context.Context, db *sql.DB, d string) ([]*migrate.Revision, error) {
	ok, err := tableExists(ctx, db, d, revisionsTable)
	if err != nil || !ok {
		return nil, err
	}
	return (&revisions{q: db, d: d}).ReadRevisions(ctx)
}

// unmigrated says, reading only, what db lacks of this carpipe's
// migrations of dialect; "" when nothing.
func unmigrated(ctx context.Context, db *sql.DB, d string) (string, error) {
	dir, err := migrations(d)
	if err != nil {
		return "", err
	}
	return unmigratedDir(ctx, db, d, dir)
}

func unmigratedDir(ctx context.Context, db *sql.DB, d string, dir migrate.Dir) (string, error) {
	files, err := dir.Files()
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("store: no migrations (%v)", err)
	}
	need := files[len(files)-1].Version()
	revs, err := readRevisions(ctx, db, d)
	if err != nil {
		return "", err
	}
	if len(revs) == 0 {
		v, err := legacyAt(ctx, db, d)
		switch {
		case err != nil:
			return "", err
		case v > 0:
			return fmt.Sprintf("the database is at migration %d of carpipe v0.1; this carpipe needs revision %s", v, need), nil
		}
		return "the database has no carpipe tables", nil
	}
	// As Atlas counts: the files from the first revision on (a legacy
	// baseline stands for the files before it) must all be applied.
	for _, f := range files {
		applied := slices.ContainsFunc(revs, func(r *migrate.Revision) bool { return r.Version == f.Version() && r.Applied == r.Total })
		if !applied && f.Version() >= revs[0].Version {
			return fmt.Sprintf("the database is at revision %s; this carpipe needs %s", last(revs), need), nil
		}
	}
	return "", nil
}

const revisionsTable = "carpipe_revisions"

// revisions keeps Atlas's revisions in carpipe_revisions, through the
// transaction of the file they describe.
type revisions struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}
	d string
}

var _ migrate.RevisionReadWriter = (*revisions)(nil)

func (r *revisions) create(ctx context.Context) error {
	ts := "timestamptz"
	if r.d == dialect.SQLite {
		ts = "datetime"
	}
	_, err := r.q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+revisionsTable+` (
	version text PRIMARY KEY,
	description text NOT NULL,
	type integer NOT NULL,
	applied integer NOT NULL,
	total integer NOT NULL,
	executed_at `+ts+` NOT NULL,
	execution_time bigint NOT NULL,
	error text NOT NULL,
	error_stmt text NOT NULL,
	hash text NOT NULL,
	partial_hashes text NOT NULL,
	operator_version text NOT NULL
)`)
	if err != nil {
		return fmt.Errorf("store: migrate: creating %s: %w", revisionsTable, err)
	}
	return nil
}

// Ident names the table, so that Atlas does not count it as a user's.
func (r *revisions) Ident() *migrate.TableIdent {
	return &migrate.TableIdent{Name: revisionsTable}
}

const revisionColumns = "version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version"

func (r *revisions) ReadRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	return r.read(ctx, "SELECT "+revisionColumns+" FROM "+revisionsTable+" ORDER BY version")
}

func (r *revisions) ReadRevision(ctx context.Context, v string) (*migrate.Revision, error) {
	revs, err := r.read(ctx, r.bind("SELECT "+revisionColumns+" FROM "+revisionsTable+" WHERE version = ?"), v)
	switch {
	case err != nil:
		return nil, err
	case len(revs) == 0:
		return nil, migrate.ErrRevisionNotExist
	}
	return revs[0], nil
}

func (r *revisions) read(ctx context.Context, query string, args ...any) ([]*migrate.Revision, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", revisionsTable, err)
	}
	defer rows.Close()
	var out []*migrate.Revision
	for rows.Next() {
		var (
			rev     migrate.Revision
			elapsed int64
			partial string
		)
		if err := rows.Scan(&rev.Version, &rev.Description, &rev.Type, &rev.Applied, &rev.Total, &rev.ExecutedAt,
			&elapsed, &rev.Error, &rev.ErrorStmt, &rev.Hash, &partial, &rev.OperatorVersion); err != nil {
			return nil, fmt.Errorf("store: reading %s: %w", revisionsTable, err)
		}
		rev.ExecutionTime = time.Duration(elapsed)
		if partial != "" {
			if err := json.Unmarshal([]byte(partial), &rev.PartialHashes); err != nil {
				return nil, fmt.Errorf("store: reading %s, revision %s: partial_hashes: %w", revisionsTable, rev.Version, err)
			}
		}
		out = append(out, &rev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", revisionsTable, err)
	}
	return out, nil
}

func (r *revisions) WriteRevision(ctx context.Context, rev *migrate.Revision) error {
	partial := ""
	if len(rev.PartialHashes) > 0 {
		b, err := json.Marshal(rev.PartialHashes)
		if err != nil {
			return err
		}
		partial = string(b)
	}
	_, err := r.q.ExecContext(ctx, r.bind(`INSERT INTO `+revisionsTable+` (`+revisionColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (version) DO UPDATE SET description = excluded.description, type = excluded.type,
	applied = excluded.applied, total = excluded.total, executed_at = excluded.executed_at,
	execution_time = excluded.execution_time, error = excluded.error, error_stmt = excluded.error_stmt,
	hash = excluded.hash, partial_hashes = excluded.partial_hashes, operator_version = excluded.operator_version`),
		rev.Version, rev.Description, rev.Type, rev.Applied, rev.Total, rev.ExecutedAt.UTC(),
		int64(rev.ExecutionTime), rev.Error, rev.ErrorStmt, rev.Hash, partial, rev.OperatorVersion)
	if err != nil {
		return fmt.Errorf("store: writing revision %s: %w", rev.Version, err)
	}
	return nil
}

func (r *revisions) DeleteRevision(ctx context.Context, v string) error {
	if _, err := r.q.ExecContext(ctx, r.bind("DELETE FROM "+revisionsTable+" WHERE version = ?"), v); err != nil {
		return fmt.Errorf("store: deleting revision %s: %w", v, err)
	}
	return nil
}

// bind writes q's placeholders for the revisions' dialect.
func (r *revisions) bind(q string) string { return tables.Bind(r.d, q) }
