package sqlite

import (
	"entgo.io/ent/dialect"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
)

var _ plugins.Viewer = (*SQLite)(nil)

// ViewSQL is the SQL of the typed views; it needs no connection, so that
// `carpipe schemas --sql` can print it.
func (s *SQLite) ViewSQL(views []plugins.View) string { return store.ViewSQL(dialect.SQLite, views) }
