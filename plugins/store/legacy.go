package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
)

// upgradeLockKey serialises the move of the old records across the
// processes sharing a PostgreSQL database.
const upgradeLockKey int64 = 0x63617270_75706772 // "carpupgr"

// legacyPage is how many old records are read at once: reading and
// writing take turns on the transaction's one connection.
const legacyPage = 10000

// upgradeRecords moves what an older carpipe kept in its generic records
// table into the typed tables, which must exist, in tx. A value that no
// longer fits its column (the schema changed since it was loaded) goes to
// _extra rather than be lost. Records keep their file; their _index is
// the order they were stored in, as the old table kept no index. The old
// table and its views are dropped only when no record is left behind:
// records of file types no schema declares any more stay, and are named.
func (s *Store) upgradeRecords(ctx context.Context, ts []plugins.Table) (moved int64, err error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// Replicas starting together upgrade one after the other; the later
	// ones find nothing left to move. SQLite's writer is one already.
	if s.Dialect == dialect.Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", upgradeLockKey); err != nil {
			return 0, err
		}
	}
	if old, err := tableExists(ctx, tx, s.Dialect, "records"); err != nil || !old {
		return 0, err
	}
	moved, err = s.moveRecords(ctx, conn, tx, ts)
	if err != nil {
		return 0, err
	}
	return moved, tx.Commit()
}

func (s *Store) moveRecords(ctx context.Context, conn *sql.Conn, tx *sql.Tx, ts []plugins.Table) (moved int64, err error) {
	for _, t := range ts {
		n, err := s.upgradeType(ctx, conn, tx, t)
		if err != nil {
			return moved, fmt.Errorf("moving the records of file type %s into table %s: %w", t.FileType, t.Name, err)
		}
		moved += n
	}
	var left []string
	rows, err := tx.QueryContext(ctx, "SELECT DISTINCT file_type FROM records ORDER BY file_type")
	if err != nil {
		return moved, err
	}
	for rows.Next() {
		var ft string
		if err := rows.Scan(&ft); err != nil {
			rows.Close()
			return moved, err
		}
		if !declared(ts, ft) {
			left = append(left, ft)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return moved, err
	}
	if len(left) > 0 {
		for _, t := range ts {
			if _, err := tx.ExecContext(ctx, "DELETE FROM records WHERE file_type = "+s.ph(1), t.FileType); err != nil {
				return moved, err
			}
		}
		s.Log.Warn("records of file types no schema declares stay in the old records table", "file_types", strings.Join(left, ", "))
		return moved, nil
	}
	_, err = tx.ExecContext(ctx, "DROP TABLE records")
	return moved, err
}

func declared(ts []plugins.Table, fileType string) bool {
	for _, t := range ts {
		if t.FileType == fileType {
			return true
		}
	}
	return false
}

// upgradeType moves one type's records, a page at a time, through the
// dialect's loader: old keys are kept, so nothing is deduplicated anew.
func (s *Store) upgradeType(ctx context.Context, conn *sql.Conn, tx *sql.Tx, t plugins.Table) (int64, error) {
	l, err := s.Loader(ctx, conn, tx, t)
	if err != nil {
		return 0, err
	}
	next := map[int64]int{} // file id → its next record index
	var last, moved int64
	for {
		rows, err := tx.QueryContext(ctx, "SELECT id, file_id, record_key, event_time, payload FROM records WHERE file_type = "+
			s.ph(1)+" AND id > "+s.ph(2)+" ORDER BY id LIMIT "+fmt.Sprint(legacyPage), t.FileType, last)
		if err != nil {
			return moved, err
		}
		type row struct {
			file int64
			rec  plugins.Record
		}
		var page []row
		for rows.Next() {
			var r row
			var at sql.NullTime
			var payload []byte
			if err := rows.Scan(&last, &r.file, &r.rec.Key, &at, &payload); err != nil {
				rows.Close()
				return moved, err
			}
			if at.Valid {
				ts := at.Time.UTC()
				r.rec.EventTime = &ts
			}
			if err := fill(&r.rec, t, payload); err != nil {
				rows.Close()
				return moved, fmt.Errorf("record %d: %w", last, err)
			}
			r.rec.Index = next[r.file]
			next[r.file]++
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return moved, err
		}
		if len(page) == 0 {
			break
		}
		for lo := 0; lo < len(page); {
			hi := lo
			var recs []plugins.Record
			for hi < len(page) && page[hi].file == page[lo].file {
				recs = append(recs, page[hi].rec)
				hi++
			}
			if err := l.Add(ctx, page[lo].file, recs); err != nil {
				return moved, err
			}
			lo = hi
		}
		n, err := l.Merge(ctx)
		if err != nil {
			return moved, err
		}
		for _, k := range n {
			moved += k
		}
		if len(page) < legacyPage {
			break
		}
	}
	return moved, nil
}

// fill sets rec's Values and Extra from an old record's JSON.
func fill(rec *plugins.Record, t plugins.Table, payload []byte) error {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return err
	}
	rec.Payload = payload
	rec.Values = make([]plugins.Value, len(t.Columns))
	for i, c := range t.Columns {
		v, ok := obj[c.Property]
		if !ok {
			continue
		}
		text, fits := columnText(c.Type, v)
		if !fits {
			continue // stays in obj, so in _extra
		}
		rec.Values[i] = plugins.Value{Text: text, Valid: true}
		delete(obj, c.Property)
	}
	if len(obj) > 0 {
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		rec.Extra = b
	}
	return nil
}

// columnText spells v as a column of type typ holds it (plugins.Value),
// or tells that it does not fit.
func columnText(typ string, v any) (string, bool) {
	switch typ {
	case plugins.ColText:
		s, ok := v.(string)
		return s, ok
	case plugins.ColTimestamp:
		s, ok := v.(string)
		if !ok {
			return "", false
		}
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || ts.UTC().Year() < 1 || ts.UTC().Year() > 9999 {
			return "", false
		}
		return string(plugins.AppendTime(nil, ts.UTC().Truncate(time.Microsecond), 'T')), true
	case plugins.ColInteger:
		n, ok := v.(json.Number)
		if !ok {
			return "", false
		}
		r, ok := new(big.Rat).SetString(string(n))
		if !ok || !r.IsInt() || !r.Num().IsInt64() {
			return "", false
		}
		return r.Num().String(), true
	case plugins.ColNumber:
		n, ok := v.(json.Number)
		return string(n), ok
	case plugins.ColBoolean:
		b, ok := v.(bool)
		if !ok {
			return "", false
		}
		if b {
			return "true", true
		}
		return "false", true
	}
	b, err := json.Marshal(v) // sorted keys, numbers as written
	return string(b), err == nil
}

// dropViews drops the typed views an older carpipe made over its records
// table, which the typed tables replace under the same names. It reads
// and drops in one transaction, under the upgrade's lock, so that a
// replica never drops what another has just made a table.
func (s *Store) dropViews(ctx context.Context) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var q string
	if s.Dialect == dialect.Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", upgradeLockKey); err != nil {
			return err
		}
		q = `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind = 'v'
			AND obj_description(c.oid, 'pg_class') LIKE '` + legacyViewMark + `%'`
	} else {
		q = `SELECT name FROM sqlite_master WHERE type = 'view' AND sql LIKE '%-- ` + legacyViewMark + `%'`
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	var views []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		views = append(views, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, v := range views {
		if _, err := tx.ExecContext(ctx, "DROP VIEW "+pq.QuoteIdentifier(v)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// legacyViewMark starts the note older carpipes left on their views.
const legacyViewMark = "carpipe: typed view of file type "
