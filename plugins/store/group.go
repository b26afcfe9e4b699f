package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"entgo.io/ent/dialect"

	"github.com/carpipe/carpipe/ent"
	entschema "github.com/carpipe/carpipe/ent/schema"
	"github.com/carpipe/carpipe/plugins"
)

// Loader writes records into one type's table inside the store's
// transaction. Concurrent writers must lock keys in one order (PostgreSQL
// sorts by key); a lone writer (SQLite) need not.
type Loader interface {
	// Add stages records of the file whose ledger row is fileID, in file
	// order. It may write them at once; it must not hold a big file.
	Add(ctx context.Context, fileID int64, recs []plugins.Record) error
	// Merge inserts what was staged, skipping keys already stored (the
	// first copy wins), and returns how many rows it inserted for each
	// file id.
	Merge(ctx context.Context) (map[int64]int64, error)
}

// NewLoader starts a Loader of table t inside tx, which is open on conn:
// conn gives a driver's own bulk paths (Raw). It lives for one transaction.
type NewLoader func(ctx context.Context, conn *sql.Conn, tx *sql.Tx, t plugins.Table) (Loader, error)

// GroupSize: a lone writer (SQLite) gains most from fewer, larger commits;
// concurrent writers hold their locks and memory for less.
func (s *Store) GroupSize() int {
	if s.Serial {
		return 1000
	}
	return 200
}

// Load claims the files' ledger rows and opens their transaction. Claiming
// is what makes a file load once even when two runs race for it: one
// statement inserts a new file's row, takes over the row of a file that
// failed before, and leaves a loaded one alone; a concurrent writer of the
// same file makes it wait for that one's end.
func (s *Store) Load(ctx context.Context, files []plugins.FileInfo) (plugins.GroupTx, error) {
	if s.Serial {
		s.write.Lock()
	}
	g := &groupTx{s: s, files: files, total: make([]int64, len(files)), rejected: make([]int64, len(files)),
		loaders: map[string]Loader{}}
	if err := g.begin(ctx); err != nil {
		g.Rollback()
		return nil, s.wrap(err)
	}
	return g, nil
}

// rejectBatch is how many rejects wait before they are written: one
// statement for many files' few, and flat memory for a file of many.
const rejectBatch = 1000

type groupTx struct {
	s        *Store
	files    []plugins.FileInfo
	conn     *sql.Conn
	tx       *sql.Tx
	client   *ent.Client
	fksOff   bool
	ids      []int64 // the ledger rows; of a loaded file, the row that loaded it
	loaded   []bool
	total    []int64 // records added, per file
	rejected []int64
	loaders  map[string]Loader // by file type
	rejects  []*ent.RejectCreate
	done     bool
}

func (g *groupTx) begin(ctx context.Context) error {
	s := g.s
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return err
	}
	g.conn = conn
	if s.Dialect == dialect.SQLite {
		if err := s.uncheckedFKs(ctx, conn, g.files); err != nil {
			return err
		}
		g.fksOff = true
	}
	if g.tx, err = conn.BeginTx(ctx, nil); err != nil {
		return err
	}
	g.client = s.txClient(g.tx)
	claimed, err := s.claimRows(ctx, g.tx, g.files)
	if err != nil {
		return err
	}
	g.ids = make([]int64, len(g.files))
	g.loaded = make([]bool, len(g.files))
	var before []int
	for i, id := range claimed {
		g.ids[i] = id
		if id == 0 {
			g.loaded[i] = true
			before = append(before, i)
		}
	}
	return s.loadedRows(ctx, g.tx, g.files, before, g.ids)
}

func (g *groupTx) Loaded(i int) bool { return g.loaded[i] }

func (g *groupTx) Add(ctx context.Context, i int, b plugins.Batch) error {
	f := g.files[i]
	if g.loaded[i] {
		return fmt.Errorf("%s: records added to a file loaded before", f.Path)
	}
	if len(b.Records) > 0 {
		l, err := g.loader(ctx, f.FileType)
		if err != nil {
			return g.s.wrap(err)
		}
		if err := l.Add(ctx, g.ids[i], b.Records); err != nil {
			return g.s.wrap(err)
		}
		g.total[i] += int64(len(b.Records))
	}
	for _, r := range b.Rejects {
		errs := make([]entschema.FieldError, len(r.Errors))
		for j, e := range r.Errors {
			errs[j] = entschema.FieldError(e)
		}
		g.rejects = append(g.rejects, g.client.Reject.Create().SetFileID(int(g.ids[i])).SetRecordIndex(r.Index).
			SetErrors(errs).SetPayload(string(r.Payload)))
	}
	g.rejected[i] += int64(len(b.Rejects))
	if len(g.rejects) >= rejectBatch {
		return g.s.wrap(g.writeRejects(ctx))
	}
	return nil
}

