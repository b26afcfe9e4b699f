package plugins

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound means the ledger has no such row.
var ErrNotFound = errors.New("not found")

// FileEntry is one row of the file ledger.
type FileEntry struct {
	ID               int64
	Run              int64
	Input            string
	Path             string
	FileType         string
	Size             int64
	SHA256           string
	Time             *time.Time // the time in the file's name
	Status           string     // processed | failed
	RecordsTotal     int64
	RecordsInserted  int64
	RecordsDuplicate int64
	RecordsRejected  int64
	Error            string
	// Location is where the file is after its action, relative to the
	// input's root; "" once deleted, or when no action was recorded.
	Location    string
	ProcessedAt time.Time
}

// FileQuery selects ledger rows; zero fields select everything.
type FileQuery struct {
	Status   string
	Run      int64
	FileType string
	Input    string
	Since    time.Time // processed at or after
	Limit    int       // the newest Limit rows
}

// RejectEntry is one record kept under on_invalid_record: skip_record.
type RejectEntry struct {
	ID      int64
	FileID  int64
	Index   int
	Errors  []FieldError
	Payload string // the raw record text
}

// History is implemented by a ledger that can tell what past runs did.
type History interface {
	// Runs returns the newest runs first.
	Runs(ctx context.Context, limit int) ([]RunSummary, error)
	// Files returns ledger rows, newest first.
	Files(ctx context.Context, q FileQuery) ([]FileEntry, error)
	// File returns one ledger row, or ErrNotFound.
	File(ctx context.Context, id int64) (FileEntry, error)
	// Rejects returns a file's rejected records in file order.
	Rejects(ctx context.Context, fileID int64) ([]RejectEntry, error)
	// SetLocation records where a file now is.
	SetLocation(ctx context.Context, id int64, location string) error
}

// Locator is implemented by a ledger that records where a file went after
// its on_success or on_failure action.
type Locator interface {
	// Moved records that the file whose ledger row is id (Counts.FileID,
	// or what Fail returned) is now at location ("" when deleted).
	Moved(ctx context.Context, id int64, location string) error
}
