// Stand-in until plugins/store takes the typed loader (issue 13): the
// loader of the generic records table, which the current store still calls.
// The lead deletes this file at merge.

package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
)

// legacyLoader sends a file's records in chunks. A chunk's keys this process
// has not sent before go by plain COPY into records, sorted by key, inside
// a savepoint; the rest, and the whole chunk if that COPY meets a key
// stored meanwhile, are merged: INSERT … ON CONFLICT DO NOTHING in key
// order, from a staging table filled by COPY when there are many. Keys
// are thus always locked in one order, the first copy of a repeated
// record is the one kept, and the counts are exact.
type legacyLoader struct {
	tx        *sql.Tx
	conn      *sql.Conn
	p         *Postgres
	fileType  string
	fileID    int
	buf       []plugins.Record
	inserted  int64
	copies    int
	fallbacks int
	staging   bool // the staging table exists in this session
}

func (p *Postgres) newLegacyLoader(_ context.Context, conn *sql.Conn, tx *sql.Tx, fileType string, fileID int) (store.Loader, error) {
	return &legacyLoader{tx: tx, conn: conn, p: p, fileType: fileType, fileID: fileID}, nil
}

func (l *legacyLoader) Add(ctx context.Context, recs []plugins.Record) error {
	l.buf = append(l.buf, recs...)
	if len(l.buf) < chunk {
		return nil
	}
	return l.flush(ctx)
}

func (l *legacyLoader) Merge(ctx context.Context) (int64, error) {
	if err := l.flush(ctx); err != nil {
		return 0, err
	}
	return l.inserted, nil
}

func (l *legacyLoader) flush(ctx context.Context) error {
	recs := l.buf
	l.buf = l.buf[:0]
	var fresh, known []plugins.Record
	for _, r := range recs {
		if l.p.sent.seen(l.fileType, r.Key) {
			known = append(known, r)
		} else {
			fresh = append(fresh, r)
		}
	}
	// After two conflicts the file is most likely old data: stop trying.
	if len(recs) < copyMin || l.copies >= maxSavepoints || l.fallbacks >= 2 {
		return l.merge(ctx, recs)
	}
	if len(fresh) > 0 {
		ok, err := l.copy(ctx, fresh)
		if err != nil {
			return err
		}
		if !ok {
			l.fallbacks++
			l.p.fallbacks.Add(1)
			return l.merge(ctx, recs)
		}
	}
	return l.merge(ctx, known)
}

// copy sends recs, whose keys are distinct, by COPY; false when a key was
// already stored, in which case nothing of recs is.
func (l *legacyLoader) copy(ctx context.Context, recs []plugins.Record) (bool, error) {
	slices.SortFunc(recs, func(a, b plugins.Record) int { return strings.Compare(a.Key, b.Key) })
	if _, err := l.tx.ExecContext(ctx, "SAVEPOINT carpipe_copy"); err != nil {
		return false, err
	}
	l.copies++
	l.p.copies.Add(1)
	n, err := l.send(ctx, legacyCopyRecords, recs)
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "23505" {
		_, err := l.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT carpipe_copy; RELEASE SAVEPOINT carpipe_copy")
		return false, err
	}
	if err != nil {
		return false, err
	}
	if _, err := l.tx.ExecContext(ctx, "RELEASE SAVEPOINT carpipe_copy"); err != nil {
		return false, err
	}
	l.inserted += n
	return true, nil
}

// merge inserts recs in key order, then file order, skipping stored keys.
func (l *legacyLoader) merge(ctx context.Context, recs []plugins.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if len(recs) < copyMin {
		slices.SortFunc(recs, func(a, b plugins.Record) int {
			if c := strings.Compare(a.Key, b.Key); c != 0 {
				return c
			}
			return a.Index - b.Index
		})
		rows := make([]store.Row, len(recs))
		for i, r := range recs {
			rows[i] = store.Row{FileType: l.fileType, Key: r.Key, Time: r.EventTime, Payload: r.Payload, FileID: l.fileID}
		}
		n, err := insert(ctx, l.tx, rows)
		l.inserted += n[l.fileID]
		return err
	}
	// Many rows: COPY them to a staging table rather than build arrays.
	if !l.staging {
		if _, err := l.tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS carpipe_stage
			(file_type text, record_key text, event_time timestamptz, payload text, ord int) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
		l.staging = true
	}
	if _, err := l.send(ctx, legacyCopyStage, recs); err != nil {
		return err
	}
	res, err := l.tx.ExecContext(ctx, `INSERT INTO records (file_type, record_key, event_time, payload, file_id)
		SELECT file_type, record_key, event_time, payload::jsonb, $1 FROM carpipe_stage
		ORDER BY record_key COLLATE "C", ord
		ON CONFLICT (file_type, record_key) DO NOTHING`, l.fileID)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	l.inserted += n
	if err == nil {
		_, err = l.tx.ExecContext(ctx, "TRUNCATE carpipe_stage")
	}
	return err
}

