package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/store"
)

const (
	// chunk is how many records go to the server at once: enough for COPY
	// to pay, few enough that memory stays flat however big the file.
	chunk = 8192
	// copyMin: below it one INSERT beats COPY's extra round trips.
	copyMin = 256
	// maxParams is the most parameters a statement may have.
	maxParams = 65535
)

// maxSavepoints keeps a loader's subtransactions under the 64 that
// PostgreSQL caches per transaction; past that every session's snapshots
// get slower. A transaction of several tables may pass it. A variable, for
// the tests of what comes after it.
var maxSavepoints = 60

// loader sends one table's records in chunks. A chunk's keys this process
// has not sent before go by plain COPY into the table, sorted by key,
// inside a savepoint; the rest, and the whole chunk if that COPY meets a
// key stored meanwhile, are merged: INSERT … ON CONFLICT DO NOTHING in key
// order, then file order, from a staging table filled by COPY when there
// are many. Every path orders keys the same way (Record.Key, bytewise), so
// writers lock them in one order; the first copy of a repeated record is
// the one kept, and the counts are exact.
type loader struct {
	p    *Postgres
	tx   *sql.Tx
	conn *sql.Conn
	t    plugins.Table
	q    statements

	buf               []staged
	fresh, known, all []int // scratch, indexes into buf
	counts            map[int64]int64
	copies, fallbacks int
	open              bool // the savepoint of the last COPY is still open
	staging           bool // the staging table exists in this transaction
	dirty             bool // and holds the rows of an earlier merge
}

// staged is a record and the ledger row of its file.
type staged struct {
	file int64
	rec  plugins.Record
}

// statements are a loader's SQL for its table.
type statements struct {
	ncols     int
	copyTable string
	copyStage string
	// createStage makes the session's staging table: the table's columns
	// and _ord, the merge order.
	createStage   string
	truncateStage string
	mergeStage    string
	// values and returning enclose the VALUES rows of a small merge.
	values, returning string
	savepoint         string
}

// savepoints names each loader's savepoint apart from the others' in its
// transaction.
var savepoints atomic.Int64

// newLoader starts the loader of table t inside tx, which is open on conn.
func (p *Postgres) newLoader(_ context.Context, conn *sql.Conn, tx *sql.Tx, t plugins.Table) (store.Loader, error) {
	for _, k := range t.Key {
		if k < 0 || k >= len(t.Columns) {
			return nil, fmt.Errorf("table %s: key column %d of %d columns", t.Name, k, len(t.Columns))
		}
	}
	return &loader{p: p, tx: tx, conn: conn, t: t, q: newStatements(t), counts: map[int64]int64{}}, nil
}

func newStatements(t plugins.Table) statements {
	names := []string{"_file_id", "_index"}
	if t.HasTime {
		names = append(names, "_event_time")
	}
	names = append(names, "_extra")
	if len(t.Key) == 0 {
		names = append(names, "_key")
	}
	for _, c := range t.Columns {
		names = append(names, c.Name)
	}
	var keys []string
	for _, k := range t.Key {
		keys = append(keys, pq.QuoteIdentifier(t.Columns[k].Name))
	}
	if len(keys) == 0 {
		keys = []string{"_key"}
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = pq.QuoteIdentifier(n)
	}
	cols := strings.Join(quoted, ", ")
	table := pq.QuoteIdentifier(t.Name)
	// One staging table per shape of table: a session keeps it across
	// transactions, and a table whose columns change gets a new one.
	sum := sha256.Sum256([]byte(t.Name + "\x00" + cols))
	stage := pq.QuoteIdentifier("carpipe_stage_" + hex.EncodeToString(sum[:8]))
	conflict := " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO NOTHING RETURNING _file_id)" +
		" SELECT _file_id, count(*) FROM ins GROUP BY _file_id"
	return statements{
		ncols:         len(names),
		copyTable:     "COPY " + table + " (" + cols + ") FROM STDIN",
		copyStage:     "COPY " + stage + " (" + cols + ", _ord) FROM STDIN",
		createStage:   "CREATE TEMP TABLE IF NOT EXISTS " + stage + " (LIKE " + table + ", _ord bigint) ON COMMIT DELETE ROWS",
		truncateStage: "TRUNCATE " + stage,
		mergeStage: "WITH ins AS (INSERT INTO " + table + " (" + cols + ") SELECT " + cols + " FROM " + stage +
			" ORDER BY _ord" + conflict,
		values:    "WITH ins AS (INSERT INTO " + table + " (" + cols + ") VALUES ",
		returning: conflict,
		savepoint: "carpipe_copy_" + strconv.FormatInt(savepoints.Add(1), 10),
	}
}

