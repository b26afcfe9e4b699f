package tables_test

import (
	"errors"
	"log/slog"
	"reflect"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
	"github.com/carpipe/carpipe/plugins/store/tables"
)

// The store's Planner is this package's, and remembers the applied
// tables for the loaders.
func TestStore(t *testing.T) {
	for _, d := range []string{dialect.Postgres, dialect.SQLite} {
		t.Run(d, func(t *testing.T) {
			db, id := tables.OpenForTest(t, d)
			ctx := t.Context()
			s := &store.Store{DB: db, Dialect: d, Fatal: func(error) bool { return false }, Serial: d == dialect.SQLite,
				Log: slog.New(slog.DiscardHandler)}
			tab := plugins.Table{Name: "logs", FileType: "logs", Columns: []plugins.Column{
				{Name: "msg", Property: "msg", Type: plugins.ColText},
				{Name: "n", Property: "n", Type: plugins.ColInteger},
			}, Key: []int{1}, Digest: "sha256:1"}
			if p, err := s.Plan(ctx, []plugins.Table{tab}); err != nil || len(p.Changes) != 1 {
				t.Fatalf("Plan: %+v, %v", p, err)
			}
			if _, ok := s.Table("logs"); ok {
				t.Error("Plan made a table known")
			}
			if _, err := s.Apply(ctx, []plugins.Table{tab}); err != nil {
				t.Fatal(err)
			}
			if got, ok := s.Table("logs"); !ok || !reflect.DeepEqual(got, tab) {
				t.Errorf("Table = %+v, %v", got, ok)
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO logs (_file_id, _index, msg, n) VALUES ($1, 0, 'hi', 3)", id); err != nil {
				t.Fatal(err)
			}
			var got []string
			err := s.Scan(ctx, tab, func(_ int64, _ int, r []byte) error { got = append(got, string(r)); return nil })
			if err != nil || !reflect.DeepEqual(got, []string{`{"msg":"hi","n":3}`}) {
				t.Errorf("Scan: %q, %v", got, err)
			}
			changed := tab
			changed.Key = []int{0}
			if _, err := s.Apply(ctx, []plugins.Table{changed}); !errors.Is(err, plugins.ErrBreaking) {
				t.Fatalf("Apply: %v, want ErrBreaking", err)
			}
			if got, _ := s.Table("logs"); !reflect.DeepEqual(got, tab) {
				t.Errorf("a refused Apply changed Table to %+v", got)
			}
		})
	}
}
