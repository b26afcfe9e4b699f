package engine_test

import (
	"entgo.io/ent/dialect"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/plugins/store"
)

// typed is the SQLite output, as the tests embed it.
type typed struct {
	sqlite.SQLite `yaml:",inline"`
}

// sqliteSpec registers typed as the sqlite output.
func sqliteSpec(db *typed) plugins.OutputSpec {
	return plugins.OutputSpec{Name: "sqlite", New: func() any {
		if db != nil {
			return db
		}
		return &typed{SQLite: sqlite.SQLite{Store: store.Store{Dialect: dialect.SQLite}}}
	}}
}