func (l *loader) Add(ctx context.Context, fileID int64, recs []plugins.Record) error {
	if _, ok := l.counts[fileID]; !ok {
		l.counts[fileID] = 0
	}
	for _, r := range recs {
		if len(r.Values) != len(l.t.Columns) {
			return fmt.Errorf("table %s: file id %d, record %d has %d values, want one per column: %d",
				l.t.Name, fileID, r.Index, len(r.Values), len(l.t.Columns))
		}
		r.Payload = nil // the whole record's text is not stored: let it go
		l.buf = append(l.buf, staged{fileID, r})
		if len(l.buf) >= chunk {
			if err := l.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *loader) Merge(ctx context.Context) (map[int64]int64, error) {
	if err := l.flush(ctx); err != nil {
		return nil, err
	}
	out := l.counts
	l.counts = map[int64]int64{}
	return out, nil
}

func (l *loader) flush(ctx context.Context) error {
	rows := l.buf
	if len(rows) == 0 {
		return nil
	}
	defer func() {
		clear(rows) // let the records go
		l.buf = rows[:0]
	}()
	sent := l.p.sent.view()
	fresh, known, all := l.fresh[:0], l.known[:0], l.all[:0]
	for i := range rows {
		if sent.seen(l.t.Name, rows[i].rec.Key) {
			known = append(known, i)
		} else {
			fresh = append(fresh, i)
		}
		all = append(all, i)
	}
	l.fresh, l.known, l.all = fresh, known, all
	// After a conflict the data may well be old: stop trying, and never
	// risk a COPY without a savepoint.
	if len(fresh) < copyMin || l.fallbacks >= 2 || l.copies >= maxSavepoints && l.fallbacks > 0 {
		return l.merge(ctx, rows, all)
	}
	ok, err := l.copy(ctx, rows, fresh)
	if err != nil {
		return err
	}
	if !ok {
		l.fallbacks++
		l.p.fallbacks.Add(1)
		return l.merge(ctx, rows, all)
	}
	return l.merge(ctx, rows, known)
}

// copy sends rows[idx], whose keys are distinct, by COPY; false when a key
// was already stored, in which case nothing of them is.
func (l *loader) copy(ctx context.Context, rows []staged, idx []int) (bool, error) {
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(rows[a].rec.Key, rows[b].rec.Key) })
	sp := l.q.savepoint
	// Past the savepoint budget a big file's fresh keys still go by COPY,
	// bare: a stored key then aborts the transaction, and the file is
	// loaded again, its keys now known to the sent filter, by merging.
	bare := l.copies >= maxSavepoints
	if !bare {
		q := "SAVEPOINT " + sp
		if l.open {
			// Releasing the last COPY's savepoint only now spares a round trip.
			q = "RELEASE SAVEPOINT " + sp + "; " + q
		}
		if _, err := l.tx.ExecContext(ctx, q); err != nil {
			return false, err
		}
		l.open = true
	}
	l.copies++
	l.p.copies.Add(1)
	n, err := l.send(ctx, l.q.copyTable, rows, idx)
	var pe *pq.Error
	if bare && errors.As(err, &pe) && pe.Code == "23505" {
		return false, bareConflict{err}
	}
	if errors.As(err, &pe) && pe.Code == "23505" {
		l.open = false
		_, err := l.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+sp+"; RELEASE SAVEPOINT "+sp)
		return false, err
	}
	if err != nil {
		return false, l.rowError(err, rows, idx)
	}
	if n != int64(len(idx)) {
		return false, fmt.Errorf("table %s: COPY stored %d rows of %d", l.t.Name, n, len(idx))
	}
	for _, i := range idx {
		l.counts[rows[i].file]++
	}
	return true, nil
}