// The two COPY targets: records, whose last column is the file id, and
// the staging table, whose last is the record's index in the file.
const (
	legacyCopyRecords = "COPY records (file_type, record_key, event_time, payload, file_id) FROM STDIN"
	legacyCopyStage   = "COPY carpipe_stage (file_type, record_key, event_time, payload, ord) FROM STDIN"
)

func (l *legacyLoader) send(ctx context.Context, query string, recs []plugins.Record) (n int64, err error) {
	err = l.conn.Raw(func(dc any) (err error) {
		// Raw closes a connection its callback calls bad, which waits for
		// the transaction open on it: that is ours, so it would wait
		// forever. The rollback discards the connection instead.
		defer func() {
			if err != nil {
				err = rawErr{err}
			}
		}()
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer st.Close()
		cd, ok := st.(copyData)
		if !ok {
			return fmt.Errorf("postgres: %T cannot send COPY data", st)
		}
		stage := query == legacyCopyStage
		buf := make([]byte, 0, 64<<10)
		for i, r := range recs {
			buf = appendCopy(buf, l.fileType)
			buf = append(buf, '\t')
			buf = appendCopy(buf, r.Key)
			buf = append(buf, '\t')
			if r.EventTime != nil {
				buf = appendTime(buf, *r.EventTime)
			} else {
				buf = append(buf, "\\N"...)
			}
			buf = append(buf, '\t')
			buf = appendCopy(buf, r.Payload)
			buf = append(buf, '\t')
			if stage {
				buf = strconv.AppendInt(buf, int64(r.Index), 10)
			} else {
				buf = strconv.AppendInt(buf, int64(l.fileID), 10)
			}
			// CopyData ends each call with a newline.
			if len(buf) >= 60<<10 || i == len(recs)-1 {
				if _, err := cd.CopyData(ctx, string(buf)); err != nil {
					return err
				}
				buf = buf[:0]
			} else {
				buf = append(buf, '\n')
			}
		}
		res, err := cd.Exec(nil)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if re, ok := err.(rawErr); ok {
		err = re.err
	}
	return n, err
}

// insertMany inserts a group's rows in one statement, in the order given.
func (p *Postgres) insertMany(ctx context.Context, tx *sql.Tx, rows []store.Row) (map[int]int64, error) {
	for _, r := range rows {
		p.sent.seen(r.FileType, r.Key)
	}
	return insert(ctx, tx, rows)
}

func insert(ctx context.Context, tx *sql.Tx, rows []store.Row) (map[int]int64, error) {
	types := make([]string, len(rows))
	keys := make([]string, len(rows))
	times := make([]sql.NullString, len(rows))
	payloads := make([]string, len(rows))
	files := make([]int64, len(rows))
	for i, r := range rows {
		types[i], keys[i], payloads[i], files[i] = r.FileType, r.Key, string(r.Payload), int64(r.FileID)
		if r.Time != nil {
			times[i] = sql.NullString{String: r.Time.Format(time.RFC3339Nano), Valid: true}
		}
	}
	res, err := tx.QueryContext(ctx, `INSERT INTO records (file_type, record_key, event_time, payload, file_id)
		SELECT ft, k, t, p::jsonb, f FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bigint[])
		WITH ORDINALITY AS u(ft, k, t, p, f, o) ORDER BY o
		ON CONFLICT (file_type, record_key) DO NOTHING RETURNING file_id`,
		pq.Array(types), pq.Array(keys), pq.GenericArray{A: times}, pq.Array(payloads), pq.Array(files))
	if err != nil {
		return nil, err
	}
	defer res.Close()
	out := map[int]int64{}
	for res.Next() {
		var id int
		if err := res.Scan(&id); err != nil {
			return nil, err
		}
		out[id]++
	}
	return out, res.Err()
}
