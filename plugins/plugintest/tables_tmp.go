package plugintest

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
)

// CreateTables makes typed tables by hand, as Planner.Apply will, for the
// tests of the load path until Apply lands; the lead replaces its callers
// with Apply and deletes this file at the merge. The fixed tables (files)
// must exist.
func CreateTables(t testing.TB, db *sql.DB, tables []plugins.Table) {
	t.Helper()
	_, pg := db.Driver().(*pq.Driver)
	types := map[string][2]string{ // PostgreSQL, SQLite
		plugins.ColText:      {"text", "TEXT"},
		plugins.ColTimestamp: {"timestamptz", "TEXT"},
		plugins.ColInteger:   {"bigint", "INTEGER"},
		plugins.ColNumber:    {"numeric", "NUMERIC"},
		plugins.ColBoolean:   {"boolean", "INTEGER"},
		plugins.ColJSON:      {"jsonb", "TEXT"},
	}
	typ := func(c string) string {
		if pg {
			return types[c][0]
		}
		return types[c][1]
	}
	for _, tb := range tables {
		cols := []string{"_file_id bigint NOT NULL REFERENCES files(id)", "_index integer NOT NULL"}
		if tb.HasTime {
			cols = append(cols, "_event_time "+typ(plugins.ColTimestamp)+" NULL")
		}
		cols = append(cols, "_extra "+typ(plugins.ColJSON)+" NULL")
		key := []string{"_key"}
		if len(tb.Key) == 0 {
			cols = append(cols, "_key text NOT NULL")
		} else {
			key = key[:0]
			for _, i := range tb.Key {
				key = append(key, `"`+tb.Columns[i].Name+`"`)
			}
		}
		for _, c := range tb.Columns {
			cols = append(cols, `"`+c.Name+`" `+typ(c.Type))
		}
		for _, q := range []string{
			`CREATE TABLE "` + tb.Name + `" (` + strings.Join(cols, ", ") + `)`,
			`CREATE UNIQUE INDEX "` + tb.Name + `_key" ON "` + tb.Name + `" (` + strings.Join(key, ", ") + `)`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("plugintest: %s: %v", q, err)
			}
		}
	}
}
