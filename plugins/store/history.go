package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/carpipe/carpipe/ent"
	"github.com/carpipe/carpipe/ent/file"
	"github.com/carpipe/carpipe/ent/reject"
	"github.com/carpipe/carpipe/ent/run"
	"github.com/carpipe/carpipe/plugins"
)

var (
	_ plugins.History = (*Store)(nil)
	_ plugins.Locator = (*Store)(nil)
)

// Runs returns the newest runs first; limit <= 0 means all.
func (s *Store) Runs(ctx context.Context, limit int) ([]plugins.RunSummary, error) {
	q := s.client.Run.Query().Order(run.ByID(entsql.OrderDesc()))
	if limit > 0 {
		q = q.Limit(limit)
	}
	rows, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the runs: %w", err)
	}
	out := make([]plugins.RunSummary, len(rows))
	for i, r := range rows {
		out[i] = plugins.RunSummary{ID: int64(r.ID), Pipeline: r.Pipeline, Started: r.StartedAt, Status: r.Status,
			FilesProcessed: r.FilesProcessed, FilesFailed: r.FilesFailed, FilesSkipped: r.FilesSkipped,
			FilesUnmatched: r.FilesUnmatched, FilesAmbiguous: r.FilesAmbiguous, FilesHeld: r.FilesHeld,
			FilesLeft: r.FilesLeft, RecordsInserted: r.RecordsInserted,
			RecordsDuplicate: r.RecordsDuplicate, RecordsRejected: r.RecordsRejected}
		if r.FinishedAt != nil {
			out[i].Finished = *r.FinishedAt
		}
	}
	return out, nil
}

// Files returns ledger rows, newest first.
func (s *Store) Files(ctx context.Context, fq plugins.FileQuery) ([]plugins.FileEntry, error) {
	q := s.client.File.Query().Order(file.ByID(entsql.OrderDesc()))
	if fq.Status != "" {
		q = q.Where(file.Status(fq.Status))
	}
	if fq.Run != 0 {
		q = q.Where(file.RunID(int(fq.Run)))
	}
	if fq.FileType != "" {
		q = q.Where(file.FileType(fq.FileType))
	}
	if fq.Input != "" {
		q = q.Where(file.Input(fq.Input))
	}
	if !fq.Since.IsZero() {
		q = q.Where(file.ProcessedAtGTE(fq.Since))
	}
	if fq.Limit > 0 {
		q = q.Limit(fq.Limit)
	}
	rows, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the ledger: %w", err)
	}
	out := make([]plugins.FileEntry, len(rows))
	for i, f := range rows {
		out[i] = fileEntry(f)
	}
	return out, nil
}

// File returns one ledger row.
func (s *Store) File(ctx context.Context, id int64) (plugins.FileEntry, error) {
	f, err := s.client.File.Get(ctx, int(id))
	if ent.IsNotFound(err) {
		return plugins.FileEntry{}, fmt.Errorf("file %d: %w", id, plugins.ErrNotFound)
	}
	if err != nil {
		return plugins.FileEntry{}, fmt.Errorf("reading the ledger: %w", err)
	}
	return fileEntry(f), nil
}

func fileEntry(f *ent.File) plugins.FileEntry {
	return plugins.FileEntry{ID: int64(f.ID), Run: int64(f.RunID), Input: f.Input, Path: f.Path,
		FileType: f.FileType, Size: f.Size, SHA256: f.Sha256, Time: f.FileTime, Status: f.Status,
		RecordsTotal: f.RecordsTotal, RecordsInserted: f.RecordsInserted,
		RecordsDuplicate: f.RecordsDuplicate, RecordsRejected: f.RecordsRejected,
		Error: f.Error, Location: f.Location, ProcessedAt: f.ProcessedAt}
}

// Rejects returns a file's rejected records in file order.
func (s *Store) Rejects(ctx context.Context, fileID int64) ([]plugins.RejectEntry, error) {
	rows, err := s.client.Reject.Query().Where(reject.FileID(int(fileID))).
		Order(reject.ByRecordIndex(), reject.ByID()).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the rejects: %w", err)
	}
	out := make([]plugins.RejectEntry, len(rows))
	for i, r := range rows {
		errs := make([]plugins.FieldError, len(r.Errors))
		for j, e := range r.Errors {
			errs[j] = plugins.FieldError(e)
		}
		out[i] = plugins.RejectEntry{ID: int64(r.ID), FileID: int64(r.FileID), Index: r.RecordIndex, Errors: errs, Payload: r.Payload}
	}
	return out, nil
}

// SetLocation records where a file now is.
func (s *Store) SetLocation(ctx context.Context, id int64, location string) error {
	if s.Serial {
		s.write.Lock()
		defer s.write.Unlock()
	}
	n, err := s.client.File.Update().Where(file.ID(int(id))).SetLocation(location).Save(ctx)
	if err == nil && n == 0 {
		err = plugins.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("recording where file %d is: %w", id, err)
	}
	return nil
}

// moves holds the locations Moved has not written yet. A commit per file
// moved would cost more than loading a small file, so they are written in
// batches of moveBatch, and the rest when the run finishes.
type moves struct {
	mu   sync.Mutex
	list []move
}

type move struct {
	id       int64
	location string
}

const moveBatch = 200

// Moved records where the file of ledger row id went after its action.
func (s *Store) Moved(ctx context.Context, id int64, location string) error {
	s.moves.mu.Lock()
	s.moves.list = append(s.moves.list, move{id, location})
	var batch []move
	if len(s.moves.list) >= moveBatch {
		batch, s.moves.list = s.moves.list, nil
	}
	s.moves.mu.Unlock()
	return s.writeMoves(ctx, batch)
}

// flushMoves writes the pending locations; a failure only leaves them
// stale, so it is logged.
func (s *Store) flushMoves(ctx context.Context) {
	s.moves.mu.Lock()
	batch := s.moves.list
	s.moves.list = nil
	s.moves.mu.Unlock()
	if err := s.writeMoves(ctx, batch); err != nil && s.Log != nil {
		s.Log.Warn("where moved files went was not recorded", "files", len(batch), "error", err.Error())
	}
}

// writeMoves updates the rows of a batch in one statement.
func (s *Store) writeMoves(ctx context.Context, batch []move) error {
	if len(batch) == 0 {
		return nil
	}
	if s.Serial {
		s.write.Lock()
		defer s.write.Unlock()
	}
	// Arguments in the order of the text: SQLite numbers its ? that way.
	// A row moved twice in a batch ends at its last location.
	last := make(map[int64]int, len(batch))
	for i, m := range batch {
		last[m.id] = i
	}
	var set strings.Builder
	var args, in []any
	for i, m := range batch {
		if last[m.id] != i {
			continue
		}
		args = append(args, m.id, PathText(m.location))
		fmt.Fprintf(&set, " WHEN %s THEN %s", s.ph(len(args)-1), s.ph(len(args)))
		in = append(in, m.id)
	}
	list := make([]string, len(in))
	for i := range in {
		list[i] = s.ph(len(args) + i + 1)
	}
	args = append(args, in...)
	q := "UPDATE files SET location = CASE id" + set.String() + " END WHERE id IN (" + strings.Join(list, ", ") + ")"
	if _, err := s.DB.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("recording where files went: %w", err)
	}
	return nil
}

// ph is the n-th placeholder of the dialect.
func (s *Store) ph(n int) string {
	if s.Dialect == dialect.Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}
