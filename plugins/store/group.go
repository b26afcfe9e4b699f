package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sort"
	"strings"
	"time"

	"entgo.io/ent/dialect"

	"github.com/carpipe/carpipe/ent"
	entschema "github.com/carpipe/carpipe/ent/schema"
	"github.com/carpipe/carpipe/plugins"
)

// Row is one record of a group, for a dialect's many-file insert.
type Row struct {
	FileType string
	Key      string
	Time     *time.Time
	Payload  []byte
	FileID   int
}

// InsertMany inserts rows, already in merge order, skipping keys already
// stored, and returns how many it inserted for each file id.
type InsertMany func(ctx context.Context, tx *sql.Tx, rows []Row) (map[int]int64, error)

var _ plugins.Grouper = (*Store)(nil)

// GroupSize: a lone writer (SQLite) gains most from fewer, larger commits;
// concurrent writers hold their locks and memory for less.
func (s *Store) GroupSize() int {
	if s.Serial {
		return 1000
	}
	return 200
}

// LoadFiles loads small files, each whole in memory, in one transaction:
// per-file commits, not records, are what small files cost. Each file
// still lands whole or not at all, with its ledger row.
func (s *Store) LoadFiles(ctx context.Context, files []plugins.FileData) ([]plugins.Outcome, error) {
	if s.Serial {
		s.write.Lock()
		defer s.write.Unlock()
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer conn.Close()
	if s.Dialect == dialect.SQLite {
		if err := s.uncheckedFKs(ctx, conn, files); err != nil {
			return nil, s.wrap(err)
		}
		defer s.checkFKs(ctx, conn)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.wrap(err)
	}
	out, err := s.loadFiles(ctx, tx, files)
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		tx.Rollback()
		return nil, s.wrap(err)
	}
	return out, nil
}

// uncheckedFKs turns SQLite's foreign-key checks off for a group's
// transaction. SQLite checks them row by row and, because a failed check
// aborts a multi-row statement halfway, journals every page such a
// statement changes: a fifth of a group's load. The group's records and
// rejects point at ledger rows its own statement just returned, and the
// one reference from outside, the run, is checked here instead.
func (s *Store) uncheckedFKs(ctx context.Context, conn *sql.Conn, files []plugins.FileData) error {
	runs := map[int64]bool{}
	for _, f := range files {
		runs[f.Info.Run] = true
	}
	for run := range runs {
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM runs WHERE id = ?", run).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("FOREIGN KEY constraint failed: run %d is not in runs", run)
		}
	}
	_, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF")
	return err
}

