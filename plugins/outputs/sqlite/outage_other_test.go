//go:build !linux

package sqlite

import "testing"

// platformCases: only Linux has a file whose reading fails with EIO.
func platformCases(*testing.T) []outageCase { return nil }
