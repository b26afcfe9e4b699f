package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
)

// viewLockKey keeps two processes from replacing views at once; the loser
// leaves the views to the winner rather than wait.
const viewLockKey int64 = 0x63617270_76696577 // "carpview"

// marker starts the note carpipe leaves on its views (a comment on
// Postgres, a SQL comment in the view's text on SQLite); the note ends with
// the hash of the view's SQL, so an unchanged view is left alone.
const marker = "carpipe: typed view of file type "

// ViewSQL is the SQL that ApplyViews runs for views in dialect d.
func ViewSQL(d string, views []plugins.View) string {
	var b strings.Builder
	for i, v := range views {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, s := range viewStatements(d, v) {
			b.WriteString(s)
			b.WriteString(";\n")
		}
	}
	return b.String()
}

// viewStatements drops and creates a view, leaving the note with its hash.
func viewStatements(d string, v plugins.View) []string {
	create, sum := viewCreate(d, v)
	// On one line: on SQLite it is a -- comment.
	note := marker + strings.NewReplacer("\n", " ", "\r", " ").Replace(v.FileType) + "; sha256:" + sum
	drop := "DROP VIEW IF EXISTS " + quoteIdent(v.Name)
	if d == dialect.Postgres {
		return []string{drop, create, "COMMENT ON VIEW " + quoteIdent(v.Name) + " IS " + pq.QuoteLiteral(note)}
	}
	head, body, _ := strings.Cut(create, "\n")
	return []string{drop, head + "\n-- " + note + "\n" + body}
}

// viewCreate is the CREATE VIEW statement and its hash.
func viewCreate(d string, v plugins.View) (string, string) {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE VIEW %s AS\nSELECT\n", quoteIdent(v.Name))
	b.WriteString("  r.id AS record_id,\n  r.file_id AS file_id,\n  r.event_time AS event_time,\n  r.created_at AS created_at")
	for _, c := range v.Columns {
		fmt.Fprintf(&b, ",\n  %s AS %s", columnExpr(d, c), quoteIdent(c.Name))
	}
	fmt.Fprintf(&b, "\nFROM records AS r\nWHERE r.file_type = %s", literal(d, v.FileType))
	sum := sha256.Sum256([]byte(b.String()))
	return b.String(), hex.EncodeToString(sum[:])
}

// rfc3339 is the shape of a date-time a Postgres cast accepts; anything
// else (records loaded under an older schema) reads as NULL rather than
// making every query of the view fail.
const rfc3339 = `^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)([.][0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$`

// columnExpr reads one property with the column's type. A value of another
// JSON type reads as NULL, so a view never fails on old records. Casts sit
// in a THEN of their own: only CASE orders evaluation, AND does not.
func columnExpr(d string, c plugins.Column) string {
	if d == dialect.Postgres {
		v := "r.payload->" + literal(d, c.Property)
		text := "r.payload->>" + literal(d, c.Property)
		is := func(t string) string { return "jsonb_typeof(" + v + ") = '" + t + "'" }
		switch c.Type {
		case plugins.ColText:
			return "CASE WHEN " + is("string") + " THEN " + text + " END"
		case plugins.ColTimestamp:
			return "CASE WHEN " + is("string") + " THEN CASE WHEN " + text + " ~ '" + rfc3339 + "' THEN (" + text + ")::timestamptz END END"
		case plugins.ColInteger:
			return "CASE WHEN " + is("number") + " THEN CASE WHEN (" + v + ")::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN (" + v + ")::numeric::bigint END END"
		case plugins.ColNumber:
			// A number past float8's range reads NULL rather than fail the query.
			n := "(" + v + ")::numeric"
			return "CASE WHEN " + is("number") + " THEN CASE WHEN " + n + " = 0 OR abs(" + n + ") BETWEEN 1e-307 AND 1e308 THEN " + n + "::double precision END END"
		case plugins.ColBoolean:
			return "CASE WHEN " + is("boolean") + " THEN (" + v + ")::boolean END"
		}
		return v
	}
	val, typ, js := sqliteValue(c.Property)
	switch c.Type {
	case plugins.ColText, plugins.ColTimestamp:
		return "CASE WHEN " + typ + " = 'text' THEN " + val + " END"
	case plugins.ColInteger:
		return "CASE WHEN " + typ + " IN ('integer', 'real') THEN CAST(" + val + " AS INTEGER) END"
	case plugins.ColNumber:
		return "CASE WHEN " + typ + " IN ('integer', 'real') THEN CAST(" + val + " AS REAL) END"
	case plugins.ColBoolean:
		return "CASE " + typ + " WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"
	}
	return js
}