// checkFKs turns the checks back on before the connection returns to the
// pool; a connection that cannot is dropped rather than reused.
func (s *Store) checkFKs(ctx context.Context, conn *sql.Conn) {
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON"); err != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

func (s *Store) loadFiles(ctx context.Context, tx *sql.Tx, files []plugins.FileData) ([]plugins.Outcome, error) {
	out := make([]plugins.Outcome, len(files))
	ids, err := s.claimRows(ctx, tx, files)
	if err != nil {
		return nil, err
	}
	for i := range files {
		if ids[i] == 0 {
			out[i].Err = plugins.ErrLoaded
		}
	}

	// Rows go in file order, then record order, so the first copy wins.
	// Concurrent writers also need keys locked in one order: sort by key
	// first. A serial writer (SQLite) need not, and appends to its other
	// indexes in file order instead of scattering over them.
	type ranked struct {
		row       Row
		file, rec int
	}
	var all []ranked
	for i, f := range files {
		if ids[i] == 0 {
			continue
		}
		for _, r := range f.Batch.Records {
			all = append(all, ranked{Row{f.Info.FileType, r.Key, r.EventTime, r.Payload, ids[i]}, i, r.Index})
		}
	}
	if !s.Serial {
		sort.Slice(all, func(a, b int) bool {
			x, y := all[a], all[b]
			if x.row.FileType != y.row.FileType {
				return x.row.FileType < y.row.FileType
			}
			if x.row.Key != y.row.Key {
				return x.row.Key < y.row.Key
			}
			if x.file != y.file {
				return x.file < y.file
			}
			return x.rec < y.rec
		})
	}
	rows := make([]Row, len(all))
	for i, r := range all {
		rows[i] = r.row
	}
	inserted := map[int]int64{}
	if len(rows) > 0 {
		if inserted, err = s.Many(ctx, tx, rows); err != nil {
			return nil, err
		}
	}

	client := s.txClient(tx)
	var rejects []*ent.RejectCreate
	var counts [][5]int64 // total, inserted, duplicate, rejected, id
	for i, f := range files {
		if ids[i] == 0 {
			continue
		}
		for _, r := range f.Batch.Rejects {
			errs := make([]entschema.FieldError, len(r.Errors))
			for j, e := range r.Errors {
				errs[j] = entschema.FieldError(e)
			}
			rejects = append(rejects, client.Reject.Create().SetFileID(ids[i]).SetRecordIndex(r.Index).
				SetErrors(errs).SetPayload(string(r.Payload)))
		}
		n := int64(len(f.Batch.Records))
		c := plugins.Counts{Inserted: inserted[ids[i]], Rejected: int64(len(f.Batch.Rejects))}
		c.Duplicate = n - c.Inserted
		out[i].Counts = c
		if c.Duplicate > 0 { // claimRows wrote the counts of a file without duplicates
			counts = append(counts, [5]int64{n + c.Rejected, c.Inserted, c.Duplicate, c.Rejected, int64(ids[i])})
		}
	}
	if err := s.setCounts(ctx, tx, counts); err != nil {
		return nil, err
	}
	if len(rejects) > 0 {
		if err := client.Reject.CreateBulk(rejects...).Exec(ctx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// claimRows takes each file's ledger row as store.Begin does, returning 0
// for a file already loaded, in one statement for the whole group. It
// writes the counts of a file whose records all go in, the common case, so
// that only files with duplicates need setCounts.
func (s *Store) claimRows(ctx context.Context, tx *sql.Tx, files []plugins.FileData) ([]int, error) {
	now := time.Now()
	var q strings.Builder
	q.WriteString(`INSERT INTO files (run_id, input, path, path_key, file_type, size, sha256, file_time, status, processed_at,
	records_total, records_inserted, records_duplicate, records_rejected, error, location) VALUES `)
	args := make([]any, 0, 13*len(files))
	at := make(map[[3]string]int, len(files))
	for i, f := range files {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(s.params(len(args), "(%, %, %, %, %, %, %, %, 'processed', %, %, %, 0, %, '', %)"))
		var ft any
		if f.Info.Time != nil {
			ft = *f.Info.Time
		}
		n, rej := len(f.Batch.Records), len(f.Batch.Rejects)
		text := PathText(f.Info.Path)
		args = append(args, f.Info.Run, f.Info.Input, text, PathKey(f.Info.Path), f.Info.FileType, f.Info.Size, f.Info.SHA256, ft, now,
			n+rej, n, rej, text)
		at[[3]string{f.Info.Input, PathKey(f.Info.Path), f.Info.SHA256}] = i
	}
	q.WriteString(` ON CONFLICT (input, path_key, sha256) DO UPDATE SET run_id = excluded.run_id, file_type = excluded.file_type,
	status = 'processed', error = '', processed_at = excluded.processed_at, location = excluded.location,
	records_total = excluded.records_total, records_inserted = excluded.records_inserted,
	records_duplicate = 0, records_rejected = excluded.records_rejected
	WHERE files.status = 'failed'
	RETURNING id, input, path_key, sha256`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := make([]int, len(files))
	for rows.Next() {
		var id int
		var k [3]string
		if err := rows.Scan(&id, &k[0], &k[1], &k[2]); err != nil {
			return nil, err
		}
		ids[at[k]] = id
	}
	return ids, rows.Err()
}

// setCounts writes the files' counts in one statement.
func (s *Store) setCounts(ctx context.Context, tx *sql.Tx, counts [][5]int64) error {
	if len(counts) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString("WITH v (t, i, d, r, id) AS (VALUES ")
	args := make([]any, 0, 5*len(counts))
	for k, c := range counts {
		if k > 0 {
			q.WriteByte(',')
		}
		// PostgreSQL types VALUES from its first row, as text unless told.
		q.WriteString(s.params(len(args), "(CAST(% AS bigint), CAST(% AS bigint), CAST(% AS bigint), CAST(% AS bigint), CAST(% AS bigint))"))
		args = append(args, c[0], c[1], c[2], c[3], c[4])
	}
	q.WriteString(`) UPDATE files SET records_total = v.t, records_inserted = v.i, records_duplicate = v.d,
	records_rejected = v.r FROM v WHERE files.id = v.id`)
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}

// params numbers the % placeholders of a row after the n arguments
// before it, in the dialect's spelling (ph).
func (s *Store) params(n int, row string) string {
	var b strings.Builder
	for _, part := range strings.SplitAfter(row, "%") {
		if p, ok := strings.CutSuffix(part, "%"); ok {
			n++
			b.WriteString(p + s.ph(n))
		} else {
			b.WriteString(part)
		}
	}
	return b.String()
}
