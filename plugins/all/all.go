// Package all registers every plugin in plugins.Default.
package all

import (
	// Each import registers its plugin from init.
	_ "github.com/carpipe/carpipe/plugins/inputs/blob"
	_ "github.com/carpipe/carpipe/plugins/inputs/dir"
	_ "github.com/carpipe/carpipe/plugins/inputs/ftp"
	_ "github.com/carpipe/carpipe/plugins/inputs/sftp"
	_ "github.com/carpipe/carpipe/plugins/outputs/jsonl"
	_ "github.com/carpipe/carpipe/plugins/outputs/postgres"
	_ "github.com/carpipe/carpipe/plugins/outputs/sqlite"
)
