package store

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

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

// LoadFiles loads small files, each whole in memory, in one transaction:
// per-file commits, not records, are what small files cost. Each file
// still lands whole or not at all, with its ledger row.
func (s *Store) LoadFiles(ctx context.Context, files []plugins.FileData) ([]plugins.Outcome, error) {
	if s.Serial {
		s.write.Lock()
		defer s.write.Unlock()
	}
	tx, err := s.DB.BeginTx(ctx, nil)
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

	// Merge order across the group: by key, then file, then record, so the
	// first copy wins and concurrent writers lock keys in one order.
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
		counts = append(counts, [5]int64{n + c.Rejected, c.Inserted, c.Duplicate, c.Rejected, int64(ids[i])})
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
// for a file already loaded: on Postgres in one statement, on SQLite (no
// round trips to save) with one prepared statement.
func (s *Store) claimRows(ctx context.Context, tx *sql.Tx, files []plugins.FileData) ([]int, error) {
	ids := make([]int, len(files))
	now := time.Now()
	if s.Dialect == dialect.Postgres {
		n := len(files)
		inputs, paths, types, sums := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sizes, runs := make([]int64, n), make([]int64, n)
		times := make([]sql.NullTime, n)
		at := map[[3]string]int{}
		for i, f := range files {
			inputs[i], paths[i], types[i], sums[i] = f.Info.Input, f.Info.Path, f.Info.FileType, f.Info.SHA256
			sizes[i], runs[i] = f.Info.Size, f.Info.Run
			if f.Info.Time != nil {
				times[i] = sql.NullTime{Time: *f.Info.Time, Valid: true}
			}
			at[[3]string{f.Info.Input, f.Info.Path, f.Info.SHA256}] = i
		}
		rows, err := tx.QueryContext(ctx, claimRowsPG, pq.Array(runs), pq.Array(inputs), pq.Array(paths),
			pq.Array(types), pq.Array(sizes), pq.Array(sums), pq.GenericArray{A: times}, now)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
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
	claim, err := tx.PrepareContext(ctx, s.param(claimRow))
	if err != nil {
		return nil, err
	}
	defer claim.Close()
	for i, f := range files {
		var ft any
		if f.Info.Time != nil {
			ft = *f.Info.Time
		}
		err := claim.QueryRowContext(ctx, f.Info.Run, f.Info.Input, f.Info.Path, f.Info.FileType,
			f.Info.Size, f.Info.SHA256, ft, now, f.Info.Path).Scan(&ids[i])
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	return ids, nil
}

// claimRowsPG is claimRow for many files, in their order.
const claimRowsPG = `INSERT INTO files (run_id, input, path, file_type, size, sha256, file_time, status, processed_at,
	records_total, records_inserted, records_duplicate, records_rejected, error, location)
	SELECT r, i, p, ft, sz, sh, t, 'processed', $8, 0, 0, 0, 0, '', p
	FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::timestamptz[])
		WITH ORDINALITY AS u(r, i, p, ft, sz, sh, t, o) ORDER BY o
	ON CONFLICT (input, path, sha256) DO UPDATE SET run_id = excluded.run_id, file_type = excluded.file_type,
	status = 'processed', error = '', processed_at = excluded.processed_at, location = excluded.location
	WHERE files.status = 'failed'
	RETURNING id, input, path, sha256`

// claimRow is store.Begin's upsert as one prepared statement: it returns
// no row for a file already loaded.
const claimRow = `INSERT INTO files (run_id, input, path, file_type, size, sha256, file_time, status, processed_at,
	records_total, records_inserted, records_duplicate, records_rejected, error, location)
	VALUES ($1, $2, $3, $4, $5, $6, $7, 'processed', $8, 0, 0, 0, 0, '', $9)
	ON CONFLICT (input, path, sha256) DO UPDATE SET run_id = excluded.run_id, file_type = excluded.file_type,
	status = 'processed', error = '', processed_at = excluded.processed_at, location = excluded.location
	WHERE files.status = 'failed'
	RETURNING id`

// setCounts writes the files' counts: on Postgres in one statement, to
// spare a round trip per file; SQLite has none to spare.
func (s *Store) setCounts(ctx context.Context, tx *sql.Tx, counts [][5]int64) error {
	if s.Dialect == dialect.Postgres {
		cols := make([][]int64, 5)
		for _, c := range counts {
			for k := range cols {
				cols[k] = append(cols[k], c[k])
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE files SET records_total = u.t, records_inserted = u.i,
			records_duplicate = u.d, records_rejected = u.r
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(t, i, d, r, id)
			WHERE files.id = u.id`,
			pq.Array(cols[0]), pq.Array(cols[1]), pq.Array(cols[2]), pq.Array(cols[3]), pq.Array(cols[4]))
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `UPDATE files SET records_total = ?, records_inserted = ?,
		records_duplicate = ?, records_rejected = ? WHERE id = ?`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, c := range counts {
		if _, err := stmt.ExecContext(ctx, c[0], c[1], c[2], c[3], c[4]); err != nil {
			return err
		}
	}
	return nil
}

// param turns $n placeholders into SQLite's ?.
func (s *Store) param(q string) string {
	if s.Dialect == dialect.Postgres {
		return q
	}
	for i := 20; i > 0; i-- {
		q = strings.ReplaceAll(q, "$"+strconv.Itoa(i), "?")
	}
	return q
}