func (g *groupTx) loader(ctx context.Context, fileType string) (Loader, error) {
	if l, ok := g.loaders[fileType]; ok {
		return l, nil
	}
	t, ok := g.s.Table(fileType)
	if !ok {
		return nil, fmt.Errorf("file type %s has no table in the database (is it migrated for this schema?)", fileType)
	}
	l, err := g.s.Loader(ctx, g.conn, g.tx, t)
	if err != nil {
		return nil, err
	}
	g.loaders[fileType] = l
	return l, nil
}

func (g *groupTx) writeRejects(ctx context.Context) error {
	if len(g.rejects) == 0 {
		return nil
	}
	err := g.client.Reject.CreateBulk(g.rejects...).Exec(ctx)
	g.rejects = g.rejects[:0]
	return err
}

func (g *groupTx) Commit(ctx context.Context) ([]plugins.Outcome, error) {
	if g.done {
		return nil, errors.New("commit of a transaction that ended")
	}
	out, err := g.commit(ctx)
	if err != nil {
		g.Rollback()
		return nil, g.s.wrap(err)
	}
	g.finish(ctx)
	return out, nil
}

func (g *groupTx) commit(ctx context.Context) ([]plugins.Outcome, error) {
	// Types merge in one order, so that concurrent groups lock their
	// tables in one order too.
	types := make([]string, 0, len(g.loaders))
	for t := range g.loaders {
		types = append(types, t)
	}
	sort.Strings(types)
	inserted := map[int64]int64{}
	for _, t := range types {
		m, err := g.loaders[t].Merge(ctx)
		if err != nil {
			return nil, err
		}
		for id, n := range m {
			inserted[id] += n
		}
	}
	out := make([]plugins.Outcome, len(g.files))
	var counts [][5]int64 // total, inserted, duplicate, rejected, id
	for i, id := range g.ids {
		if g.loaded[i] {
			out[i] = plugins.Outcome{Counts: plugins.Counts{FileID: id}, Err: plugins.ErrLoaded}
			continue
		}
		c := plugins.Counts{FileID: id, Inserted: inserted[id], Rejected: g.rejected[i]}
		c.Duplicate = g.total[i] - c.Inserted
		out[i].Counts = c
		if n := g.total[i] + c.Rejected; n > 0 { // the claim wrote zeros
			counts = append(counts, [5]int64{n, c.Inserted, c.Duplicate, c.Rejected, id})
		}
	}
	if err := g.s.setCounts(ctx, g.tx, counts); err != nil {
		return nil, err
	}
	if err := g.writeRejects(ctx); err != nil {
		return nil, err
	}
	return out, g.tx.Commit()
}

func (g *groupTx) Rollback() error {
	if g.done {
		return nil
	}
	var err error
	if g.tx != nil {
		if err = g.tx.Rollback(); errors.Is(err, sql.ErrTxDone) {
			err = nil
		}
	}
	g.finish(context.Background())
	return err
}

func (g *groupTx) finish(ctx context.Context) {
	if g.done {
		return
	}
	g.done = true
	if g.conn != nil {
		if g.fksOff {
			g.s.checkFKs(ctx, g.conn)
		}
		g.conn.Close()
	}
	if g.s.Serial {
		g.s.write.Unlock()
	}
}

