package tables

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	atlas "ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlite"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"

	"github.com/carpipe/carpipe/plugins"
)

// SQL is the SQL Apply would run to create ts in an empty carpipe
// database of dialect d (dialect.Postgres or dialect.SQLite), found with
// no database at all: each table's statements after the comment line
// "-- file type <name>", each statement ending with ";\n", a blank line
// between tables. It is the plan Plan makes, by the same code, with
// Atlas's connection-less differ and planner in place of the database.
func SQL(d string, ts []plugins.Table) (string, error) {
	if d != dialect.Postgres && d != dialect.SQLite {
		return "", fmt.Errorf("tables: unsupported dialect %q", d)
	}
	if err := checkAll(ts); err != nil {
		return "", err
	}
	p, err := planRows(context.Background(), d, offlineMigrate(d), ts, nil, false)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, c := range p.Changes {
		if c.Kind != plugins.ChangeCreate || len(c.SQL) == 0 {
			return "", fmt.Errorf("file type %s: unexpected change in an empty database: %s", c.FileType, c.Detail)
		}
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "-- file type %s\n", c.FileType)
		for _, s := range c.SQL {
			b.WriteString(s + ";\n")
		}
	}
	return b.String(), nil
}

// offlineMigrate is Ent's migrate against an empty database that is not
// there. Ent's Create readies the tables (it shortens long symbols as
// online) and hands them to a hook, which converts them with Ent's own
// conversion, diffs them against an empty schema and plans the changes,
// as Ent's online migrate does after inspecting the database.
func offlineMigrate(d string) migrator {
	differ, planner := postgres.DefaultDiff, postgres.DefaultPlan
	if d == dialect.SQLite {
		differ, planner = sqlite.DefaultDiff, sqlite.DefaultPlan
	}
	return func(ctx context.Context, tables []*schema.Table, diff schema.DiffHook, apply schema.ApplyHook) error {
		var m *schema.Atlas
		create := func(schema.Creator) schema.Creator {
			return schema.CreateFunc(func(ctx context.Context, tables ...*schema.Table) error {
				realm, err := m.StateReader(tables...).ReadState(ctx)
				if err != nil {
					return err
				}
				changes, err := diff(schema.DiffFunc(func(current, desired *atlas.Schema) ([]atlas.Change, error) {
					return differ.SchemaDiff(current, desired)
				})).Diff(&atlas.Schema{}, realm.Schemas[0])
				if err != nil {
					return err
				}
				// The schema has no name, so the statements name none,
				// as Ent's online migrate has them.
				p, err := planner.PlanChanges(ctx, "changes", changes)
				if err != nil {
					return err
				}
				return apply(schema.ApplyFunc(func(context.Context, dialect.ExecQuerier, *migrate.Plan) error {
					return errOffline
				})).Apply(ctx, offline(d), p)
			})
		}
		var err error
		m, err = schema.NewMigrate(offline(d), schema.WithForeignKeys(true), schema.WithHooks(create))
		if err != nil {
			return err
		}
		return m.Create(ctx, tables...)
	}
}

var errOffline = errors.New("tables: no database to run the statements on")

// offline is an Ent driver of dialect d with no database behind it. When
// Ent's migrate readies its dialect it asks one question, answered here
// as a database carpipe supports would; anything else is refused.
type offline string

// answers are the questions Ent's dialects ask when they start:
// PostgreSQL's version (the oldest Ent accepts: Ent's conversion of
// carpipe's tables does not depend on it), and whether SQLite enforces
// foreign keys (carpipe's SQLite connections do).
var answers = map[string]map[string]string{
	dialect.Postgres: {"SHOW server_version_num": "100000"},
	dialect.SQLite:   {"PRAGMA foreign_keys": "1"},
}

func (o offline) Dialect() string { return string(o) }

func (o offline) Query(_ context.Context, query string, _, v any) error {
	a, ok := answers[string(o)][query]
	rows, isRows := v.(*entsql.Rows)
	if !ok || !isRows {
		return fmt.Errorf("tables: no database to ask %q", query)
	}
	rows.ColumnScanner = &answer{v: a}
	return nil
}

func (o offline) Exec(_ context.Context, query string, _, _ any) error {
	return fmt.Errorf("tables: no database to run %q", query)
}

func (o offline) Tx(context.Context) (dialect.Tx, error) { return nil, errOffline }
func (o offline) Close() error                           { return nil }

// answer is a result of one row of one column.
type answer struct {
	v    string
	read bool
}

func (a *answer) Next() bool {
	next := !a.read
	a.read = true
	return next
}

func (a *answer) Scan(dest ...any) error {
	if len(dest) != 1 {
		return fmt.Errorf("tables: scanning one column into %d", len(dest))
	}
	switch p := dest[0].(type) {
	case *string:
		*p = a.v
	case *int64:
		_, err := fmt.Sscan(a.v, p)
		return err
	default:
		return fmt.Errorf("tables: scanning a text into %T", p)
	}
	return nil
}

func (a *answer) Columns() ([]string, error)              { return []string{"answer"}, nil }
func (a *answer) ColumnTypes() ([]*sql.ColumnType, error) { return nil, nil }
func (a *answer) Err() error                              { return nil }
func (a *answer) NextResultSet() bool                     { return false }
func (a *answer) Close() error                            { return nil }
