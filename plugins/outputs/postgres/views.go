package postgres

import (
	"entgo.io/ent/dialect"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
)

var _ plugins.Viewer = (*Postgres)(nil)

// ViewSQL is the SQL of the typed views; it needs no connection, so that
// `carpipe schemas --sql` can print it.
func (p *Postgres) ViewSQL(views []plugins.View) string {
	return store.ViewSQL(dialect.Postgres, views)
}
