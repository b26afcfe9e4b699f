package plugins

import (
	"context"
	"time"
)

// Wait waits d, or until ctx ends; it reports whether the wait was
// complete. Retry loops in the engine and the plugins share it.
func Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
