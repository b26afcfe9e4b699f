package sqlite

import (
	"errors"

	"github.com/carpipe/carpipe/plugins"
)

var _ plugins.DDLWriter = (*SQLite)(nil)

// TableSQL is the SQL of the typed tables; it needs no connection, so that
// `carpipe schemas --sql` can print it.
// TEMPORARY (branch cli): the lead wires it to the DDL package at merge.
func (s *SQLite) TableSQL(ts []plugins.Table) (string, error) {
	return "", errors.New("not yet: the typed tables' DDL is not wired in")
}
