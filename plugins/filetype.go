package plugins

import (
	"context"
	"io"
	"time"
)

// Opener opens a file's bytes; a decoder may call it again to locate an
// error by line and column.
type Opener func() (io.ReadCloser, error)

// FileType turns a file's bytes into records. Decode calls fn with batches
// in record order and stops at the first error fn returns.
type FileType interface {
	Name() string
	// RejectFile reports whether one invalid record fails the whole file
	// (on_invalid_record: reject_file).
	RejectFile() bool
	Decode(ctx context.Context, open Opener, lim Limits, fn func(Batch) error) error
}

// DefaultMaxRecord is the largest record a file may hold unless an input's
// max_record_size says otherwise: one record is held whole in memory.
const DefaultMaxRecord = 64 << 20

// Limits bound what decoding one file may hold in memory.
type Limits struct {
	MaxRecord int64 // bytes of one record's text; 0 means DefaultMaxRecord
}

// Router picks a file's type from its base name. It returns a nil type for a
// name no type claims, and the time encoded in the name if any.
type Router interface {
	Route(base string) (FileType, *time.Time, error)
}
