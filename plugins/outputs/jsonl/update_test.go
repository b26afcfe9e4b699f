package jsonl

// Registers -update, so that `go test ./... -update` runs here too.
import _ "github.com/carpipe/carpipe/plugins/plugintest"
