// Package tables turns a file type's plugins.Table into the DDL of its
// table on PostgreSQL and SQLite, plans and applies the changes a new
// schema brings with Ent's Atlas-based migrate, and keeps the file_types
// rows, the record of what carpipe created, in step.
package tables

import (
	"fmt"
	"regexp"
	"strings"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"

	"github.com/carpipe/carpipe/plugins"
)

// carpipe's own columns.
const (
	ColFileID    = "_file_id"
	ColIndex     = "_index"
	ColEventTime = "_event_time"
	ColExtra     = "_extra"
	ColKey       = "_key"
)

// kind is how a column type is stored on each dialect. width orders the
// PostgreSQL columns: fixed-width types aligned on 8 bytes first, then 4,
// then 1, then the variable-length ones, so that no row pays alignment
// padding between them.
type kind struct {
	pg, lite string
	ent      field.Type
	width    int
}

const varlen = 0

var kinds = map[string]kind{
	plugins.ColText: {"text", "text", field.TypeString, varlen},
	// SQLite has no time type: the loaders write the fixed-width UTC text
	// "2006-01-02T15:04:05.000000Z", which sorts and compares as time
	// does. The declared type datetime (as Ent's own time columns) gives
	// NUMERIC affinity, which leaves that text as it is, and makes
	// modernc.org/sqlite scan it into a time.Time; scanned into a string
	// it comes back as time.RFC3339Nano, not the stored text.
	plugins.ColTimestamp: {"timestamptz", "datetime", field.TypeTime, 8},
	plugins.ColInteger:   {"bigint", "integer", field.TypeInt64, 8},
	// numeric is exact on PostgreSQL. SQLite's NUMERIC affinity would turn
	// a number past a double's precision into a double, so two keys could
	// become one: blob affinity keeps what the loader binds, a double when
	// it spells the same number, else the exact text (see the sqlite output's number).
	plugins.ColNumber: {"numeric", "blob", field.TypeFloat64, varlen},
	// On SQLite the loaders bind 0 or 1 (a Go bool); the text "true"
	// would be kept as text by the NUMERIC affinity of boolean.
	plugins.ColBoolean: {"boolean", "boolean", field.TypeBool, 1},
	// text, not json, on SQLite: json has NUMERIC affinity, which would
	// turn a bare number such as 1.10 into a double.
	plugins.ColJSON: {"jsonb", "text", field.TypeJSON, varlen},
}

var meta = map[string]kind{
	ColFileID:    {"bigint", "integer", field.TypeInt64, 8},
	ColIndex:     {"integer", "integer", field.TypeInt32, 4},
	ColEventTime: kinds[plugins.ColTimestamp],
	// Always an object, so SQLite's json (NUMERIC affinity) is safe.
	ColExtra: {"jsonb", "json", field.TypeJSON, varlen},
	ColKey:   {"text", "text", field.TypeString, varlen},
}

func (k kind) column(name string, null bool) *schema.Column {
	return &schema.Column{Name: name, Type: k.ent, Nullable: null,
		SchemaType: map[string]string{dialect.Postgres: k.pg, dialect.SQLite: k.lite}}
}

// IndexName is the name of a table's unique index.
func IndexName(table string) string { return table + "_key" }

func fkName(table string) string { return table + "_" + ColFileID + "_fkey" }

// Ent is the table of t as Ent's migrate builds it: carpipe's columns,
// one nullable column per property, the foreign key of _file_id to
// files(id) and the unique index of the key. The foreign key does no
// more than Ent's own (NO ACTION): carpipe never deletes a files row,
// and with no cascade to serve, no index on _file_id is needed either.
// The table carries the column types of both dialects, so it is the same
// whichever d (dialect.Postgres or dialect.SQLite) asks.
func Ent(d string, t plugins.Table) *schema.Table {
	type col struct {
		c     *schema.Column
		width int
	}
	var cols []col
	add := func(k kind, name string, null bool) *schema.Column {
		c := k.column(name, null)
		cols = append(cols, col{c, k.width})
		return c
	}
	fileID := add(meta[ColFileID], ColFileID, false)
	if t.HasTime {
		add(meta[ColEventTime], ColEventTime, true)
	}
	add(meta[ColIndex], ColIndex, false)
	props := make([]*schema.Column, len(t.Columns))
	for i, c := range t.Columns {
		props[i] = add(kinds[c.Type], c.Name, true)
	}
	add(meta[ColExtra], ColExtra, true)
	key := []*schema.Column{}
	for _, i := range t.Key {
		key = append(key, props[i])
	}
	if len(t.Key) == 0 {
		key = append(key, add(meta[ColKey], ColKey, false))
	}
	et := schema.NewTable(t.Name)
	for _, w := range []int{8, 4, 1, varlen} {
		for _, c := range cols {
			if c.width == w {
				et.AddColumn(c.c)
			}
		}
	}
	et.Indexes = append(et.Indexes, &schema.Index{Name: IndexName(t.Name), Unique: true, Columns: key})
	files := filesTable()
	et.AddForeignKey(&schema.ForeignKey{
		Symbol: fkName(t.Name), Columns: []*schema.Column{fileID},
		RefTable: files, RefColumns: files.PrimaryKey,
		OnUpdate: schema.NoAction, OnDelete: schema.NoAction,
	})
	return et
}

// filesTable stands for the ledger's table, for the foreign keys to
// refer to: only its primary key matters here.
func filesTable() *schema.Table {
	id := &schema.Column{Name: "id", Type: field.TypeInt, Increment: true}
	return &schema.Table{Name: "files", Columns: []*schema.Column{id}, PrimaryKey: []*schema.Column{id}}
}

var ident = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// maxIdent is PostgreSQL's limit; the index name adds 4 bytes.
const maxIdent = 63 - len("_key")

// check tells what makes t unusable as a table: a programming error of
// whoever built it, not a plan.
func check(t plugins.Table) error {
	if !ident.MatchString(t.Name) || len(t.Name) > maxIdent {
		return fmt.Errorf("file type %s: table name %q is not a plain SQL identifier of at most %d bytes", t.FileType, t.Name, maxIdent)
	}
	seen := map[string]bool{}
	for name := range meta {
		seen[name] = true
	}
	for _, c := range t.Columns {
		switch {
		case !ident.MatchString(c.Name) || len(c.Name) > 63:
			return fmt.Errorf("file type %s: column name %q is not a plain SQL identifier", t.FileType, c.Name)
		case seen[c.Name]:
			return fmt.Errorf("file type %s: column %s appears twice or is one of carpipe's own", t.FileType, c.Name)
		}
		if _, ok := kinds[c.Type]; !ok {
			return fmt.Errorf("file type %s: column %s has unknown type %q", t.FileType, c.Name, c.Type)
		}
		seen[c.Name] = true
	}
	for _, i := range t.Key {
		if i < 0 || i >= len(t.Columns) {
			return fmt.Errorf("file type %s: key column %d out of range", t.FileType, i)
		}
	}
	return nil
}

// keyNames is the key as file_types holds it: column names; none for _key.
func keyNames(t plugins.Table) []string {
	var ns []string
	for _, i := range t.Key {
		ns = append(ns, t.Columns[i].Name)
	}
	return ns
}

// keyText is a key as a message shows it.
func keyText(names []string) string {
	if len(names) == 0 {
		return "(" + ColKey + ")"
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// quote makes an identifier safe for both dialects: a plain name may
// still be a keyword (order, user).
func quote(name string) string { return `"` + name + `"` }

// Bind writes a query's ? placeholders as dialect d wants them: $1, $2, …
// on PostgreSQL.
func Bind(d, query string) string {
	if d != dialect.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
