package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store/tables"
)

var _ plugins.Planner = (*Store)(nil)

// tableSet is the tables the last Apply brought the database to, for
// the loaders: each as the schema gives it, so its columns are in the
// order of Record.Values.
type tableSet struct {
	mu sync.RWMutex
	m  map[string]plugins.Table // by file type
}

// Plan compares ts with the database and tells what Apply would do. It
// changes nothing.
func (s *Store) Plan(ctx context.Context, ts []plugins.Table) (plugins.Plan, error) {
	p, err := tables.Plan(ctx, s.DB, s.Dialect, ts)
	return p, s.wrap(err)
}

// Apply creates the missing tables and adds the new columns. With a
// breaking change it changes nothing and returns the plan with an error
// matching plugins.ErrBreaking. Once applied, Table gives the tables.
func (s *Store) Apply(ctx context.Context, ts []plugins.Table) (plugins.Plan, error) {
	if s.Serial {
		s.write.Lock()
		defer s.write.Unlock()
	}
	old, err := tableExists(ctx, s.DB, s.Dialect, "records")
	if err == nil && old {
		err = s.dropViews(ctx)
	}
	if err != nil {
		return plugins.Plan{}, s.wrap(fmt.Errorf("reading what an older carpipe left: %w", err))
	}
	p, err := tables.Apply(ctx, s.DB, s.Dialect, ts)
	if err != nil {
		return p, s.wrap(err)
	}
	if old {
		n, err := s.upgradeRecords(ctx, ts)
		if err != nil {
			return p, s.wrap(fmt.Errorf("moving the records table of an older carpipe into the typed tables: %w", err))
		}
		s.Log.Info("records of an older carpipe moved into the typed tables", "records", n)
	}
	m := make(map[string]plugins.Table, len(ts))
	for _, t := range ts {
		m[t.FileType] = t
	}
	s.tables.mu.Lock()
	s.tables.m = m
	s.tables.mu.Unlock()
	return p, nil
}

// Table is the table of fileType as the last Apply made it.
func (s *Store) Table(fileType string) (plugins.Table, bool) {
	s.tables.mu.RLock()
	defer s.tables.mu.RUnlock()
	t, ok := s.tables.m[fileType]
	return t, ok
}

// Scan calls fn with each stored record of t as a JSON object, in one
// streaming query.
func (s *Store) Scan(ctx context.Context, t plugins.Table, fn func(fileID int64, index int, record []byte) error) error {
	return s.wrap(tables.Scan(ctx, s.DB, s.Dialect, t, fn))
}

var _ plugins.DDLWriter = (*Store)(nil)

// TableSQL is the SQL that creates ts in an empty carpipe database; it
// needs no connection, so that a DBA can review it anywhere.
func (s *Store) TableSQL(ts []plugins.Table) (string, error) {
	return tables.SQL(s.Dialect, ts)
}
