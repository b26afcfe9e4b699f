package plugins

// TEMPORARY (branch cli): the typed views' types, kept only so that
// schemas/views.go and plugins/store/views.go, which other branches remove,
// still compile here. The lead deletes this file at merge.

import "context"

type View struct {
	Name     string
	FileType string
	Columns  []Column
}

type ViewSource interface {
	Views() []View
}

type Viewer interface {
	ViewSQL(views []View) string
	ApplyViews(ctx context.Context, views []View) ([]string, error)
}
