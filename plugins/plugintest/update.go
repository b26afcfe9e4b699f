package plugintest

import "flag"

// Update is the -update flag of every test binary that imports this
// package: golden files and migrations are rewritten instead of compared.
// It lives here, once, so that `go test ./... -update` works in every
// package (a test binary refuses a flag it does not define).
var Update = flag.Bool("update", false, "rewrite golden files and write the next migration files")