// sqliteValue returns expressions for a top-level property's SQL value,
// its JSON type and its JSON text. A JSON path cannot name a key holding
// '"' or '\', so those are looked up with json_each.
func sqliteValue(key string) (val, typ, js string) {
	if !strings.ContainsAny(key, "\"\\") {
		p := literal(dialect.SQLite, `$."`+key+`"`)
		return "json_extract(r.payload, " + p + ")", "json_type(r.payload, " + p + ")", "r.payload -> " + p
	}
	each := func(col string) string {
		return "(SELECT " + col + " FROM json_each(r.payload) WHERE key = " + literal(dialect.SQLite, key) + ")"
	}
	return each("value"), each("type"), each("json_quote(value)")
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// literal quotes a string constant; Postgres may read a backslash as an
// escape, which pq.QuoteLiteral accounts for.
func literal(d, s string) string {
	if d == dialect.Postgres {
		return pq.QuoteLiteral(s)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ApplyViews creates or replaces each view whose SQL changed, each in its
// own transaction, and returns the names it touched.
func (s *Store) ApplyViews(ctx context.Context, views []plugins.View) ([]string, error) {
	var touched []string
	var errs []error
	for _, v := range views {
		done, err := s.applyView(ctx, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("view %s: %w", v.Name, err))
		}
		if done {
			touched = append(touched, v.Name)
		}
	}
	return touched, errors.Join(errs...)
}

func (s *Store) applyView(ctx context.Context, v plugins.View) (bool, error) {
	stmts := viewStatements(s.Dialect, v)
	_, sum := viewCreate(s.Dialect, v)
	// The usual case, unchanged, needs no transaction: on SQLite one
	// would wait for the database's single writer.
	kind, note, err := s.existing(ctx, s.DB, v.Name)
	if err == nil && kind == "view" && strings.Contains(note, "sha256:"+sum) {
		return false, nil
	}
	if s.Serial {
		s.write.Lock()
		defer s.write.Unlock()
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if s.Dialect == dialect.Postgres {
		// An analyst's long query on the view must not hold up loading.
		if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
			return false, err
		}
		var mine bool
		if err := tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock($1)", viewLockKey).Scan(&mine); err != nil || !mine {
			return false, err
		}
	}
	kind, note, err = s.existing(ctx, tx, v.Name)
	switch {
	case err != nil:
		return false, err
	case kind == "":
	case kind != "view":
		return false, fmt.Errorf("the name is taken by a %s; carpipe only replaces its own views: rename or drop it", kind)
	case !strings.Contains(note, marker):
		return false, errors.New("the name is taken by a view carpipe did not create: rename or drop it")
	case strings.Contains(note, "sha256:"+sum):
		return false, nil // unchanged
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// existing tells what kind of object holds name, if any, and the note on
// it (Postgres: its comment; SQLite: its SQL).
func (s *Store) existing(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (kind, note string, err error) {
	var q string
	if s.Dialect == dialect.Postgres {
		q = `SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
			WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' ELSE 'relation' END,
			coalesce(obj_description(c.oid, 'pg_class'), '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relname = $1`
	} else {
		// SQLite names are case-insensitive.
		q = `SELECT type, coalesce(sql, '') FROM sqlite_master WHERE lower(name) = ?`
	}
	err = db.QueryRowContext(ctx, q, name).Scan(&kind, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return kind, note, err
}
