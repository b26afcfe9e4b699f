package plugins

import "context"

// View is a typed SQL view over the records of one file type: one column
// per top-level property of the record schema.
type View struct {
	Name     string // a plain SQL identifier: [a-z_][a-z0-9_]*
	FileType string
	Columns  []Column
}

// ViewSource is implemented by a Router whose file types have views.
type ViewSource interface {
	Views() []View
}

// Viewer is implemented by a ledger that maintains typed views.
type Viewer interface {
	// ViewSQL is the SQL that ApplyViews would run for views; it needs no
	// connection.
	ViewSQL(views []View) string
	// ApplyViews creates or replaces each view whose SQL changed since it
	// was last applied, and returns the names it touched. One view failing
	// does not stop the others; the error names every failure.
	ApplyViews(ctx context.Context, views []View) ([]string, error)
}
