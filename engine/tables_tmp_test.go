package engine_test

import (
	"context"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
)

// typed is the SQLite output whose Migrate also makes the typed tables of
// the shipped types by hand, keyed by the records' digest, until the
// engine applies the schemas' tables (Planner.Apply) itself; the lead
// removes this file at the merge.
type typed struct {
	sqlite.SQLite `yaml:",inline"`
}

var shipped = []plugins.Table{
	{Name: "vehicles_status", FileType: "vehicles_status", HasTime: true},
	{Name: "objects_detection", FileType: "objects_detection", HasTime: true},
}

func (s *typed) Migrate(ctx context.Context) error {
	if err := s.SQLite.Migrate(ctx); err != nil {
		return err
	}
	for _, t := range shipped {
		for _, q := range []string{
			`CREATE TABLE IF NOT EXISTS ` + t.Name + ` (_file_id bigint NOT NULL REFERENCES files(id), _index integer NOT NULL,
				_event_time TEXT NULL, _extra TEXT NULL, _key text NOT NULL)`,
			`CREATE UNIQUE INDEX IF NOT EXISTS ` + t.Name + `_key ON ` + t.Name + ` (_key)`,
		} {
			if _, err := s.DB.ExecContext(ctx, q); err != nil {
				return err
			}
		}
	}
	s.SetTables(shipped)
	return nil
}

// sqliteSpec registers typed as the sqlite output.
func sqliteSpec(db *typed) plugins.OutputSpec {
	return plugins.OutputSpec{Name: "sqlite", New: func() any {
		if db != nil {
			return db
		}
		return &typed{}
	}}
}
