package schema

import "embed"

// Migrations holds the versioned migrations of the tables above, one Atlas
// folder per dialect (migrations/postgres, migrations/sqlite): files
// <version>_<name>.sql and their atlas.sum. migrations/gen writes them from
// this schema (see migrations/README.md), store.Migrate applies them; a
// file that may have been applied somewhere is never edited.
//
// The line below only checks that no migration is missing.
//
//go:generate go run ./migrations/gen
//go:embed migrations/postgres migrations/sqlite
var Migrations embed.FS
