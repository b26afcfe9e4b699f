package plugintest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
)

// hang is how long a call may take before the suite calls it stuck: a lock
// that is never released must fail the test, not time out the binary.
const hang = 30 * time.Second

// Open returns a fresh, initialised (Init already called), empty ledger
// whose database holds tables, as Planner.Apply makes them, plus a *sql.DB
// on the same database for assertions.
type Open func(t *testing.T, tables []plugins.Table) (plugins.Ledger, *sql.DB)

// Ledger runs the behaviour every database output must have: the cases
// here, which mostly load one file, a group of one, and those of groups
// (group.go).
func Ledger(t *testing.T, open Open) {
	cases := []struct {
		name string
		run  func(*testing.T, *fixture)
	}{
		{"migrate twice", ledgerMigrateTwice},
		{"commit", ledgerCommit},
		{"duplicates", ledgerDuplicates},
		{"first copy wins", ledgerFirstCopyWins},
		{"large file", ledgerLarge},
		{"rollback", ledgerRollback},
		{"loaded", ledgerLoaded},
		{"race", ledgerRace},
		{"fail then succeed", ledgerFailThenSucceed},
		{"rejects", ledgerRejects},
		{"finish run", ledgerFinishRun},
		{"empty file", ledgerEmptyFile},
		{"time zones", ledgerTimeZones},
		{"typed values", ledgerTypedValues},
		{"group", ledgerGroup},
		{"group takes over a failed file", ledgerGroupTakeover},
		{"a bad file fails the group", ledgerGroupRefused},
		{"group of many files", ledgerGroupMany},
		{"group of two file types", ledgerGroupTypes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newFixture(t, open)) })
	}
}

// Tables are the suite's file types. Orders are keyed by id and have a
// time; invoices have neither, so their _key is the unique index;
// readings have a column of every type and a key of two.
var Tables = []plugins.Table{
	{Name: "orders", FileType: testFileType, HasTime: true, Key: []int{0}, Columns: []plugins.Column{
		{Name: "id", Property: "id", Type: plugins.ColText}, {Name: "body", Property: "body", Type: plugins.ColJSON}}},
	{Name: "invoices", FileType: "invoice", Columns: []plugins.Column{
		{Name: "id", Property: "id", Type: plugins.ColText}, {Name: "body", Property: "body", Type: plugins.ColJSON}}},
	{Name: "readings", FileType: "reading", HasTime: true, Key: []int{0, 1}, Columns: []plugins.Column{
		{Name: "sensor", Property: "sensor", Type: plugins.ColText},
		{Name: "at", Property: "at", Type: plugins.ColTimestamp},
		{Name: "n", Property: "n", Type: plugins.ColInteger},
		{Name: "x", Property: "x", Type: plugins.ColNumber},
		{Name: "ok", Property: "ok", Type: plugins.ColBoolean},
		{Name: "doc", Property: "doc", Type: plugins.ColJSON}}},
}

func table(fileType string) plugins.Table {
	for _, t := range Tables {
		if t.FileType == fileType {
			return t
		}
	}
	panic("plugintest: no table for " + fileType)
}

// fixture is one fresh, migrated ledger with a started run.
type fixture struct {
	l   plugins.Ledger
	db  *sql.DB
	pg  bool
	run int64
	ctx context.Context
}

