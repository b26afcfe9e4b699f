package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
)

// direct is how many records a file may have and still be inserted with
// one statement; larger files are streamed with COPY into a staging table.
const direct = 1000

// loader buffers a small file and sends it in one INSERT; past direct
// records it switches to COPY, so memory stays flat and big files load at
// COPY speed. Either way rows are merged in key order: two files sharing
// keys then lock them in the same order and cannot deadlock. Within a key,
// file order: the first copy of a repeated record is the one kept.
type loader struct {
	tx       *sql.Tx
	fileType string
	fileID   int
	buf      []plugins.Record
	staged   bool
}

func newLoader(_ context.Context, tx *sql.Tx, fileType string, fileID int) (store.Loader, error) {
	return &loader{tx: tx, fileType: fileType, fileID: fileID}, nil
}

func (l *loader) Add(ctx context.Context, recs []plugins.Record) error {
	if !l.staged && len(l.buf)+len(recs) <= direct {
		l.buf = append(l.buf, recs...)
		return nil
	}
	if !l.staged {
		_, err := l.tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS carpipe_stage
			(record_key text, event_time timestamptz, payload text, ord int) ON COMMIT DELETE ROWS`)
		if err != nil {
			return err
		}
		l.staged = true
		recs, l.buf = append(l.buf, recs...), nil
	}
	stmt, err := l.tx.PrepareContext(ctx, pq.CopyIn("carpipe_stage", "record_key", "event_time", "payload", "ord"))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range recs {
		if _, err := stmt.ExecContext(ctx, r.Key, eventTime(r.EventTime), string(r.Payload), r.Index); err != nil {
			return err
		}
	}
	_, err = stmt.ExecContext(ctx)
	return err
}

func eventTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

func (l *loader) Merge(ctx context.Context) (int64, error) {
	var res sql.Result
	var err error
	if l.staged {
		res, err = l.tx.ExecContext(ctx, `INSERT INTO records (file_type, record_key, event_time, payload, file_id)
			SELECT $1, record_key, event_time, payload::jsonb, $2 FROM carpipe_stage ORDER BY record_key, ord
			ON CONFLICT (file_type, record_key) DO NOTHING`, l.fileType, l.fileID)
	} else if len(l.buf) > 0 {
		keys := make([]string, len(l.buf))
		times := make([]sql.NullString, len(l.buf))
		payloads := make([]string, len(l.buf))
		for i, r := range l.buf {
			keys[i], payloads[i] = r.Key, string(r.Payload)
			if r.EventTime != nil {
				times[i] = sql.NullString{String: r.EventTime.Format(time.RFC3339Nano), Valid: true}
			}
		}
		res, err = l.tx.ExecContext(ctx, `INSERT INTO records (file_type, record_key, event_time, payload, file_id)
			SELECT $1, k, t, p::jsonb, $2 FROM unnest($3::text[], $4::timestamptz[], $5::text[]) WITH ORDINALITY AS u(k, t, p, o)
			ORDER BY k, o ON CONFLICT (file_type, record_key) DO NOTHING`,
			l.fileType, l.fileID, pq.Array(keys), pq.GenericArray{A: times}, pq.Array(payloads))
	} else {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// insertMany inserts a group's rows in one statement, in the order given.
func insertMany(ctx context.Context, tx *sql.Tx, rows []store.Row) (map[int]int64, error) {
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
