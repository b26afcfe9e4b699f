package schema

import "embed"

// Migrations holds the versioned SQL migrations, one folder per dialect
// (migrations/postgres, migrations/sqlite), files named NNNN_name.sql.
// They are written by `go test ./plugins/store -run TestMigrations -update`
// and applied by store.Migrate; an applied file is never edited.
//
//go:embed migrations
var Migrations embed.FS
