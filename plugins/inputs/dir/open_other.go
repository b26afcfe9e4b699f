//go:build !unix

package dir

import "os"

// openFlags: no named pipes to wait on here.
const openFlags = 0

func blocking(*os.File) error { return nil }
