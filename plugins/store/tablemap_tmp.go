package store

import (
	"sync"

	"github.com/carpipe/carpipe/plugins"
)

// A stand-in for the tables Store.Apply keeps, until it lands; the lead
// deletes this file at the merge.
var tmpTables = struct {
	sync.Mutex
	m map[*Store]map[string]plugins.Table
}{m: map[*Store]map[string]plugins.Table{}}

// Table returns the table of a file type.
func (s *Store) Table(fileType string) (plugins.Table, bool) {
	tmpTables.Lock()
	defer tmpTables.Unlock()
	t, ok := tmpTables.m[s][fileType]
	return t, ok
}

// SetTables tells the store the tables of its file types.
func (s *Store) SetTables(ts []plugins.Table) {
	tmpTables.Lock()
	defer tmpTables.Unlock()
	m := map[string]plugins.Table{}
	for _, t := range ts {
		m[t.FileType] = t
	}
	tmpTables.m[s] = m
}