func newFixture(t *testing.T, open Open) *fixture {
	t.Helper()
	l, db := open(t, Tables)
	_, pg := db.Driver().(*pq.Driver)
	f := &fixture{l: l, db: db, pg: pg, ctx: t.Context()}
	if err := l.Migrate(f.ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	run, err := l.StartRun(f.ctx, "conformance", "")
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	if run <= 0 {
		t.Fatalf("StartRun returned run id %d, want a positive id", run)
	}
	f.run = run
	return f
}

const (
	testInput    = "inbox"
	testFileType = "order"
)

// file describes a file of the test input; variant changes its sha256.
func (f *fixture) file(path, variant string) plugins.FileInfo {
	ft := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	return plugins.FileInfo{
		Run: f.run, Input: testInput, Path: path, FileType: testFileType,
		Size: int64(100 + len(path)), SHA256: digest(path + "\x00" + variant), Time: &ft,
	}
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// at parses an RFC 3339 time, keeping its zone.
func at(s string) *time.Time {
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &ts
}

// rec is a record of an order or an invoice: its key is its id, and its
// payload its body.
func rec(i int, key, payload string, et *time.Time) plugins.Record {
	return plugins.Record{Index: i, Key: key, EventTime: et, Payload: json.RawMessage(payload),
		Values: []plugins.Value{{Text: key, Valid: true}, {Text: payload, Valid: true}}}
}

// q turns ? placeholders into Postgres's $n.
func (f *fixture) q(query string) string {
	if !f.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (f *fixture) count(t *testing.T, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := f.db.QueryRowContext(f.ctx, f.q(query), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// within runs fn and fails the test when it does not return in time.
func within[T any](t *testing.T, what string, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v
	case <-time.After(hang):
		t.Fatalf("%s did not return within %v: a lock is held", what, hang)
		panic("unreachable")
	}
}

// one is the transaction of a group of one file, which most cases load.
type one struct{ tx plugins.GroupTx }

func (o one) Add(ctx context.Context, b plugins.Batch) error { return o.tx.Add(ctx, 0, b) }
func (o one) Rollback() error                                { return o.tx.Rollback() }

// Commit returns the file's counts, FileID included, or its error.
func (o one) Commit(ctx context.Context) (plugins.Counts, error) {
	out, err := o.tx.Commit(ctx)
	if err != nil {
		return plugins.Counts{}, err
	}
	if len(out) != 1 {
		return plugins.Counts{}, fmt.Errorf("Commit of one file returned %d outcomes", len(out))
	}
	return out[0].Counts, out[0].Err
}

type began struct {
	tx  one
	err error
}

// start loads info as a group of one. A file Loaded reports is committed
// at once, which must end the transaction, and its ErrLoaded returned.
func (f *fixture) start(info plugins.FileInfo) (one, error) {
	tx, err := f.l.Load(f.ctx, []plugins.FileInfo{info})
	if err != nil {
		return one{}, err
	}
	o := one{tx}
	if tx.Loaded(0) {
		c, err := o.Commit(f.ctx)
		if err == nil {
			err = fmt.Errorf("Loaded(0) was true, yet Commit returned no error (counts %+v)", c)
		}
		return one{}, err
	}
	return o, nil
}

func (f *fixture) begin(t *testing.T, info plugins.FileInfo) (one, error) {
	t.Helper()
	r := within(t, "Load("+info.Path+")", func() began {
		tx, err := f.start(info)
		return began{tx, err}
	})
	if r.err != nil && r.tx.tx != nil {
		t.Errorf("Load(%s) returned both a transaction and error %v", info.Path, r.err)
	}
	return r.tx, r.err
}

func (f *fixture) mustBegin(t *testing.T, info plugins.FileInfo) one {
	t.Helper()
	tx, err := f.begin(t, info)
	if err != nil {
		t.Fatalf("Load(%s): %v", info.Path, err)
	}
	t.Cleanup(func() { tx.Rollback() }) // a failing test must not keep the file's lock
	return tx
}

// outcome is what loading one file did; stage names the call that failed.
// The counts leave FileID, the ledger row, to id.
type outcome struct {
	counts plugins.Counts
	id     int64
	stage  string
	err    error
}

// loadFile runs Load, Add for each batch, Commit; it rolls back on error.
func (f *fixture) loadFile(info plugins.FileInfo, batches ...plugins.Batch) outcome {
	tx, err := f.start(info)
	if err != nil {
		return outcome{stage: "Load", err: err}
	}
	return f.finish(tx, batches...)
}

func (f *fixture) finish(tx one, batches ...plugins.Batch) outcome {
	for _, b := range batches {
		if err := tx.Add(f.ctx, b); err != nil {
			tx.Rollback()
			return outcome{stage: "Add", err: err}
		}
	}
	c, err := tx.Commit(f.ctx)
	if err != nil {
		tx.Rollback()
		return outcome{stage: "Commit", err: err}
	}
	id := c.FileID
	c.FileID = 0
	return outcome{counts: c, id: id}
}

func (f *fixture) load(t *testing.T, info plugins.FileInfo, batches ...plugins.Batch) outcome {
	t.Helper()
	return within(t, "loading "+info.Path, func() outcome { return f.loadFile(info, batches...) })
}

// mustLoad loads a file and checks its counts.
func (f *fixture) mustLoad(t *testing.T, info plugins.FileInfo, want plugins.Counts, batches ...plugins.Batch) {
	t.Helper()
	o := f.load(t, info, batches...)
	if o.err != nil {
		t.Fatalf("loading %s: %s: %v", info.Path, o.stage, o.err)
	}
	if o.counts != want {
		t.Fatalf("loading %s: counts %+v, want %+v", info.Path, o.counts, want)
	}
	if id := f.fileRow(t, info).ID; o.id != id {
		t.Fatalf("loading %s: Counts.FileID %d, but its ledger row is %d", info.Path, o.id, id)
	}
}

// loadAsync loads a file in a goroutine once start is closed (nil: now).
func (f *fixture) loadAsync(start <-chan struct{}, info plugins.FileInfo, batches ...plugins.Batch) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		if start != nil {
			<-start
		}
		ch <- f.loadFile(info, batches...)
	}()
	return ch
}

func await(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(hang):
		t.Fatalf("a concurrent load did not finish within %v: deadlock", hang)
		panic("unreachable")
	}
}

// awaitBlocked waits until a Postgres session waits on a lock, proving that
// the concurrent load is stuck behind the open one. SQLite's writers queue on
// a mutex in the process, which no query can see; the outcome must be the
// same whether or not the second Load was already waiting.
func (f *fixture) awaitBlocked(t *testing.T, ch <-chan outcome) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for {
		select {
		case o := <-ch:
			t.Fatalf("a second load of the file returned (stage %q, counts %+v, err %v) while the first still held it", o.stage, o.counts, o.err)
		default:
		}
		if !f.pg {
			return
		}
		if f.count(t, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second load never waited on a lock within %v", hang)
		}
	}
}

// row is one stored record.
type row struct {
	FileID    int64
	Key       string
	Payload   string
	EventTime *time.Time
}

// records reads the stored orders or invoices, by key.
func (f *fixture) records(t *testing.T, fileType string) map[string]row {
	t.Helper()
	tb := table(fileType)
	et := "NULL"
	if tb.HasTime {
		et = "_event_time"
	}
	rows, err := f.db.QueryContext(f.ctx, "SELECT _file_id, id, body, "+et+" FROM "+tb.Name)
	if err != nil {
		t.Fatalf("reading %s: %v", tb.Name, err)
	}
	defer rows.Close()
	out := map[string]row{}
	for rows.Next() {
		var r row
		var payload []byte
		var ts any
		if err := rows.Scan(&r.FileID, &r.Key, &payload, &ts); err != nil {
			t.Fatalf("reading %s: %v", tb.Name, err)
		}
		r.Payload = string(payload)
		r.EventTime = timeOf(t, ts)
		if _, dup := out[r.Key]; dup {
			t.Errorf("record key %q of type %s is stored twice", r.Key, fileType)
		}
		out[r.Key] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading %s: %v", tb.Name, err)
	}
	return out
}

// timeOf reads a timestamp column: a time from PostgreSQL, the text of a
// ColTimestamp value from SQLite.
func timeOf(t *testing.T, v any) *time.Time {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case time.Time:
		return &v
	case []byte:
		return timeOf(t, string(v))
	case string:
		ts, err := time.Parse("2006-01-02T15:04:05.000000Z", v)
		if err != nil {
			t.Fatalf("a stored time %q is not spelled 2006-01-02T15:04:05.000000Z: %v", v, err)
		}
		return &ts
	}
	t.Fatalf("a stored time of type %T", v)
	return nil
}