// merge inserts rows[idx] in key order, then file order, skipping stored
// keys.
func (l *loader) merge(ctx context.Context, rows []staged, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := strings.Compare(rows[a].rec.Key, rows[b].rec.Key); c != 0 {
			return c
		}
		return a - b
	})
	if len(idx) < copyMin {
		return l.insert(ctx, rows, idx)
	}
	// Many rows: COPY them to a staging table rather than send parameters.
	var prep string
	switch {
	case !l.staging:
		prep = l.q.createStage
	case l.dirty:
		prep = l.q.truncateStage
	}
	if prep != "" {
		if _, err := l.tx.ExecContext(ctx, prep); err != nil {
			return err
		}
		l.staging = true
	}
	l.dirty = true
	if _, err := l.send(ctx, l.q.copyStage, rows, idx); err != nil {
		return l.rowError(err, rows, idx)
	}
	return l.count(ctx, l.q.mergeStage)
}

// insert merges a few rows by one INSERT … VALUES, whose parameters take
// their columns' types.
func (l *loader) insert(ctx context.Context, rows []staged, idx []int) error {
	per := maxParams / l.q.ncols
	for lo := 0; lo < len(idx); lo += per {
		part := idx[lo:min(lo+per, len(idx))]
		args := make([]any, 0, len(part)*l.q.ncols)
		var b strings.Builder
		b.Grow(len(l.q.values) + len(l.q.returning) + len(part)*l.q.ncols*7)
		b.WriteString(l.q.values)
		for j, i := range part {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			first := len(args)
			args = l.appendArgs(args, rows[i])
			for a := first; a < len(args); a++ {
				if a > first {
					b.WriteByte(',')
				}
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(a + 1))
			}
			b.WriteByte(')')
		}
		b.WriteString(l.q.returning)
		if err := l.count(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("table %s: records of file ids %v: %w", l.t.Name, files(rows, part), err)
		}
	}
	return nil
}

// appendArgs appends a row's values in column order, as text or nil.
func (l *loader) appendArgs(args []any, s staged) []any {
	args = append(args, s.file, int64(s.rec.Index))
	if l.t.HasTime {
		if s.rec.EventTime != nil {
			args = append(args, string(appendTime(nil, *s.rec.EventTime)))
		} else {
			args = append(args, nil)
		}
	}
	if len(s.rec.Extra) > 0 {
		args = append(args, string(s.rec.Extra)) // as text: lib/pq sends []byte as binary
	} else {
		args = append(args, nil)
	}
	if len(l.t.Key) == 0 {
		args = append(args, s.rec.Key)
	}
	for _, v := range s.rec.Values {
		if v.Valid {
			args = append(args, v.Text)
		} else {
			args = append(args, nil)
		}
	}
	return args
}

// count runs a merge, which returns the rows it inserted per file id.
func (l *loader) count(ctx context.Context, query string, args ...any) error {
	return store.AddCounts(ctx, l.tx, l.counts, query, args...)
}

// appendRow writes a row in COPY's text format, without its newline.
func (l *loader) appendRow(buf []byte, s staged) []byte {
	buf = strconv.AppendInt(buf, s.file, 10)
	buf = append(buf, '\t')
	buf = strconv.AppendInt(buf, int64(s.rec.Index), 10)
	if l.t.HasTime {
		buf = append(buf, '\t')
		if s.rec.EventTime != nil {
			buf = appendTime(buf, *s.rec.EventTime)
		} else {
			buf = append(buf, `\N`...)
		}
	}
	buf = append(buf, '\t')
	if len(s.rec.Extra) > 0 {
		buf = appendCopy(buf, s.rec.Extra)
	} else {
		buf = append(buf, `\N`...)
	}
	if len(l.t.Key) == 0 {
		buf = append(buf, '\t')
		buf = appendCopy(buf, s.rec.Key)
	}
	for _, v := range s.rec.Values {
		buf = append(buf, '\t')
		if v.Valid {
			buf = appendCopy(buf, v.Text)
		} else {
			buf = append(buf, `\N`...)
		}
	}
	return buf
}

