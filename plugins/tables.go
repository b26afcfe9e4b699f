package plugins

import (
	"context"
	"errors"
)

// Table is where the records of one file type live: one column per
// top-level property the record schema declares, plus carpipe's own
// columns, whose names start with "_":
//
//	_file_id     the ledger row (files.id) of the file the record came from
//	_index       the record's index in that file
//	_event_time  the record's time, when the type declares one
//	_extra       the properties the schema allows but does not declare
//	_key         the record's digest, only when the type declares no key
type Table struct {
	Name     string // a plain SQL identifier: [a-z_][a-z0-9_]*
	FileType string
	// Columns are the declared properties, in the order of Record.Values.
	Columns []Column
	// Key holds the indexes in Columns of the declared key, in the key's
	// order: the table's unique index. Empty: _key is the unique index.
	Key []int
	// HasTime tells that the type declares a time: _event_time exists.
	HasTime bool
	// Digest identifies the schema file's content ("sha256:" + hex).
	Digest string
}

// Column is one declared property of a Table.
type Column struct {
	Name     string // a plain SQL identifier, unique in the table
	Property string // the property's name in the record
	Type     string // one of the Col* constants
}

// Column types, from the JSON Schema of the property, and the text of a
// Value of each (the loaders' common spelling):
const (
	ColText      = "text"      // string: the string itself
	ColTimestamp = "timestamp" // string with format date-time: UTC, "2006-01-02T15:04:05.000000Z"
	ColInteger   = "integer"   // integer within int64: decimal digits, e.g. "-12"
	ColNumber    = "number"    // number: the exact decimal as written, e.g. "1.50e3"
	ColBoolean   = "boolean"   // "true" or "false"
	ColJSON      = "json"      // object, array, or no single type: canonical compact JSON
)

// Value is one column's value of a record. Valid is false when the
// property is absent (SQL NULL); a JSON null present in a ColJSON column is
// the text "null".
type Value struct {
	Text  string
	Valid bool
}

// TableSource is implemented by a Router whose file types have tables.
type TableSource interface {
	Tables() []Table
}

// Planner is implemented by a ledger that keeps each file type in a table
// of its own, and so must create and change those tables as the schemas
// change.
type Planner interface {
	// Plan compares tables with the database and tells what Apply would
	// do. It changes nothing.
	Plan(ctx context.Context, tables []Table) (Plan, error)
	// Apply creates the missing tables and makes the additive changes.
	// When the plan holds a breaking change it changes nothing and returns
	// the plan with an error matching ErrBreaking.
	Apply(ctx context.Context, tables []Table) (Plan, error)
	// Scan calls fn with each stored record of table t as a JSON object,
	// in storage order, until fn returns an error; t is the table as the
	// database holds it now (from Plan).
	Scan(ctx context.Context, t Table, fn func(fileID int64, index int, record []byte) error) error
}

// Plan is what it takes to bring the database to the schemas.
type Plan struct {
	Changes []Change
	// Stored holds the tables of the file types the database knows, as it
	// holds them now: what Scan reads, whatever the schemas say today.
	Stored []Table
}

// Change kinds.
const (
	ChangeCreate    = "create"     // a new table, with its unique index
	ChangeAddColumn = "add_column" // a new nullable column
	ChangeBreaking  = "breaking"   // refused: a different key, a column type, a table name
	// ChangeSchema is a schema whose digest changed while its table does
	// not (a constraint tightened or relaxed): Apply records the digest,
	// and `check --against-data` tells whether the stored rows still pass.
	ChangeSchema = "schema"
)

// Change is one step of a Plan.
type Change struct {
	FileType string   `json:"file_type"`
	Table    string   `json:"table"`
	Kind     string   `json:"kind"`
	Column   string   `json:"column,omitempty"`
	Detail   string   `json:"detail"` // what changes, and for a breaking one what to do
	SQL      []string `json:"sql,omitempty"`
}

// Breaking tells whether the plan holds a breaking change.
func (p Plan) Breaking() bool {
	for _, c := range p.Changes {
		if c.Kind == ChangeBreaking {
			return true
		}
	}
	return false
}

// ErrBreaking is returned by Apply for a plan it refuses.
var ErrBreaking = errors.New("breaking schema change")