// checkRecords compares the stored records of a file type with want, exactly.
func (f *fixture) checkRecords(t *testing.T, fileType string, want []row) {
	t.Helper()
	got := f.records(t, fileType)
	if len(got) != len(want) {
		t.Errorf("%d %s records stored, want %d", len(got), fileType, len(want))
	}
	bad := 0
	for _, w := range want {
		g, ok := got[w.Key]
		switch {
		case !ok:
			t.Errorf("record %q: not stored", w.Key)
		case g.FileID != w.FileID:
			t.Errorf("record %q: file_id %d, want %d", w.Key, g.FileID, w.FileID)
		case !jsonEqual(g.Payload, w.Payload):
			t.Errorf("record %q: payload %s, want %s", w.Key, g.Payload, w.Payload)
		case !sameInstant(g.EventTime, w.EventTime):
			t.Errorf("record %q: event_time %s, want %s", w.Key, fmtTime(g.EventTime), fmtTime(w.EventTime))
		default:
			continue
		}
		if bad++; bad == 10 {
			t.Fatalf("stopping after %d bad records", bad)
		}
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// sameInstant compares at microsecond precision, what both databases keep.
func sameInstant(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func fmtTime(ts *time.Time) string {
	if ts == nil {
		return "NULL"
	}
	return ts.Format(time.RFC3339Nano)
}

// fileRow is one ledger row.
type fileRow struct {
	ID, Run                             int64
	FileType, Status, Error             string
	Size                                int64
	Total, Inserted, Duplicate, Rejects int64
	FileTime                            *time.Time
}

func (f *fixture) fileRows(t *testing.T, info plugins.FileInfo) []fileRow {
	t.Helper()
	rows, err := f.db.QueryContext(f.ctx, f.q(`SELECT id, run_id, file_type, status, error, size,
		records_total, records_inserted, records_duplicate, records_rejected, file_time
		FROM files WHERE input = ? AND path = ? AND sha256 = ? ORDER BY id`), info.Input, info.Path, info.SHA256)
	if err != nil {
		t.Fatalf("reading files: %v", err)
	}
	defer rows.Close()
	var out []fileRow
	for rows.Next() {
		var r fileRow
		var msg sql.NullString
		var ft sql.NullTime
		if err := rows.Scan(&r.ID, &r.Run, &r.FileType, &r.Status, &msg, &r.Size,
			&r.Total, &r.Inserted, &r.Duplicate, &r.Rejects, &ft); err != nil {
			t.Fatalf("reading files: %v", err)
		}
		r.Error = msg.String
		if ft.Valid {
			r.FileTime = &ft.Time
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading files: %v", err)
	}
	return out
}

// fileRow returns the one ledger row of info.
func (f *fixture) fileRow(t *testing.T, info plugins.FileInfo) fileRow {
	t.Helper()
	rs := f.fileRows(t, info)
	if len(rs) != 1 {
		t.Fatalf("%d files rows for %s, want 1", len(rs), info.Path)
	}
	return rs[0]
}

// checkProcessed checks the ledger row of a committed file.
func (f *fixture) checkProcessed(t *testing.T, info plugins.FileInfo, total int64, c plugins.Counts) fileRow {
	t.Helper()
	r := f.fileRow(t, info)
	got := [4]int64{r.Total, r.Inserted, r.Duplicate, r.Rejects}
	want := [4]int64{total, c.Inserted, c.Duplicate, c.Rejected}
	if r.Status != plugins.StatusProcessed || r.Error != "" || got != want {
		t.Errorf("files row of %s: status %q error %q total/inserted/duplicate/rejected %v; want %q, \"\", %v",
			info.Path, r.Status, r.Error, got, plugins.StatusProcessed, want)
	}
	if r.Run != info.Run || r.FileType != info.FileType || r.Size != info.Size || !sameInstant(r.FileTime, info.Time) {
		t.Errorf("files row of %s: run %d type %q size %d file_time %s; want %d, %q, %d, %s",
			info.Path, r.Run, r.FileType, r.Size, fmtTime(r.FileTime), info.Run, info.FileType, info.Size, fmtTime(info.Time))
	}
	if s := f.lookup(t, info); s != plugins.StatusProcessed {
		t.Errorf("Lookup(%s) = %q, want %q", info.Path, s, plugins.StatusProcessed)
	}
	return r
}

func (f *fixture) lookup(t *testing.T, info plugins.FileInfo) string {
	t.Helper()
	s, err := f.l.Lookup(f.ctx, info.Input, info.Path, info.SHA256)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", info.Path, err)
	}
	return s
}

func ledgerMigrateTwice(t *testing.T, f *fixture) {
	if err := f.l.Migrate(f.ctx); err != nil {
		t.Fatalf("a second Migrate: %v", err)
	}
	// Only StartRun's row: a second Migrate neither fails nor resets data.
	for table, want := range map[string]int64{"runs": 1, "files": 0, "orders": 0, "rejects": 0} {
		if n := f.count(t, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("table %s has %d rows after Migrate, StartRun and Migrate; want %d", table, n, want)
		}
	}
}

func ledgerCommit(t *testing.T, f *fixture) {
	info := f.file("2024/05/orders.json", "")
	b1 := plugins.Batch{Records: []plugins.Record{
		rec(0, "A-1", `{"id":"A-1","amount":12.5,"tags":["x","y"]}`, at("2024-05-06T07:08:09.123456Z")),
		rec(1, "A-2", `{"id":"A-2","note":"no event time"}`, nil),
		rec(2, "A-3", `{"id":"A-3","at":"µs"}`, at("2024-05-06T07:08:09.000001Z")),
	}}
	b3 := plugins.Batch{Records: []plugins.Record{
		rec(3, "A-4", `{"id":"A-4","nested":{"q":"say \"hi\"","ü":"✓","n":null,"t":true}}`, at("1999-12-31T23:59:59.999999Z")),
		rec(4, "A 5/ü", `{"id":"A 5","big":1234567890123,"neg":-0.25}`, nil),
	}}
	tx := f.mustBegin(t, info)
	for i, b := range []plugins.Batch{b1, {}, b3} {
		if err := tx.Add(f.ctx, b); err != nil {
			t.Fatalf("Add batch %d: %v", i, err)
		}
	}
	c, err := tx.Commit(f.ctx)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	id := c.FileID
	c.FileID = 0
	want := plugins.Counts{Inserted: 5}
	if c != want {
		t.Fatalf("Commit counts %+v, want %+v", c, want)
	}
	// Rollback after Commit is what a caller's defer does: it must not undo.
	if err := tx.Rollback(); err != nil {
		t.Errorf("Rollback after Commit: %v", err)
	}
	r := f.checkProcessed(t, info, 5, want)
	if id != r.ID {
		t.Errorf("Commit's Counts.FileID is %d; the ledger row is %d", id, r.ID)
	}
	var rows []row
	for _, b := range []plugins.Batch{b1, b3} {
		for _, x := range b.Records {
			rows = append(rows, row{FileID: r.ID, Key: x.Key, Payload: string(x.Payload), EventTime: x.EventTime})
		}
	}
	f.checkRecords(t, testFileType, rows)
}

func ledgerDuplicates(t *testing.T, f *fixture) {
	one := f.file("dups/one.json", "")
	f.mustLoad(t, one, plugins.Counts{Inserted: 3, Duplicate: 2},
		plugins.Batch{Records: []plugins.Record{
			rec(0, "a", `{"k":"a","v":1}`, at("2024-01-01T00:00:00Z")),
			rec(1, "b", `{"k":"b","v":1}`, nil),
			rec(2, "a", `{"k":"a","v":1}`, at("2024-01-01T00:00:00Z")), // same batch
		}},
		plugins.Batch{Records: []plugins.Record{
			rec(3, "c", `{"k":"c","v":1}`, nil),
			rec(4, "b", `{"k":"b","v":1}`, nil), // earlier batch
		}},
	)
	idOne := f.fileRow(t, one).ID
	f.checkProcessed(t, one, 5, plugins.Counts{Inserted: 3, Duplicate: 2})

	// A key stored by an earlier file stays as that file stored it.
	two := f.file("dups/two.json", "")
	f.mustLoad(t, two, plugins.Counts{Inserted: 1, Duplicate: 1},
		plugins.Batch{Records: []plugins.Record{
			rec(0, "a", `{"k":"a","v":2}`, at("2025-01-01T00:00:00Z")),
			rec(1, "d", `{"k":"d","v":2}`, nil),
		}},
	)
	idTwo := f.checkProcessed(t, two, 2, plugins.Counts{Inserted: 1, Duplicate: 1}).ID

	// Keys are unique per file type only.
	other := f.file("dups/other.json", "")
	other.FileType = "invoice"
	f.mustLoad(t, other, plugins.Counts{Inserted: 1},
		plugins.Batch{Records: []plugins.Record{rec(0, "a", `{"invoice":"a"}`, nil)}})
	idOther := f.fileRow(t, other).ID

	f.checkRecords(t, testFileType, []row{
		{idOne, "a", `{"k":"a","v":1}`, at("2024-01-01T00:00:00Z")},
		{idOne, "b", `{"k":"b","v":1}`, nil},
		{idOne, "c", `{"k":"c","v":1}`, nil},
		{idTwo, "d", `{"k":"d","v":2}`, nil},
	})
	f.checkRecords(t, "invoice", []row{{idOther, "a", `{"invoice":"a"}`, nil}})

	// The unique index itself refuses a second row for a stored key: the
	// key's columns, or _key when the type declares none.
	for _, q := range []string{"INSERT INTO orders (_file_id, _index, id, body) VALUES (?, 9, ?, '{}')",
		"INSERT INTO invoices (_file_id, _index, _key, id, body) VALUES (?, 9, ?, 'x', '{}')"} {
		tx, err := f.db.BeginTx(f.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(f.ctx, f.q(q), idOne, "fresh"); err != nil {
			t.Fatalf("%s, a fresh key by hand: %v", q, err)
		}
		if _, err := tx.ExecContext(f.ctx, f.q(q), idOne, "a"); err == nil {
			t.Errorf("%s: the database accepted a second record with key a: no unique index on the key", q)
		}
		tx.Rollback()
	}
}

// ledgerFirstCopyWins: of records sharing a key within one file, the first
// is stored and the later ones are the duplicates, whatever the file's size.
func ledgerFirstCopyWins(t *testing.T, f *fixture) {
	for _, n := range []int{300, 1200} {
		info := f.file(fmt.Sprintf("copies/%d.json", n), "")
		var b plugins.Batch
		for i := range n {
			et := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
			b.Records = append(b.Records, rec(i, fmt.Sprintf("c%d-%04d", n, i%(n/2)), fmt.Sprintf(`{"i":%d}`, i), &et))
		}
		f.mustLoad(t, info, plugins.Counts{Inserted: int64(n / 2), Duplicate: int64(n / 2)}, b)
		got := f.records(t, testFileType)
		later, example := 0, ""
		for _, r := range b.Records[:n/2] {
			g := got[r.Key]
			if !jsonEqual(g.Payload, string(r.Payload)) || !sameInstant(g.EventTime, r.EventTime) {
				if later++; later == 1 {
					example = fmt.Sprintf("key %s stored %s, the first occurrence is %s", r.Key, g.Payload, r.Payload)
				}
			}
		}
		if later > 0 {
			t.Errorf("%d records: for %d of %d keys that appear twice in the file, the stored row is a later occurrence (e.g. %s); which copy survives must not be arbitrary",
				n, later, n/2, example)
		}
	}
}

// ledgerLarge crosses the sizes where loaders change strategy (Postgres
// switches from one INSERT to COPY past 1000 records).
func ledgerLarge(t *testing.T, f *fixture) {
	// Keys an earlier file stored: duplicates across files.
	pre := f.file("large/pre.json", "")
	var preRecs []plugins.Record
	want := map[string]row{}
	for i := range 20 {
		k := fmt.Sprintf("k%05d", i*50)
		preRecs = append(preRecs, rec(i, k, fmt.Sprintf(`{"pre":%d}`, i), nil))
	}
	f.mustLoad(t, pre, plugins.Counts{Inserted: 20}, plugins.Batch{Records: preRecs})
	preID := f.fileRow(t, pre).ID
	for _, r := range preRecs {
		want[r.Key] = row{preID, r.Key, string(r.Payload), nil}
	}

	base := time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)
	layouts := []struct {
		name  string
		sizes []int
	}{
		{"1000 in one batch", []int{1000}},
		{"1001 in one batch", []int{1001}},
		{"999+1+1", []int{999, 1, 1}},
		{"2500 in batches of 250", []int{250, 250, 250, 250, 250, 250, 250, 250, 250, 250}},
	}
	for li, lay := range layouts {
		info := f.file(fmt.Sprintf("large/%d.json", li), "")
		var batches []plugins.Batch
		var all []plugins.Record
		idx := 0
		for _, n := range lay.sizes {
			var b plugins.Batch
			for range n {
				// Every 10th record repeats one five back; the rest use fresh
				// keys, some of which pre stored.
				k := fmt.Sprintf("k%05d", (li*3000+idx*7)%(layoutSpan))
				if idx%10 == 9 {
					k = all[idx-5].Key
				}
				var et *time.Time
				if idx%3 != 0 {
					ts := base.Add(time.Duration(idx*7919) * time.Microsecond)
					et = &ts
				}
				payload := fmt.Sprintf(`{"key":%q,"i":%d,"s":"line\nbreak \u00e9"}`, k, idx)
				if idx%10 == 9 {
					payload, et = string(all[idx-5].Payload), all[idx-5].EventTime
				}
				r := rec(idx, k, payload, et)
				b.Records = append(b.Records, r)
				all = append(all, r)
				idx++
			}
			batches = append(batches, b)
		}

		// A rolled-back attempt first: the real load must not see its rows.
		tx := f.mustBegin(t, info)
		for _, b := range batches {
			if err := tx.Add(f.ctx, b); err != nil {
				t.Fatalf("%s: Add: %v", lay.name, err)
			}
		}
		if err := tx.Rollback(); err != nil {
			t.Fatalf("%s: Rollback: %v", lay.name, err)
		}

		// The expected counts come from a plain model: first occurrence wins.
		var c plugins.Counts
		news := map[string]row{}
		for _, r := range all {
			if _, ok := want[r.Key]; ok {
				c.Duplicate++
				continue
			}
			if _, ok := news[r.Key]; ok {
				c.Duplicate++
				continue
			}
			c.Inserted++
			news[r.Key] = row{0, r.Key, string(r.Payload), r.EventTime}
		}
		if c.Duplicate == 0 || c.Inserted <= 0 {
			t.Fatalf("%s: bad test data: %+v", lay.name, c)
		}
		o := f.load(t, info, batches...)
		if o.err != nil {
			t.Fatalf("%s: %s: %v", lay.name, o.stage, o.err)
		}
		if o.counts != c {
			t.Errorf("%s: counts %+v, want %+v", lay.name, o.counts, c)
		}
		id := f.checkProcessed(t, info, int64(len(all)), c).ID
		for k, r := range news {
			r.FileID = id
			want[k] = r
		}
	}
	var rows []row
	for _, r := range want {
		rows = append(rows, r)
	}
	f.checkRecords(t, testFileType, rows)
}

// layoutSpan bounds the keys of the large files, so that they overlap each
// other and the pre-loaded ones.
const layoutSpan = 9000

func ledgerRollback(t *testing.T, f *fixture) {
	info := f.file("rollback.json", "")
	b := plugins.Batch{
		Records: []plugins.Record{rec(0, "r1", `{"r":1}`, nil), rec(2, "r2", `{"r":2}`, at("2024-01-01T00:00:00Z"))},
		Rejects: []plugins.Reject{{Index: 1, Pointer: "/1", Errors: []plugins.FieldError{{Pointer: "", Message: "bad"}}, Payload: []byte(`{"r":`)}},
	}
	tx := f.mustBegin(t, info)
	if err := tx.Add(f.ctx, b); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	for _, table := range []string{"files", "orders", "rejects"} {
		if n := f.count(t, "SELECT count(*) FROM "+table); n != 0 {
			t.Errorf("%d rows in %s after Rollback, want 0", n, table)
		}
	}
	if s := f.lookup(t, info); s != "" {
		t.Errorf("Lookup after Rollback = %q, want \"\"", s)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("a second Rollback: %v", err)
	}

	// The claim is gone: the same file loads in full.
	want := plugins.Counts{Inserted: 2, Rejected: 1}
	f.mustLoad(t, info, want, b)
	id := f.checkProcessed(t, info, 3, want).ID
	f.checkRecords(t, testFileType, []row{{id, "r1", `{"r":1}`, nil}, {id, "r2", `{"r":2}`, at("2024-01-01T00:00:00Z")}})
}

func ledgerLoaded(t *testing.T, f *fixture) {
	info := f.file("loaded.json", "v1")
	if s := f.lookup(t, info); s != "" {
		t.Fatalf("Lookup of an unknown file = %q, want \"\"", s)
	}
	b := plugins.Batch{Records: []plugins.Record{rec(0, "x", `{"x":1}`, nil)}}
	f.mustLoad(t, info, plugins.Counts{Inserted: 1}, b)
	f.checkProcessed(t, info, 1, plugins.Counts{Inserted: 1})

	// Twice: a file Loaded reports must release whatever it took. Its
	// outcome names the row that loaded it, where its move is recorded.
	id := f.fileRow(t, info).ID
	for i := range 2 {
		tx := within(t, "Load of a loaded file", func() plugins.GroupTx {
			tx, err := f.l.Load(f.ctx, []plugins.FileInfo{info})
			if err != nil {
				t.Fatalf("Load #%d of a loaded file: %v", i+1, err)
			}
			return tx
		})
		if !tx.Loaded(0) {
			tx.Rollback()
			t.Fatalf("Load #%d of a loaded file: Loaded(0) is false", i+1)
		}
		out, err := tx.Commit(f.ctx)
		if err != nil || len(out) != 1 || !errors.Is(out[0].Err, plugins.ErrLoaded) || out[0].Counts != (plugins.Counts{FileID: id}) {
			t.Fatalf("Commit #%d of a loaded file: %+v, %v; want ErrLoaded with FileID %d", i+1, out, err, id)
		}
		if errors.Is(out[0].Err, plugins.ErrFatal) {
			t.Errorf("a loaded file: %v is fatal; it must only skip the file", out[0].Err)
		}
	}

	// The same path with new content is a new file.
	changed := f.file("loaded.json", "v2")
	if s := f.lookup(t, changed); s != "" {
		t.Errorf("Lookup of the changed file = %q, want \"\"", s)
	}
	f.mustLoad(t, changed, plugins.Counts{Inserted: 1, Duplicate: 1},
		plugins.Batch{Records: []plugins.Record{rec(0, "x", `{"x":2}`, nil), rec(1, "y", `{"y":2}`, nil)}})
	f.checkProcessed(t, changed, 2, plugins.Counts{Inserted: 1, Duplicate: 1})

	// So is the same content under another input.
	elsewhere := info
	elsewhere.Input = "other"
	f.mustLoad(t, elsewhere, plugins.Counts{Duplicate: 1}, b)
	if n := f.count(t, "SELECT count(*) FROM files WHERE path = ?", info.Path); n != 3 {
		t.Errorf("%d files rows for %s, want 3 (v1, v2, other input)", n, info.Path)
	}
	f.checkProcessed(t, info, 1, plugins.Counts{Inserted: 1})
}

func ledgerRace(t *testing.T, f *fixture) {
	batch := func(prefix string) plugins.Batch {
		var b plugins.Batch
		for i := range 5 {
			b.Records = append(b.Records, rec(i, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf(`{"i":%d}`, i), nil))
		}
		return b
	}
	// checkOnce checks that the file landed once, with all its records.
	checkOnce := func(t *testing.T, info plugins.FileInfo, prefix string) {
		t.Helper()
		id := f.checkProcessed(t, info, 5, plugins.Counts{Inserted: 5}).ID
		if n := f.count(t, "SELECT count(*) FROM orders WHERE _file_id = ? AND id LIKE ?", id, prefix+"-%"); n != 5 {
			t.Errorf("%d records of %s stored under the winner's file id, want 5", n, info.Path)
		}
		if n := f.count(t, "SELECT count(*) FROM orders WHERE id LIKE ?", prefix+"-%"); n != 5 {
			t.Errorf("%d records of %s stored, want 5", n, info.Path)
		}
	}
	loser := func(t *testing.T, o outcome) {
		t.Helper()
		if !errors.Is(o.err, plugins.ErrLoaded) || (o.stage != "Load" && o.stage != "Commit") {
			t.Errorf("the losing load: %s: %v (counts %+v); want ErrLoaded from Load or Commit", o.stage, o.err, o.counts)
		}
	}

	t.Run("together", func(t *testing.T) {
		for round := range 4 {
			prefix := fmt.Sprintf("together%d", round)
			info := f.file(prefix+".json", "")
			start := make(chan struct{})
			a := f.loadAsync(start, info, batch(prefix))
			b := f.loadAsync(start, info, batch(prefix))
			close(start)
			oa, ob := await(t, a), await(t, b)
			if ob.err == nil {
				oa, ob = ob, oa
			}
			if oa.err != nil {
				t.Fatalf("round %d: neither load committed: %s: %v; %s: %v", round, oa.stage, oa.err, ob.stage, ob.err)
			}
			if oa.counts != (plugins.Counts{Inserted: 5}) {
				t.Errorf("round %d: the winner's counts %+v, want 5 inserted", round, oa.counts)
			}
			loser(t, ob)
			checkOnce(t, info, prefix)
		}
	})

	// held: the second Load starts while the first holds the file.
	held := func(t *testing.T, prefix string, before func(plugins.FileInfo), end func(one) outcome) (plugins.FileInfo, outcome, outcome) {
		info := f.file(prefix+".json", "")
		before(info)
		tx := f.mustBegin(t, info)
		if err := tx.Add(f.ctx, batch(prefix)); err != nil {
			t.Fatalf("Add: %v", err)
		}
		second := f.loadAsync(nil, info, batch(prefix))
		f.awaitBlocked(t, second)
		first := within(t, "finishing the first load", func() outcome { return end(tx) })
		return info, first, await(t, second)
	}
	nothing := func(plugins.FileInfo) {}
	commit := func(tx one) outcome { return f.finish(tx) }
	rollback := func(tx one) outcome { return outcome{stage: "Rollback", err: tx.Rollback()} }

	t.Run("first commits", func(t *testing.T) {
		info, first, second := held(t, "commits", nothing, commit)
		if first.err != nil || first.counts != (plugins.Counts{Inserted: 5}) {
			t.Fatalf("first load: %s: %v, counts %+v; want 5 inserted", first.stage, first.err, first.counts)
		}
		loser(t, second)
		checkOnce(t, info, "commits")
	})
	t.Run("first rolls back", func(t *testing.T) {
		info, first, second := held(t, "rolls", nothing, rollback)
		if first.err != nil {
			t.Fatalf("Rollback: %v", first.err)
		}
		if second.err != nil || second.counts != (plugins.Counts{Inserted: 5}) {
			t.Fatalf("the waiting load after the first rolled back: %s: %v, counts %+v; want 5 inserted", second.stage, second.err, second.counts)
		}
		checkOnce(t, info, "rolls")
	})
	t.Run("both take over a failed file", func(t *testing.T) {
		fail := func(info plugins.FileInfo) {
			if _, err := f.l.Fail(f.ctx, info, "earlier failure"); err != nil {
				t.Fatalf("Fail: %v", err)
			}
		}
		info, first, second := held(t, "takeover", fail, commit)
		if first.err != nil || first.counts != (plugins.Counts{Inserted: 5}) {
			t.Fatalf("first load: %s: %v, counts %+v; want 5 inserted", first.stage, first.err, first.counts)
		}
		loser(t, second)
		checkOnce(t, info, "takeover")
	})
}

func ledgerFailThenSucceed(t *testing.T, f *fixture) {
	info := f.file("fails.json", "")
	failedID, err := f.l.Fail(f.ctx, info, "line 3: unexpected '}'")
	if err != nil {
		t.Fatalf("Fail: %v", err)
	}
	if s := f.lookup(t, info); s != plugins.StatusFailed {
		t.Errorf("Lookup after Fail = %q, want %q", s, plugins.StatusFailed)
	}
	r := f.fileRow(t, info)
	if r.Status != plugins.StatusFailed || r.Error != "line 3: unexpected '}'" || r.Run != f.run || r.ID != failedID {
		t.Errorf("files row after Fail: id %d status %q error %q run %d; want %d (what Fail returned), failed, the reason, run %d",
			r.ID, r.Status, r.Error, r.Run, failedID, f.run)
	}

	// A later run fails it again: the row is updated, not duplicated.
	run2, err := f.l.StartRun(f.ctx, "conformance", "")
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	info.Run = run2
	if id, err := f.l.Fail(f.ctx, info, "second reason"); err != nil || id != r.ID {
		t.Fatalf("second Fail: %d, %v; want the row %d", id, err, r.ID)
	}
	r2 := f.fileRow(t, info)
	if r2.ID != r.ID || r2.Status != plugins.StatusFailed || r2.Error != "second reason" || r2.Run != run2 {
		t.Errorf("files row after a second Fail: id %d status %q error %q run %d; want id %d, failed, \"second reason\", run %d",
			r2.ID, r2.Status, r2.Error, r2.Run, r.ID, run2)
	}

	// Loading it takes the failed row over.
	want := plugins.Counts{Inserted: 2}
	f.mustLoad(t, info, want, plugins.Batch{Records: []plugins.Record{rec(0, "f1", `{"f":1}`, nil), rec(1, "f2", `{"f":2}`, nil)}})
	r3 := f.checkProcessed(t, info, 2, want)
	if r3.ID != r.ID {
		t.Errorf("the load created files row %d instead of taking over row %d", r3.ID, r.ID)
	}
	f.checkRecords(t, testFileType, []row{{r.ID, "f1", `{"f":1}`, nil}, {r.ID, "f2", `{"f":2}`, nil}})

	// A late failure report never downgrades a loaded file; it names the
	// loaded row.
	if id, err := f.l.Fail(f.ctx, info, "late"); err != nil || id != r.ID {
		t.Fatalf("Fail of a loaded file: %d, %v; want row %d", id, err, r.ID)
	}
	f.checkProcessed(t, info, 2, want)
}

func ledgerRejects(t *testing.T, f *fixture) {
	info := f.file("rejects.json", "")
	rejects := []plugins.Reject{
		{Index: 1, Pointer: "/1", Errors: []plugins.FieldError{
			{Pointer: "/amount", Message: "must be a number"},
			{Pointer: "", Message: `missing property "id"`},
		}, Payload: []byte(`{"amount": "x"}`)},
		{Index: 3, Pointer: "/3", Errors: []plugins.FieldError{{Pointer: "/when", Message: "not a date: ünï ✓"}},
			Payload: []byte("{\"id\": 4,\n\t\"when\": \"never\"")},
	}
	want := plugins.Counts{Inserted: 2, Rejected: 2}
	f.mustLoad(t, info, want,
		plugins.Batch{Records: []plugins.Record{rec(0, "ok0", `{"id":0}`, nil), rec(2, "ok2", `{"id":2}`, nil)}, Rejects: rejects[:1]},
		plugins.Batch{Rejects: rejects[1:]},
	)
	id := f.checkProcessed(t, info, 4, want).ID
	rows, err := f.db.QueryContext(f.ctx, f.q("SELECT file_id, record_index, errors, payload FROM rejects ORDER BY record_index"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for ; rows.Next(); n++ {
		var fileID, index int64
		var errs []byte
		var payload string
		if err := rows.Scan(&fileID, &index, &errs, &payload); err != nil {
			t.Fatal(err)
		}
		if n >= len(rejects) {
			continue
		}
		w := rejects[n]
		var got []plugins.FieldError
		if err := json.Unmarshal(errs, &got); err != nil {
			t.Errorf("reject %d: errors %s is not a JSON list of {pointer, message}: %v", n, errs, err)
		}
		if fileID != id || index != int64(w.Index) || payload != string(w.Payload) || !reflect.DeepEqual(got, w.Errors) {
			t.Errorf("reject %d: file %d index %d errors %s payload %q; want file %d, index %d, errors %+v, payload %q",
				n, fileID, index, errs, payload, id, w.Index, w.Errors, w.Payload)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(rejects) {
		t.Errorf("%d rejects rows, want %d", n, len(rejects))
	}
}

func ledgerFinishRun(t *testing.T, f *fixture) {
	other, err := f.l.StartRun(f.ctx, "other", "host/42/0a1b")
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	var holder string
	if err := f.db.QueryRowContext(f.ctx, f.q(`SELECT holder FROM runs WHERE id = ?`), other).Scan(&holder); err != nil || holder != "host/42/0a1b" {
		t.Errorf("the run's holder is %q (%v), want host/42/0a1b", holder, err)
	}
	if other == f.run {
		t.Fatalf("two runs got the same id %d", other)
	}
	finished := time.Date(2024, 6, 1, 10, 20, 30, 654321000, time.UTC)
	sum := plugins.RunSummary{
		ID: f.run, Pipeline: "conformance", Finished: finished, Status: "partial",
		FilesProcessed: 3, FilesFailed: 2, FilesSkipped: 7, FilesUnmatched: 1,
		RecordsInserted: 1234567890123, RecordsDuplicate: 5, RecordsRejected: 6,
	}
	if err := f.l.FinishRun(f.ctx, sum); err != nil {
		t.Fatalf("FinishRun: %v", err)
	}
	type runRow struct {
		Pipeline, Status string
		Started          time.Time
		Finished         sql.NullTime
		N                [7]int64
	}
	read := func(id int64) runRow {
		var r runRow
		err := f.db.QueryRowContext(f.ctx, f.q(`SELECT pipeline, status, started_at, finished_at, files_processed, files_failed,
			files_skipped, files_unmatched, records_inserted, records_duplicate, records_rejected FROM runs WHERE id = ?`), id).
			Scan(&r.Pipeline, &r.Status, &r.Started, &r.Finished, &r.N[0], &r.N[1], &r.N[2], &r.N[3], &r.N[4], &r.N[5], &r.N[6])
		if err != nil {
			t.Fatalf("reading run %d: %v", id, err)
		}
		return r
	}
	got := read(f.run)
	wantN := [7]int64{3, 2, 7, 1, 1234567890123, 5, 6}
	if got.Pipeline != "conformance" || got.Status != "partial" || got.N != wantN ||
		!got.Finished.Valid || !sameInstant(&got.Finished.Time, &finished) {
		t.Errorf("finished run: pipeline %q status %q finished %v numbers %v; want conformance, partial, %s, %v",
			got.Pipeline, got.Status, got.Finished, got.N, finished, wantN)
	}
	if got.Started.IsZero() || got.Started.After(time.Now().Add(time.Minute)) {
		t.Errorf("started_at %s is not the start time", got.Started)
	}
	o := read(other)
	if o.Pipeline != "other" || o.Status != "running" || o.Finished.Valid || o.N != [7]int64{} {
		t.Errorf("the other run was touched: %+v", o)
	}
}

func ledgerEmptyFile(t *testing.T, f *fixture) {
	info := f.file("empty.json", "")
	info.Time = nil
	tx := f.mustBegin(t, info)
	c, err := tx.Commit(f.ctx)
	if err != nil {
		t.Fatalf("Commit of an empty file: %v", err)
	}
	if r := f.checkProcessed(t, info, 0, plugins.Counts{}); c != (plugins.Counts{FileID: r.ID}) {
		t.Errorf("counts of an empty file %+v, want zero and FileID %d", c, r.ID)
	}
	if n := f.count(t, "SELECT count(*) FROM orders"); n != 0 {
		t.Errorf("%d records after an empty file", n)
	}
}

// ledgerTimeZones passes instants in zones other than UTC, as time.Now()
// gives on a machine whose local zone is not UTC: they must come back as
// the same instants, through the ledger's own reads too.
func ledgerTimeZones(t *testing.T, f *fixture) {
	info := f.file("zones.json", "")
	ft := time.Date(2024, 3, 10, 2, 30, 0, 250000000, time.FixedZone("", 5*3600+30*60))
	info.Time = &ft
	recs := []plugins.Record{
		rec(0, "z1", `{"z":1}`, at("2024-05-06T12:38:09.000001+05:30")),
		rec(1, "z2", `{"z":2}`, at("1999-12-31T14:29:59.999999-09:30")),
		rec(2, "z3", `{"z":3}`, at("2024-05-06T07:08:09.5Z")),
	}
	o := f.load(t, info, plugins.Batch{Records: recs})
	if o.err != nil {
		t.Fatalf("loading a file with event times in several zones: %s: %v", o.stage, o.err)
	}
	if s, err := f.l.Lookup(f.ctx, info.Input, info.Path, info.SHA256); err != nil || s != plugins.StatusProcessed {
		t.Errorf("Lookup of a file whose file_time is at +05:30: %q, %v; want %q", s, err, plugins.StatusProcessed)
	}
	if _, err := f.l.Fail(f.ctx, info, "late"); err != nil {
		t.Errorf("Fail of a loaded file whose file_time is at +05:30: %v", err)
	}
	id := f.checkProcessed(t, info, 3, plugins.Counts{Inserted: 3}).ID
	var rows []row
	for _, r := range recs {
		rows = append(rows, row{id, r.Key, string(r.Payload), r.EventTime})
	}
	f.checkRecords(t, testFileType, rows)

	finished := time.Date(2024, 6, 1, 10, 20, 30, 654321000, time.FixedZone("", -(3*3600+30*60)))
	err := f.l.FinishRun(f.ctx, plugins.RunSummary{ID: f.run, Pipeline: "conformance", Finished: finished, Status: "ok", FilesProcessed: 1})
	if err != nil {
		t.Fatalf("FinishRun with a finish time at -03:30: %v", err)
	}
	var got sql.NullTime
	if err := f.db.QueryRowContext(f.ctx, f.q("SELECT finished_at FROM runs WHERE id = ?"), f.run).Scan(&got); err != nil {
		t.Fatalf("reading finished_at: %v", err)
	}
	if !got.Valid || !sameInstant(&got.Time, &finished) {
		t.Errorf("finished_at %v, want %s", got, finished)
	}
}

// ledgerTypedValues stores a value of every column type, absent ones as
// NULL, and the undeclared properties in _extra; each reads back as
// loaded, and times compare as instants.
func ledgerTypedValues(t *testing.T, f *fixture) {
	info := f.file("readings.json", "")
	info.FileType = "reading"
	v := func(s string) plugins.Value { return plugins.Value{Text: s, Valid: true} }
	null := plugins.Value{}
	recs := []plugins.Record{
		{Index: 0, Key: `["s1","2024-01-01T00:00:00.000000Z"]`, EventTime: at("2024-01-01T00:00:00Z"), Extra: []byte(`{"more":[1,"two"]}`),
			Values: []plugins.Value{v("s1"), v("2024-01-01T00:00:00.000000Z"), v("-9223372036854775808"), v("1.5"), v("true"), v(`{"a":[1,2]}`)}},
		{Index: 1, Key: `["s1","2023-12-31T23:59:59.999999Z"]`,
			Values: []plugins.Value{v("s1"), v("2023-12-31T23:59:59.999999Z"), null, null, v("false"), v("null")}},
		// The same key as the first: a duplicate, whatever its values.
		{Index: 2, Key: `["s1","2024-01-01T00:00:00.000000Z"]`,
			Values: []plugins.Value{v("s1"), v("2024-01-01T00:00:00.000000Z"), v("7"), v("2"), v("false"), null}},
	}
	f.mustLoad(t, info, plugins.Counts{Inserted: 2, Duplicate: 1}, plugins.Batch{Records: recs})
	id := f.fileRow(t, info).ID
	rows, err := f.db.QueryContext(f.ctx, `SELECT _file_id, _index, _event_time, _extra, sensor, at, n, x, ok, doc FROM readings ORDER BY at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type reading struct {
		file, index int64
		et, at      *time.Time
		extra, doc  sql.NullString
		sensor      string
		n           sql.NullInt64
		x           sql.NullFloat64
		ok          bool
	}
	var got []reading
	for rows.Next() {
		var r reading
		var et, ts any
		if err := rows.Scan(&r.file, &r.index, &et, &r.extra, &r.sensor, &ts, &r.n, &r.x, &r.ok, &r.doc); err != nil {
			t.Fatal(err)
		}
		r.et, r.at = timeOf(t, et), timeOf(t, ts)
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d readings stored, want 2", len(got))
	}
	older, newer := got[0], got[1]
	if older.file != id || older.index != 1 || older.et != nil || older.extra.Valid || older.sensor != "s1" ||
		!sameInstant(older.at, at("2023-12-31T23:59:59.999999Z")) || older.n.Valid || older.x.Valid || older.ok || !jsonEqual(older.doc.String, "null") {
		t.Errorf("record 1 reads back as %+v", older)
	}
	if newer.file != id || newer.index != 0 || !sameInstant(newer.et, at("2024-01-01T00:00:00Z")) || !jsonEqual(newer.extra.String, `{"more":[1,"two"]}`) ||
		!sameInstant(newer.at, at("2024-01-01T00:00:00Z")) || newer.n.Int64 != -9223372036854775808 || newer.x.Float64 != 1.5 || !newer.ok ||
		!jsonEqual(newer.doc.String, `{"a":[1,2]}`) {
		t.Errorf("record 0 reads back as %+v; the first copy of its key must win", newer)
	}
	// Times compare as instants, in SQL.
	if n := f.count(t, "SELECT count(*) FROM readings WHERE at > (SELECT min(at) FROM readings)"); n != 1 {
		t.Errorf("%d readings after the earliest, want 1: stored times do not sort", n)
	}
}