// uncheckedFKs turns SQLite's foreign-key checks off for a group's
// transaction. SQLite checks them row by row and, because a failed check
// aborts a multi-row statement halfway, journals every page such a
// statement changes: a fifth of a group's load. The group's records and
// rejects point at ledger rows its own statement just returned, and the
// one reference from outside, the run, is checked here instead.
func (s *Store) uncheckedFKs(ctx context.Context, conn *sql.Conn, files []plugins.FileInfo) error {
	runs := map[int64]bool{}
	for _, f := range files {
		runs[f.Run] = true
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

// maxParams bounds a statement's parameters below both dialects' limits
// (SQLite 32766, PostgreSQL 65535).
const maxParams = 32000

// claimRows takes each file's ledger row, returning 0 for a file already
// loaded, in one statement per maxParams. The counts start at zero; Commit
// writes them.
func (s *Store) claimRows(ctx context.Context, tx *sql.Tx, files []plugins.FileInfo) ([]int64, error) {
	const cols = 10
	ids := make([]int64, 0, len(files))
	for len(files) > 0 {
		n := min(len(files), maxParams/cols)
		got, err := s.claimSome(ctx, tx, files[:n])
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
		files = files[n:]
	}
	return ids, nil
}

func (s *Store) claimSome(ctx context.Context, tx *sql.Tx, files []plugins.FileInfo) ([]int64, error) {
	now := time.Now()
	var q strings.Builder
	q.WriteString(`INSERT INTO files (run_id, input, path, path_key, file_type, size, sha256, file_time, status, processed_at,
	records_total, records_inserted, records_duplicate, records_rejected, error, location) VALUES `)
	args := make([]any, 0, 10*len(files))
	at := make(map[[3]string]int, len(files))
	for i, f := range files {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(s.params(len(args), "(%, %, %, %, %, %, %, %, 'processed', %, 0, 0, 0, 0, '', %)"))
		var ft any
		if f.Time != nil {
			ft = *f.Time
		}
		text := PathText(f.Path)
		args = append(args, f.Run, f.Input, text, PathKey(f.Path), f.FileType, f.Size, f.SHA256, ft, now, text)
		at[[3]string{f.Input, PathKey(f.Path), f.SHA256}] = i
	}
	q.WriteString(` ON CONFLICT (input, path_key, sha256) DO UPDATE SET run_id = excluded.run_id, file_type = excluded.file_type,
	status = 'processed', error = '', processed_at = excluded.processed_at, location = excluded.location,
	records_total = 0, records_inserted = 0, records_duplicate = 0, records_rejected = 0
	WHERE files.status = 'failed'
	RETURNING id, input, path_key, sha256`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := make([]int64, len(files))
	for rows.Next() {
		var id int64
		var k [3]string
		if err := rows.Scan(&id, &k[0], &k[1], &k[2]); err != nil {
			return nil, err
		}
		ids[at[k]] = id
	}
	return ids, rows.Err()
}

// loadedRows finds the rows of the files at indexes some, which were
// loaded before, in one statement: their moves are recorded on them.
func (s *Store) loadedRows(ctx context.Context, tx *sql.Tx, files []plugins.FileInfo, some []int, ids []int64) error {
	for len(some) > 0 {
		n := min(len(some), maxParams/3)
		var q strings.Builder
		q.WriteString("SELECT id, input, path_key, sha256 FROM files WHERE ")
		args := make([]any, 0, 3*n)
		at := make(map[[3]string]int, n)
		for k, i := range some[:n] {
			if k > 0 {
				q.WriteString(" OR ")
			}
			f := files[i]
			q.WriteString(s.params(len(args), "(input = % AND path_key = % AND sha256 = %)"))
			args = append(args, f.Input, PathKey(f.Path), f.SHA256)
			at[[3]string{f.Input, PathKey(f.Path), f.SHA256}] = i
		}
		rows, err := tx.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var k [3]string
			if err := rows.Scan(&id, &k[0], &k[1], &k[2]); err != nil {
				rows.Close()
				return err
			}
			if i, ok := at[k]; ok {
				ids[i] = id
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		some = some[n:]
	}
	return nil
}

// setCounts writes the files' counts, in one statement per maxParams.
func (s *Store) setCounts(ctx context.Context, tx *sql.Tx, counts [][5]int64) error {
	if s.Dialect == dialect.SQLite && len(counts) > 1 {
		// In process, a prepared statement per file costs a quarter of
		// what SQLite spends joining a VALUES list to files.
		st, err := tx.PrepareContext(ctx, `UPDATE files SET records_total = ?, records_inserted = ?,
			records_duplicate = ?, records_rejected = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range counts {
			if _, err := st.ExecContext(ctx, c[0], c[1], c[2], c[3], c[4]); err != nil {
				return err
			}
		}
		return nil
	}
	for len(counts) > 0 {
		n := min(len(counts), maxParams/5)
		var q strings.Builder
		q.WriteString("WITH v (t, i, d, r, id) AS (VALUES ")
		args := make([]any, 0, 5*n)
		for k, c := range counts[:n] {
			if k > 0 {
				q.WriteByte(',')
			}
			// PostgreSQL types VALUES from its first row, as text unless told.
			q.WriteString(s.params(len(args), "(CAST(% AS bigint), CAST(% AS bigint), CAST(% AS bigint), CAST(% AS bigint), CAST(% AS bigint))"))
			args = append(args, c[0], c[1], c[2], c[3], c[4])
		}
		q.WriteString(`) UPDATE files SET records_total = v.t, records_inserted = v.i, records_duplicate = v.d,
	records_rejected = v.r FROM v WHERE files.id = v.id`)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		counts = counts[n:]
	}
	return nil
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

// AddCounts runs query, whose rows are (file id, rows inserted), in tx and
// adds them to counts: how a dialect's loader learns what a statement
// stored for each file.
func AddCounts(ctx context.Context, tx *sql.Tx, counts map[int64]int64, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var file, n int64
		if err := rows.Scan(&file, &n); err != nil {
			return err
		}
		counts[file] += n
	}
	return rows.Err()
}
