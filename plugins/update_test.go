package plugins

import "flag"

// -update, so that `go test ./... -update` runs here too; plugintest,
// which registers it elsewhere, imports this package.
var _ = flag.Bool("update", false, "rewrite golden files (none here)")
