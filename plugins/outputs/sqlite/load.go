package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
)

// batchRows is how many records one INSERT carries at most: SQLite's cost
// is per statement, and past a few hundred rows more stop paying. A wide
// table carries fewer, to stay under maxVars.
const (
	batchRows = 200
	maxVars   = 32766
)

// loader writes records into a type's table as they come, batchRows a
// statement, in the order given: the first copy of a key is the one kept.
type loader struct {
	tx      *sql.Tx
	t       plugins.Table
	keyless bool // the table's unique index is _key
	width   int  // parameters a row
	per     int  // rows a full statement
	insert  string
	full    *sql.Stmt
	args    []any   // the rows not yet inserted
	files   []int64 // their file ids
	last    int64   // the table's largest rowid
	counts  map[int64]int64
	buf     []byte
}

func newLoader(ctx context.Context, _ *sql.Conn, tx *sql.Tx, t plugins.Table) (store.Loader, error) {
	l := &loader{tx: tx, t: t, keyless: len(t.Key) == 0, counts: map[int64]int64{}}
	cols := []string{"_file_id", "_index"}
	if t.HasTime {
		cols = append(cols, "_event_time")
	}
	cols = append(cols, "_extra")
	if l.keyless {
		cols = append(cols, "_key")
	}
	for _, c := range t.Columns {
		cols = append(cols, c.Name)
	}
	l.width = len(cols)
	l.per = min(batchRows, maxVars/l.width)
	// INSERT OR IGNORE rather than ON CONFLICT DO NOTHING: the same rows go
	// in, but no constraint can abort the statement halfway, so SQLite
	// keeps no statement journal of the pages it changes.
	l.insert = `INSERT OR IGNORE INTO "` + t.Name + `" ("` + strings.Join(cols, `", "`) + `") VALUES `
	// Rows a statement inserts come after the largest rowid before it.
	err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM "`+t.Name+`"`).Scan(&l.last)
	return l, err
}

func (l *loader) Add(ctx context.Context, fileID int64, recs []plugins.Record) error {
	for _, r := range recs {
		if err := l.row(fileID, r); err != nil {
			return err
		}
		if len(l.files) == l.per {
			if err := l.exec(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *loader) Merge(ctx context.Context) (map[int64]int64, error) {
	if len(l.files) > 0 {
		if err := l.exec(ctx); err != nil {
			return nil, err
		}
	}
	if l.full != nil {
		l.full.Close()
		l.full = nil
	}
	return l.counts, nil
}

// row appends a record's parameters, spelled as the table's columns
// store them: times as UTC text that sorts, booleans as 1 and 0.
func (l *loader) row(fileID int64, r plugins.Record) error {
	if len(r.Values) != len(l.t.Columns) {
		return fmt.Errorf("record %d has %d values; table %s has %d columns", r.Index, len(r.Values), l.t.Name, len(l.t.Columns))
	}
	l.args = append(l.args, fileID, int64(r.Index))
	if l.t.HasTime {
		var et any
		if r.EventTime != nil {
			et = l.time(*r.EventTime)
		}
		l.args = append(l.args, et)
	}
	var extra any
	if r.Extra != nil {
		extra = string(r.Extra)
	}
	l.args = append(l.args, extra)
	if l.keyless {
		l.args = append(l.args, r.Key)
	}
	for i, c := range l.t.Columns {
		v := r.Values[i]
		if !v.Valid {
			l.args = append(l.args, nil)
			continue
		}
		switch c.Type {
		case plugins.ColBoolean:
			switch v.Text {
			case "true":
				l.args = append(l.args, int64(1))
			case "false":
				l.args = append(l.args, int64(0))
			default:
				return fmt.Errorf("record %d: column %s: %q is not true or false", r.Index, c.Name, v.Text)
			}
		case plugins.ColNumber:
			l.args = append(l.args, number(v.Text))
		case plugins.ColInteger:
			n, err := strconv.ParseInt(v.Text, 10, 64)
			if err != nil {
				return fmt.Errorf("record %d: column %s: %q is not an integer of 64 bits", r.Index, c.Name, v.Text)
			}
			l.args = append(l.args, n)
		default:
			l.args = append(l.args, v.Text)
		}
	}
	l.files = append(l.files, fileID)
	return nil
}

// time spells t as a ColTimestamp value.
func (l *loader) time(t time.Time) string {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return t.Format("2006-01-02T15:04:05.000000Z")
	}
	l.buf = plugins.AppendTime(l.buf[:0], t, 'T')
	return string(l.buf)
}

// exec inserts the pending rows in one statement and counts what went in
// for each file. It counts affected rows rather than return them, which
// would cost a tenth of the load; only when some rows were duplicates and
// they span several files does it ask which files the new rows belong to.
func (l *loader) exec(ctx context.Context) error {
	n := len(l.files)
	var res sql.Result
	var err error
	if n == l.per {
		if l.full == nil {
			if l.full, err = l.tx.PrepareContext(ctx, l.statement(n)); err != nil {
				return err
			}
		}
		res, err = l.full.ExecContext(ctx, l.args...)
	} else {
		res, err = l.tx.ExecContext(ctx, l.statement(n), l.args...)
	}
	if err != nil {
		return err
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return err
	}
	one := true
	for _, f := range l.files {
		one = one && f == l.files[0]
	}
	switch {
	case affected == 0:
	case one:
		l.counts[l.files[0]] += affected
	case affected == int64(n):
		for _, f := range l.files {
			l.counts[f]++
		}
	default:
		if err := l.countSince(ctx); err != nil {
			return err
		}
	}
	if affected > 0 {
		if l.last, err = res.LastInsertId(); err != nil {
			return err
		}
	}
	l.args, l.files = l.args[:0], l.files[:0]
	return nil
}

// countSince counts the rows past l.last for each file: those of the
// statement just run.
func (l *loader) countSince(ctx context.Context) error {
	return store.AddCounts(ctx, l.tx, l.counts, `SELECT _file_id, count(*) FROM "`+l.t.Name+`" WHERE rowid > ? GROUP BY _file_id`, l.last)
}

func (l *loader) statement(n int) string {
	row := "(" + strings.Repeat("?,", l.width-1) + "?)"
	var b strings.Builder
	b.Grow(len(l.insert) + n*(len(row)+1))
	b.WriteString(l.insert)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// number is how a number column holds a JSON number: a double when the
// double spells the same decimal number, so that numbers compare and sort
// as numbers; else its exact text, which no double would keep apart from
// its neighbours (0.1 and 0.10000000000000000001).
func number(text string) any {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		return text
	}
	exact, ok := new(big.Rat).SetString(text)
	short, ok2 := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	if !ok || !ok2 || exact.Cmp(short) != 0 {
		return text
	}
	return f
}
