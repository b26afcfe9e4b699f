// Package plugins holds the contracts between the engine and its input and
// output plugins, and the registry that maps a config "type" to a plugin.
package plugins

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"time"
)

// File is one entry of an input's listing. Path is slash-separated and
// relative to the input's root; it never escapes it (see CleanPath).
type File struct {
	Path    string
	Size    int64
	ModTime time.Time
}

// Input is a source of files. Listing and reading must not change anything;
// only Move and Delete do, and the engine calls them after a commit.
type Input interface {
	List(ctx context.Context) ([]File, error)
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	// Move puts path into folder dir (relative to the root; "." is the root
	// itself, see CleanDir) and returns the new path. It never overwrites a
	// different file: it picks a free name.
	Move(ctx context.Context, path, dir string) (string, error)
	Delete(ctx context.Context, path string) error
}

// FileInfo describes a file being loaded.
type FileInfo struct {
	Run      int64
	Input    string
	Path     string
	FileType string
	Size     int64
	SHA256   string
	Time     *time.Time
}

// Record is one valid record.
type Record struct {
	Index     int
	Key       string // canonical key, readable text
	EventTime *time.Time
	// Values are the declared properties, one per column of the type's
	// Table, in its order.
	Values []Value
	// Extra is a compact JSON object of the properties the schema does
	// not declare; nil when the record has none.
	Extra   []byte
	Payload json.RawMessage // compact JSON of the whole record
}

// FieldError is one reason a record is invalid. Pointer is relative to the
// record ("" is the record itself).
type FieldError struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

// Reject is an invalid record kept under on_invalid_record: skip_record.
type Reject struct {
	Index   int
	Pointer string // the record's JSON Pointer inside the file
	// Offset is where the record starts in the file, in bytes; it may point
	// at the comma and white space before the record.
	Offset  int64
	Errors  []FieldError
	Payload []byte
}

// Batch is a bounded slice of a file's records; a file arrives as many.
type Batch struct {
	Records []Record
	Rejects []Reject
}

// Counts is what a committed file did to the store.
type Counts struct {
	// FileID is the file's ledger row. The commit returns it so that what
	// happens to the file later (where it moved) is recorded on that row
	// without finding it again.
	FileID    int64
	Inserted  int64
	Duplicate int64
	Rejected  int64
}

// Output is an output that is not the ledger: it gets each file the ledger
// committed (jsonl). Everything added to a FileTx lands on Commit or not at
// all.
type Output interface {
	Begin(ctx context.Context, f FileInfo) (FileTx, error)
}

// FileTx is one file's transaction.
type FileTx interface {
	Add(ctx context.Context, b Batch) error
	// Commit returns ErrLoaded when another writer committed the same file
	// first; nothing of this transaction lands then.
	Commit(ctx context.Context) (Counts, error)
	Rollback() error
}

// Ledger is implemented by the one output that stores records and remembers
// which files it has loaded.
type Ledger interface {
	Migrate(ctx context.Context) error
	// StartRun records a new run of holder (the Claimer holder of the
	// process, "" when it has none): a later Sweep closes the run as
	// aborted once that holder is dead.
	StartRun(ctx context.Context, pipeline, holder string) (int64, error)
	// Lookup returns the ledger status of a file ("" when unknown).
	Lookup(ctx context.Context, input, path, sha256 string) (string, error)
	// Load claims the ledger rows of files in one statement and opens one
	// transaction for them all. A file is a group of one; small files go in
	// groups because a commit costs more than their records. Each file
	// still lands whole or not at all, with its ledger row. A concurrent
	// Load of the same file waits for this one to end.
	Load(ctx context.Context, files []FileInfo) (GroupTx, error)
	// GroupSize is how many files one Load should take at most.
	GroupSize() int
	// Fail records a failed file with its reason and returns its ledger
	// row (the loaded one, should a concurrent run have loaded it).
	Fail(ctx context.Context, f FileInfo, reason string) (int64, error)
	FinishRun(ctx context.Context, r RunSummary) error
}

// GroupTx is the transaction of the files of one Load, known by their
// index in its list. An error from Add or Commit ends it: the caller rolls
// back, and may load the files again, one by one, so that only a file the
// database refuses fails.
type GroupTx interface {
	// Loaded tells that file i was committed before, by this run or
	// another: feed it nothing, its Outcome is ErrLoaded.
	Loaded(i int) bool
	// Add takes records and rejects of file i, in file order; a big file
	// arrives in many batches, which the ledger does not hold.
	Add(ctx context.Context, i int, b Batch) error
	// Commit returns an Outcome per file, in the order of Load's list.
	Commit(ctx context.Context) ([]Outcome, error)
	// Rollback undoes whatever was not committed; after Commit it does
	// nothing.
	Rollback() error
}

// Outcome is what a GroupTx's commit did with one file: its counts, or
// ErrLoaded with only Counts.FileID set, the row of the load that counts.
type Outcome struct {
	Counts Counts
	Err    error
}

