package sqlite

import (
	"testing"

	sqlite3 "modernc.org/sqlite/lib"
)

// platformCases: a real disk I/O error, from reading /proc/self/mem (read
// only) at offset 0, which is never mapped: EIO.
func platformCases(t *testing.T) []outageCase {
	var n int
	err := handle(t, "file:/proc/self/mem?mode=ro").QueryRowContext(t.Context(), "SELECT count(*) FROM sqlite_master").Scan(&n)
	return []outageCase{{"disk I/O error", err, sqlite3.SQLITE_IOERR, true}}
}
