package store

import (
	"context"
	"database/sql"
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
	input, path string
	size        int64
	location    string
}

const moveBatch = 200

// Moved records where a file went after its action. The engine knows the
// file by its place and size only, so the row is the newest one at that
// place, of that size, not yet recorded elsewhere: the one just written.
func (s *Store) Moved(ctx context.Context, input, path string, size int64, location string) error {
	s.moves.mu.Lock()
	s.moves.list = append(s.moves.list, move{input, path, size, location})
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

// writeMoves finds each move's row and updates them all: two statements
// per batch.
func (s *Store) writeMoves(ctx context.Context, batch []move) error {
	if len(batch) == 0 {
		return nil
	}
	if s.Serial {
		s.write.Lock()
		defer s.write.Unlock()
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording where files went: %w", err)
	}
	defer tx.Rollback()
	ids, err := s.moveRows(ctx, tx, batch)
	if err != nil {
		return fmt.Errorf("recording where files went: %w", err)
	}
	// Arguments in the order of the text: SQLite numbers its ? that way.
	var set strings.Builder
	var args, in []any
	for i, m := range batch {
		if ids[i] != 0 {
			args = append(args, ids[i], PathText(m.location))
			fmt.Fprintf(&set, " WHEN %s THEN %s", s.ph(len(args)-1), s.ph(len(args)))
			in = append(in, ids[i])
		}
	}
	if len(in) > 0 {
		list := make([]string, len(in))
		for i := range in {
			list[i] = s.ph(len(args) + i + 1)
		}
		args = append(args, in...)
		q := "UPDATE files SET location = CASE id" + set.String() + " END WHERE id IN (" + strings.Join(list, ", ") + ")"
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("recording where files went: %w", err)
		}
	}
	return tx.Commit()
}

// moveRows picks each move's ledger row (0 for none): of its input, place
// and size, still recorded at that place (or nowhere), newest first.
func (s *Store) moveRows(ctx context.Context, tx *sql.Tx, batch []move) ([]int, error) {
	byInput := map[string][]string{}
	for _, m := range batch {
		byInput[m.input] = append(byInput[m.input], m.path)
	}
	type row struct {
		id             int
		path, location string
		size           int64
	}
	rows := map[string][]row{} // by input
	for input, paths := range byInput {
		args := []any{input}
		var list []string
		for _, p := range paths {
			args = append(args, PathKey(p))
			list = append(list, s.ph(len(args)))
		}
		q := "SELECT id, path, size, location FROM files WHERE input = " + s.ph(1) +
			" AND path_key IN (" + strings.Join(list, ", ") + ") ORDER BY processed_at DESC, id DESC"
		rs, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.id, &r.path, &r.size, &r.location); err != nil {
				rs.Close()
				return nil, err
			}
			rows[input] = append(rows[input], r)
		}
		if err := rs.Close(); err != nil {
			return nil, err
		}
	}
	ids := make([]int, len(batch))
	taken := map[int]bool{}
	for i, m := range batch {
		for _, r := range rows[m.input] {
			if text := PathText(m.path); !taken[r.id] && r.path == text && r.size == m.size && (r.location == "" || r.location == text) {
				ids[i], taken[r.id] = r.id, true
				break
			}
		}
	}
	return ids, nil
}

// ph is the n-th placeholder of the dialect.
func (s *Store) ph(n int) string {
	if s.Dialect == dialect.Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}