// RunSummary is what a run did.
type RunSummary struct {
	ID               int64
	Pipeline         string
	Started          time.Time
	Finished         time.Time
	Status           string // ok | partial | failed (| running, aborted in the ledger)
	FilesProcessed   int64
	FilesFailed      int64
	FilesSkipped     int64
	FilesUnmatched   int64
	FilesAmbiguous   int64
	FilesHeld        int64
	FilesLeft        int64
	RecordsInserted  int64
	RecordsDuplicate int64
	RecordsRejected  int64
}

// Ledger statuses.
const (
	StatusProcessed = "processed"
	StatusFailed    = "failed"
)

// Outcomes: every file a run lists ends it in exactly one. Processed and
// failed are also ledger statuses; ambiguous files are failed there, and
// left ones keep their ledger status.
const (
	OutcomeProcessed = StatusProcessed
	OutcomeFailed    = StatusFailed
	OutcomeUnmatched = "unmatched" // no file type claims its name
	OutcomeAmbiguous = "ambiguous" // several do; failed with their names
	OutcomeHeld      = "held"      // a live process holds its lease
	OutcomeLeft      = "left"      // committed, but its action failed
	OutcomeSkipped   = "skipped"   // loaded before, too recent, gone or not a regular file
)

// Outcomes lists them in the order summaries show them.
var Outcomes = []string{OutcomeProcessed, OutcomeFailed, OutcomeSkipped, OutcomeUnmatched,
	OutcomeAmbiguous, OutcomeLeft, OutcomeHeld}

// Count returns a pointer to the summary's counter of an outcome.
func (r *RunSummary) Count(outcome string) *int64 {
	switch outcome {
	case OutcomeProcessed:
		return &r.FilesProcessed
	case OutcomeFailed:
		return &r.FilesFailed
	case OutcomeUnmatched:
		return &r.FilesUnmatched
	case OutcomeAmbiguous:
		return &r.FilesAmbiguous
	case OutcomeHeld:
		return &r.FilesHeld
	case OutcomeLeft:
		return &r.FilesLeft
	case OutcomeSkipped:
		return &r.FilesSkipped
	}
	panic("plugins: unknown outcome " + outcome)
}

// Files is how many files the run listed: the sum of every outcome.
func (r RunSummary) Files() int64 {
	var n int64
	for _, o := range Outcomes {
		n += *r.Count(o)
	}
	return n
}

// Troubled reports whether an outcome makes a run partial.
func Troubled(outcome string) bool {
	return outcome == OutcomeFailed || outcome == OutcomeAmbiguous || outcome == OutcomeLeft
}

// Env is what a plugin gets from the engine at Init.
type Env struct {
	Name   string // the name given in the config
	Logger *slog.Logger
	Stdout io.Writer // the command's standard output
	// ReadOnly is set for commands that only read the ledger: the plugin
	// must create and change nothing, a missing database included.
	ReadOnly bool
}

// Initer is implemented by plugins that check their config or open
// connections before use.
type Initer interface {
	Init(ctx context.Context, env Env) error
}

// Readier is implemented by a ledger that can tell, without changing
// anything, whether its database holds carpipe's tables as this carpipe
// needs them. When not, the error matches ErrNotMigrated.
type Readier interface {
	Ready(ctx context.Context) error
}

// StdoutWriter is implemented by outputs that may write to the command's
// standard output, so that the command keeps its own messages off it.
type StdoutWriter interface {
	WritesStdout() bool
}

// Validator is implemented by plugins that check their config without
// touching anything outside the process; its errors are config errors.
type Validator interface {
	Validate() error
}

// Closer is implemented by plugins holding resources.
type Closer interface {
	Close() error
}

// Claimer is implemented by a ledger that leases files to one process at a
// time, so that replicas sharing an input never read the same file at once.
// A lease is a row in the database. It lasts while its holder is alive, as
// Hold shows it to every process sharing the database, and not past its
// expiry unless renewed: a dead holder's leases are free at once. The
// ledger's unique index still decides which commit counts.
type Claimer interface {
	// Hold marks holder alive until release is called or the process
	// dies; a holder claims only while it holds. Should the mark be lost
	// (its connection broke), Claim fails for holder until the mark is
	// taken again, as other processes may have taken its leases meanwhile.
	Hold(ctx context.Context, holder string) (release func() error, err error)
	// Claim leases the paths of input to holder for ttl, in one round trip,
	// and returns those it got: not those another live holder's unexpired
	// lease has.
	Claim(ctx context.Context, holder, input string, paths []string, ttl time.Duration) ([]string, error)
	// Renew extends every lease holder has.
	Renew(ctx context.Context, holder string, ttl time.Duration) error
	// Release ends holder's leases on the paths of input.
	Release(ctx context.Context, holder, input string, paths []string) error
	// ReleaseAll ends every lease holder has.
	ReleaseAll(ctx context.Context, holder string) error
	// Sweep deletes the leases that are expired or whose holder is dead,
	// and closes the runs of dead holders as aborted.
	Sweep(ctx context.Context) error
}

// Notifier is implemented by inputs that can tell when files may have
// arrived, so that watch mode wakes before its next poll. Polling still
// runs: a notification is a hint, never the only way a file is found.
type Notifier interface {
	// Watch sends on the channel (without blocking: a pending signal is
	// enough) whenever the input may have changed, until ctx ends.
	Watch(ctx context.Context) (<-chan struct{}, error)
}