// copyWhere finds the line and column of a COPY error in its context.
var copyWhere = regexp.MustCompile(`(?m)^COPY [^,]+, line (\d+)(?:, column ([a-z0-9_]+))?`)

// rowError names the record a COPY of rows[idx] failed on, when the
// server says which.
func (l *loader) rowError(err error, rows []staged, idx []int) error {
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return err
	}
	m := copyWhere.FindStringSubmatch(pe.Where)
	if m == nil {
		return fmt.Errorf("table %s: records of file ids %v: %w", l.t.Name, files(rows, idx), err)
	}
	line, _ := strconv.Atoi(m[1])
	if line < 1 || line > len(idx) {
		return fmt.Errorf("table %s: %w", l.t.Name, err)
	}
	s := rows[idx[line-1]]
	field := ""
	if m[2] != "" {
		field = ", column " + m[2]
		for _, c := range l.t.Columns {
			if c.Name == m[2] && c.Property != c.Name {
				field += " (property " + strconv.Quote(c.Property) + ")"
			}
		}
	}
	return fmt.Errorf("table %s: file id %d, record %d%s: %w", l.t.Name, s.file, s.rec.Index, field, err)
}

// files lists the file ids of rows[idx], each once.
func files(rows []staged, idx []int) []int64 {
	var out []int64
	for _, i := range idx {
		if !slices.Contains(out, rows[i].file) {
			out = append(out, rows[i].file)
		}
	}
	return out
}

// copyData is lib/pq's COPY statement taking whole lines of COPY text,
// which spares database/sql's per-row conversions.
type copyData interface {
	CopyData(ctx context.Context, lines string) (driver.Result, error)
	Exec(args []driver.Value) (driver.Result, error)
}

// send COPYs rows[idx] in that order; into the staging table each row
// also carries its rank, _ord.
func (l *loader) send(ctx context.Context, query string, rows []staged, idx []int) (n int64, err error) {
	stage := query == l.q.copyStage
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
		buf := make([]byte, 0, 64<<10)
		for j, i := range idx {
			buf = l.appendRow(buf, rows[i])
			if stage {
				buf = append(buf, '\t')
				buf = strconv.AppendInt(buf, int64(j), 10)
			}
			// CopyData ends each call with a newline.
			if len(buf) >= 60<<10 || j == len(idx)-1 {
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

// rawErr hides an error from database/sql, which must not see
// driver.ErrBadConn inside Raw; it is unwrapped as soon as Raw returns.
type rawErr struct{ err error }

func (e rawErr) Error() string { return e.err.Error() }

// appendTime writes t in UTC with microseconds; lib/pq's own formatter,
// several times slower, spells the years before 1 and after 9999 (BC).
func appendTime(buf []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return append(buf, pq.FormatTimestamp(t)...)
	}
	return plugins.AppendTime(buf, t, ' ')
}

// appendCopy escapes s for COPY's text format.
func appendCopy[T ~string | ~[]byte](buf []byte, s T) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc byte
		switch s[i] {
		case '\\':
			esc = '\\'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case '\t':
			esc = 't'
		default:
			continue
		}
		buf = append(append(buf, s[start:i]...), '\\', esc)
		start = i + 1
	}
	return append(buf, s[start:]...)
}

// bareConflict is a stored key met by a COPY without a savepoint: the
// transaction is lost, and the file is to be loaded again (see retry).
type bareConflict struct{ err error }

func (e bareConflict) Error() string { return e.err.Error() + " (the file is loaded again, merging)" }
func (e bareConflict) Unwrap() error { return e.err }
