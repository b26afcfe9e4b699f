// Stand-in for plugins/store's Loader (issue 13), defined identically so
// that the typed loader compiles and is tested before the store takes it.
// The lead replaces it with store.Loader at merge.

package postgres

import (
	"context"

	"github.com/carpipe/carpipe/plugins"
)

// Loader moves the records of one table in bulk, inside one transaction.
type Loader interface {
	// Add stages records of the file whose ledger row is fileID, in file order.
	Add(ctx context.Context, fileID int64, recs []plugins.Record) error
	// Merge inserts what was staged, skipping keys already stored (the first copy wins), and returns how many rows it inserted for each file id.
	Merge(ctx context.Context) (map[int64]int64, error)
}
