//go:build !unix

package store

import "context"

// Without flock, SQLite holders are judged by their leases' expiry alone.

func holdFile(context.Context, string, string) (func() error, error) {
	return func() error { return nil }, nil
}

func holderDead(string, string) bool { return false }

func sweepLockFiles(string) {}
