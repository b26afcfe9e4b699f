package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// second opens another output on p's database: another process, which has
// sent none of p's keys.
func second(t *testing.T, p *Postgres) *Postgres {
	t.Helper()
	q := &Postgres{DSN: p.DSN, ConnectTimeout: 5 * time.Second}
	if err := q.Init(t.Context(), env); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// sqlTypes are the column types of a typed table, as the DDL package
// makes them.
var sqlTypes = map[string]string{
	plugins.ColText: "text", plugins.ColTimestamp: "timestamptz", plugins.ColInteger: "bigint",
	plugins.ColNumber: "numeric", plugins.ColBoolean: "boolean", plugins.ColJSON: "jsonb",
}

// createTable makes tb's table on db, and a minimal ledger for its
// _file_id to reference (with fk).
func createTable(t testing.TB, db *sql.DB, tb plugins.Table, fk bool) {
	t.Helper()
	ref := ""
	if fk {
		ref = " REFERENCES files (id)"
	}
	cols := []string{"_file_id bigint NOT NULL" + ref, "_index bigint NOT NULL"}
	if tb.HasTime {
		cols = append(cols, "_event_time timestamptz")
	}
	cols = append(cols, "_extra jsonb")
	if len(tb.Key) == 0 {
		cols = append(cols, "_key text NOT NULL")
	}
	var key []string
	for _, c := range tb.Columns {
		cols = append(cols, pq.QuoteIdentifier(c.Name)+" "+sqlTypes[c.Type])
	}
	for _, k := range tb.Key {
		key = append(key, pq.QuoteIdentifier(tb.Columns[k].Name))
	}
	if len(key) == 0 {
		key = []string{"_key"}
	}
	name := pq.QuoteIdentifier(tb.Name)
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS files (id bigserial PRIMARY KEY)",
		"CREATE TABLE " + name + " (" + strings.Join(cols, ", ") + ")",
		"CREATE UNIQUE INDEX " + pq.QuoteIdentifier(tb.Name+"_key") + " ON " + name + " (" + strings.Join(key, ", ") + ")",
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// kv is a table whose records say which file they came from (tag).
var kv = plugins.Table{Name: "kv", FileType: "kv", Key: []int{0}, Columns: []plugins.Column{
	{Name: "k", Property: "k", Type: plugins.ColText},
	{Name: "tag", Property: "tag", Type: plugins.ColText},
}}

// records are n records of kv with keys prefix-from … and tag.
func records(prefix string, from, n int, tag string) []plugins.Record {
	out := make([]plugins.Record, n)
	for i := range out {
		k := fmt.Sprintf("%s-%06d", prefix, from+i)
		out[i] = plugins.Record{Index: i, Key: `["` + k + `"]`, Values: []plugins.Value{{Text: k, Valid: true}, {Text: tag, Valid: true}}}
	}
	return out
}

// sends is how a transaction was sent: COPYs, and COPYs merged instead.
type sends struct{ copies, fallbacks int64 }

// loadTx loads files, each its records, into tb in one transaction of p
// (a group), committed or not, and returns the rows inserted per file.
func loadTx(t *testing.T, p *Postgres, tb plugins.Table, commit bool, files ...[]plugins.Record) ([]int64, sends, error) {
	t.Helper()
	ctx := t.Context()
	before := sends{p.copies.Load(), p.fallbacks.Load()}
	conn, err := p.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	l, err := p.newLoader(ctx, conn, tx, tb)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(files))
	for i, recs := range files {
		if err := tx.QueryRowContext(ctx, "INSERT INTO files DEFAULT VALUES RETURNING id").Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo < len(recs); lo += 1000 {
			if err := l.Add(ctx, ids[i], recs[lo:min(lo+1000, len(recs))]); err != nil {
				return nil, sends{}, err
			}
		}
	}
	n, err := l.Merge(ctx)
	if err != nil {
		return nil, sends{}, err
	}
	if len(n) != len(files) {
		t.Errorf("Merge counted %d files, want %d: %v", len(n), len(files), n)
	}
	if commit {
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]int64, len(files))
	for i, id := range ids {
		out[i] = n[id]
	}
	return out, sends{p.copies.Load() - before.copies, p.fallbacks.Load() - before.fallbacks}, nil
}

// load is loadTx, committed and without error.
func load(t *testing.T, p *Postgres, tb plugins.Table, files ...[]plugins.Record) ([]int64, sends) {
	t.Helper()
	n, s, err := loadTx(t, p, tb, true, files...)
	if err != nil {
		t.Fatal(err)
	}
	return n, s
}

// stored maps each key of kv to the tag of the file whose copy was kept.
func stored(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT k, tag FROM kv")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, tag string
		if err := rows.Scan(&k, &tag); err != nil {
			t.Fatal(err)
		}
		out[k] = tag
	}
	return out
}

func openKV(t *testing.T) (*Postgres, *sql.DB) {
	p, db := open(t)
	createTable(t, db, kv, true)
	return p, db
}

// alltypes has a column of every type, and a time.
var alltypes = plugins.Table{Name: "all_types", FileType: "all", HasTime: true, Key: []int{0}, Columns: []plugins.Column{
	{Name: "s", Property: "s", Type: plugins.ColText},
	{Name: "ts", Property: "ts", Type: plugins.ColTimestamp},
	{Name: "i", Property: "i", Type: plugins.ColInteger},
	{Name: "n", Property: "n", Type: plugins.ColNumber},
	{Name: "b", Property: "b", Type: plugins.ColBoolean},
	{Name: "j", Property: "the j", Type: plugins.ColJSON},
}}

// TestLoadTypes: every column type arrives exactly, on each path.
func TestLoadTypes(t *testing.T) {
	odd := "tab\there, line\nbreak, cr\rret, back\\slash \\N é"
	v := func(s string) plugins.Value { return plugins.Value{Text: s, Valid: true} }
	null := plugins.Value{}
	ts := time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.FixedZone("x", 5*3600))
	bc := time.Date(0, 3, 1, 12, 0, 0, 0, time.UTC) // 1 BC
	type want struct{ s, ts, i, n, b, j, extra, event string }
	cases := []struct {
		rec  plugins.Record
		want want
	}{
		{plugins.Record{EventTime: &ts, Extra: []byte(`{"x":1,"y":"a\tb"}`),
			Values: []plugins.Value{v("plain"), v("2024-02-29T18:59:59.123456Z"), v("-9223372036854775808"), v("1e-30"), v("true"), v(`{"a":[1,2.50,null],"b":"\\N"}`)}},
			want{"plain", "2024-02-29 18:59:59.123456", "-9223372036854775808", "0.000000000000000000000000000001", "true",
				`{"a": [1, 2.50, null], "b": "\\N"}`, `{"x": 1, "y": "a\tb"}`, "2024-02-29 18:59:59.123456"}},
		{plugins.Record{EventTime: &bc,
			Values: []plugins.Value{v(odd), v("0001-01-01T00:00:00.000000Z"), v("9223372036854775807"), v("123456789012345678901234567890"), v("false"), v("null")}},
			want{odd, "0001-01-01 00:00:00", "9223372036854775807", "123456789012345678901234567890", "false", "null", "", "0001-03-01 12:00:00 BC"}},
		{plugins.Record{Values: []plugins.Value{v("nulls"), null, null, null, null, null}},
			want{s: "nulls"}},
		{plugins.Record{Values: []plugins.Value{v("numbers"), null, v("0"), v("-1.50e3"), null, v(`"a\tb \"q\" \\\\N é"`)}},
			want{s: "numbers", i: "0", n: "-1500", j: `"a\tb \"q\" \\\\N é"`}},
		{plugins.Record{Values: []plugins.Value{v("fraction"), null, null, v("-0.000000000000000000000000000001234567890123456789"), null, v("[]")}},
			want{s: "fraction", n: "-0.000000000000000000000000000001234567890123456789", j: "[]"}},
	}
	special := func() []plugins.Record {
		var out []plugins.Record
		for i, c := range cases {
			r := c.rec
			r.Index = i
			r.Key = `["` + strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`, `\`, `\\`).Replace(r.Values[0].Text) + `"]`
			out = append(out, r)
		}
		return out
	}
	// filler brings a chunk up to what goes by COPY.
	filler := func() []plugins.Record {
		var out []plugins.Record
		for i := range copyMin {
			out = append(out, plugins.Record{Index: 100 + i, Key: fmt.Sprintf(`["f%d"]`, i), Values: []plugins.Value{v(fmt.Sprint("f", i)), null, null, null, null, null}})
		}
		return out
	}
	for _, path := range []string{"copy", "insert", "stage"} {
		t.Run(path, func(t *testing.T) {
			p, db := open(t)
			createTable(t, db, alltypes, true)
			recs := special()
			if path != "insert" {
				recs = append(recs, filler()...)
			}
			if path == "stage" {
				// Sent but rolled back: the keys look sent, and merge.
				if _, _, err := loadTx(t, p, alltypes, false, recs); err != nil {
					t.Fatal(err)
				}
			}
			n, s := load(t, p, alltypes, recs)
			if n[0] != int64(len(recs)) {
				t.Fatalf("%d inserted, want %d", n[0], len(recs))
			}
			if wantCopies := map[string]int64{"copy": 1}[path]; s.copies != wantCopies || s.fallbacks != 0 {
				t.Errorf("%d COPYs, %d fallbacks; want %d and 0", s.copies, s.fallbacks, wantCopies)
			}
			for i, c := range cases {
				var got want
				var idx int
				var ts time.Time
				var tsNull sql.NullTime
				err := db.QueryRowContext(t.Context(), `SELECT s, coalesce((ts AT TIME ZONE 'UTC')::text, ''), coalesce(i::text, ''), coalesce(n::text, ''),
					coalesce(b::text, ''), coalesce(j::text, ''), coalesce(_extra::text, ''), coalesce((_event_time AT TIME ZONE 'UTC')::text, ''), _index, ts
					FROM all_types WHERE s = $1`, c.rec.Values[0].Text).Scan(&got.s, &got.ts, &got.i, &got.n, &got.b, &got.j, &got.extra, &got.event, &idx, &tsNull)
				if err != nil {
					t.Fatalf("case %d: %v", i, err)
				}
				if got != c.want || idx != i {
					t.Errorf("case %d:\n got %q, index %d\nwant %q, index %d", i, got, idx, c.want, i)
				}
				if tsNull.Valid {
					ts = tsNull.Time
					if wantTS, _ := time.Parse(time.RFC3339Nano, c.rec.Values[1].Text); !ts.Equal(wantTS) {
						t.Errorf("case %d: ts %v, want %v", i, ts, wantTS)
					}
				}
			}
			// JSON null is a value; an absent property is NULL.
			var jsonNull, absent int
			if err := db.QueryRowContext(t.Context(), `SELECT count(*) FILTER (WHERE j = 'null'::jsonb), count(*) FILTER (WHERE j IS NULL) FROM all_types`).Scan(&jsonNull, &absent); err != nil {
				t.Fatal(err)
			}
			if jsonNull != 1 || absent != len(recs)-4 {
				t.Errorf("%d JSON nulls and %d NULLs, want 1 and %d", jsonNull, absent, len(recs)-4)
			}
		})
	}
}

// TestLoadKeyless: a type without a key is unique on _key, the record's
// digest.
func TestLoadKeyless(t *testing.T) {
	p, db := open(t)
	tb := plugins.Table{Name: "keyless", FileType: "keyless", Columns: []plugins.Column{{Name: "a", Property: "a", Type: plugins.ColInteger}}}
	createTable(t, db, tb, true)
	mk := func(from, n int) []plugins.Record {
		out := make([]plugins.Record, n)
		for i := range out {
			out[i] = plugins.Record{Index: i, Key: fmt.Sprintf("sha256:%064d", from+i), Values: []plugins.Value{{Text: fmt.Sprint(from + i), Valid: true}}}
		}
		return out
	}
	a := mk(0, 1000)
	a = append(a, a[3], a[999])
	n, s := load(t, p, tb, a, mk(990, 20), mk(5, 3))
	if n[0] != 1000 || n[1] != 10 || n[2] != 0 || s.copies != 1 {
		t.Fatalf("inserted %v with %d COPYs, want [1000 10 0] with one COPY", n, s.copies)
	}
	var rows, wrong int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*), count(*) FILTER (WHERE _key <> 'sha256:' || lpad(a::text, 64, '0')) FROM keyless`).Scan(&rows, &wrong); err != nil {
		t.Fatal(err)
	}
	if rows != 1010 || wrong != 0 {
		t.Errorf("%d rows, %d with a wrong _key; want 1010 and 0", rows, wrong)
	}
	// Another process: its COPY meets the stored digests.
	q := second(t, p)
	if n, s := load(t, q, tb, mk(2000, 300), mk(0, 300)); n[0] != 300 || n[1] != 0 || s.fallbacks != 1 {
		t.Errorf("second process: inserted %v with %d fallbacks, want [300 0] after one", n, s.fallbacks)
	}
}

func TestCopyNewKeys(t *testing.T) {
	p, db := openKV(t)
	recs := records("a", 0, 3000, "a")
	again := records("a", 10, 1, "again")[0]
	again.Index = 3000
	recs = append(recs, again, recs[2999]) // repeats inside the file
	n, s := load(t, p, kv, recs)
	if n[0] != 3000 {
		t.Fatalf("%d inserted, want 3000", n[0])
	}
	if s.copies != 1 || s.fallbacks != 0 {
		t.Errorf("new keys: %d COPYs, %d fallbacks; want one COPY and no fallback", s.copies, s.fallbacks)
	}
	if got := stored(t, db); len(got) != 3000 || got["a-000010"] != "a" {
		t.Errorf("%d rows stored, a-000010 from %q; want 3000, the first copy", len(got), got["a-000010"])
	}
}

// TestGroupFirstCopyWins: files loaded together keep, for each key, the
// copy of the first file that has it, whatever path each chunk takes, and
// each file's count is exact.
func TestGroupFirstCopyWins(t *testing.T) {
	p, db := openKV(t)
	f1 := records("g", 0, chunk-100, "f1")
	f2 := records("g", chunk-200, 400, "f2") // its first 100 are f1's last, in f1's chunk
	f2 = append(f2, records("g", chunk+150, 1, "f2 again")...)
	f3 := records("g", 0, 10, "f3") // all f1's, in the next chunk
	f4 := records("h", 0, 300, "f4")
	f5 := append(records("h", 100, 5, "f5"), records("h", 1000, 5, "f5")...) // half f4's
	n, _ := load(t, p, kv, f1, f2, f3, f4, f5)
	if want := []int64{chunk - 100, 300, 0, 300, 5}; fmt.Sprint(n) != fmt.Sprint(want) {
		t.Errorf("inserted %v, want %v", n, want)
	}
	got := stored(t, db)
	if len(got) != chunk+505 {
		t.Errorf("%d rows, want %d", len(got), chunk+505)
	}
	for k, tag := range got {
		var want string
		var i int
		switch {
		case strings.HasPrefix(k, "g-"):
			fmt.Sscanf(k, "g-%d", &i)
			want = map[bool]string{true: "f1", false: "f2"}[i < chunk-100]
		default:
			fmt.Sscanf(k, "h-%d", &i)
			want = map[bool]string{true: "f4", false: "f5"}[i < 300]
		}
		if tag != want {
			t.Fatalf("%s kept %s's copy, want %s's", k, tag, want)
		}
	}

	// A later transaction of the same process: its repeats merge.
	n, s := load(t, p, kv, records("g", 0, 600, "later"), records("i", 0, 600, "later"))
	if n[0] != 0 || n[1] != 600 || s.fallbacks != 0 {
		t.Errorf("later transaction: inserted %v with %d fallbacks, want [0 600] and none", n, s.fallbacks)
	}
	if got := stored(t, db); got["g-000000"] != "f1" {
		t.Errorf("g-000000 is %s's copy, want f1's", got["g-000000"])
	}

	// A group too small for COPY: one INSERT, in file order.
	n, _ = load(t, p, kv, records("s", 0, 5, "s1"), records("s", 3, 5, "s2"))
	if n[0] != 5 || n[1] != 3 {
		t.Errorf("small group: inserted %v, want [5 3]", n)
	}
	if got := stored(t, db); got["s-000004"] != "s1" || got["s-000007"] != "s2" {
		t.Errorf("small group: s-000004 from %s, s-000007 from %s; want s1 and s2", got["s-000004"], got["s-000007"])
	}
}

// TestCopyMeetsStoredKeys: keys another process stored make the COPY fail;
// the chunk is merged instead, with exact counts, and the first stored copy
// stays.
func TestCopyMeetsStoredKeys(t *testing.T) {
	p, db := openKV(t)
	q := second(t, p)
	if n, _ := load(t, q, kv, records("k", 500, 1000, "q")); n[0] != 1000 {
		t.Fatalf("q: %v", n)
	}
	// p2 repeats keys of p that q did not store: the merge keeps p's.
	n, s := load(t, p, kv, records("k", 0, 700, "p"), append(records("k", 0, 10, "p2"), records("k", 700, 300, "p2")...))
	if n[0] != 500 || n[1] != 0 {
		t.Fatalf("inserted %v, want [500 0]", n)
	}
	if s.fallbacks != 1 {
		t.Errorf("%d fallbacks, want 1: the COPY should have met q's keys", s.fallbacks)
	}
	for k, tag := range stored(t, db) {
		var i int
		fmt.Sscanf(k, "k-%d", &i)
		if want := map[bool]string{true: "p", false: "q"}[i < 500]; tag != want {
			t.Fatalf("%s kept %s's copy, want %s's", k, tag, want)
		}
	}

	// The transaction is sound after the rolled back COPY: p's next file
	// of new keys goes by COPY again.
	n, s = load(t, p, kv, records("n", 0, 500, "p"))
	if n[0] != 500 || s.copies != 1 || s.fallbacks != 0 {
		t.Errorf("next file: %v, %d COPYs, %d fallbacks; want 500 inserted by one COPY", n, s.copies, s.fallbacks)
	}
}

// TestCopyStopsAfterConflicts: a big file of old data is merged after two
// failed COPYs rather than failing every chunk.
func TestCopyStopsAfterConflicts(t *testing.T) {
	p, _ := openKV(t)
	q := second(t, p)
	load(t, q, kv, records("o", 0, 4*chunk, "q"))
	n, s := load(t, p, kv, records("o", 0, 4*chunk, "p"))
	if n[0] != 0 {
		t.Fatalf("%d inserted, want all %d duplicate", n[0], 4*chunk)
	}
	if s.copies != 2 || s.fallbacks != 2 {
		t.Errorf("%d COPYs, %d fallbacks; want 2 and 2, then merges only", s.copies, s.fallbacks)
	}
}

// TestBareCopyConflict: past the savepoint budget a COPY goes without a
// savepoint; when it meets a stored key the transaction is lost with an
// error the store retries, and the file, loaded again, merges: its keys
// are known to the sent filter by then.
func TestBareCopyConflict(t *testing.T) {
	defer func(n int) { maxSavepoints = n }(maxSavepoints)
	maxSavepoints = 1
	p, db := openKV(t)
	q := second(t, p)
	load(t, q, kv, records("o", chunk, chunk, "q"))
	file := records("o", 0, 3*chunk, "p")
	_, _, err := loadTx(t, p, kv, true, file)
	if err == nil || !retry(err) {
		t.Fatalf("a bare COPY meeting a stored key: %v; want an error the store retries", err)
	}
	n, s := load(t, p, kv, file)
	// The keys the lost transaction sent are merged; the last chunk's,
	// which it never reached, are still new to the filter: one COPY.
	if n[0] != 2*chunk || s.copies != 1 || s.fallbacks != 0 {
		t.Errorf("loaded again: %v inserted, %d COPYs, %d fallbacks; want %d, 1 and 0", n, s.copies, s.fallbacks, 2*chunk)
	}
	got := stored(t, db)
	if len(got) != 3*chunk || got[fmt.Sprintf("o-%06d", chunk)] != "q" || got["o-000000"] != "p" {
		t.Errorf("%d keys stored; o-%06d kept %q's copy, want q's", len(got), chunk, got[fmt.Sprintf("o-%06d", chunk)])
	}
}

// TestCopyWaitsForConcurrentKeys: a COPY that meets a key another process
// has sent but not committed waits for it; if it commits, the chunk is
// merged and the counts are exact.
func TestCopyWaitsForConcurrentKeys(t *testing.T) {
	p, db := openKV(t)
	q := second(t, p)
	ctx := t.Context()
	conn, err := q.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	held, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback()
	var id int64
	if err := held.QueryRowContext(ctx, "INSERT INTO files DEFAULT VALUES RETURNING id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	l, err := q.newLoader(ctx, conn, held, kv)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Add(ctx, id, records("w", 0, chunk, "q")); err != nil { // a full chunk is sent at once
		t.Fatal(err)
	}
	type result struct {
		n   []int64
		s   sends
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, s, err := loadTx(t, p, kv, true, records("w", chunk-300, 600, "p"))
		done <- result{n, s, err}
	}()
	waitForLock(t, db, done)
	if _, err := l.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := held.Commit(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting load did not finish after the other committed")
	}
	if r.err != nil || r.n[0] != 300 || r.s.fallbacks != 1 {
		t.Errorf("inserted %v (%v) with %d fallbacks, want 300 after one fallback", r.n, r.err, r.s.fallbacks)
	}
	if got := stored(t, db); len(got) != chunk+300 || got[fmt.Sprintf("w-%06d", chunk-1)] != "q" {
		t.Errorf("%d rows stored, want %d with q's copies kept", len(got), chunk+300)
	}
}

func waitForLock[T any](t *testing.T, db *sql.DB, done <-chan T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatal("the load finished while the other transaction held its keys")
		default:
		}
		var n int
		if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the load never waited on the other transaction's keys")
		}
	}
}

// TestLoadBadValue: a value the column refuses fails the transaction with
// the server's data error, naming the record and column when COPY tells.
func TestLoadBadValue(t *testing.T) {
	p, db := open(t)
	createTable(t, db, alltypes, true)
	for _, c := range []struct {
		name string
		n    int
		col  int
		bad  string
		want string
	}{
		{"copy", copyMin + 10, 2, "12x", ", record 7, column i: "},
		{"insert", 10, 2, "12x", "table all_types: records of file ids ["},
		// PostgreSQL's text cannot hold a NUL, which JSON's \u0000 can.
		{"nul", copyMin + 10, 0, "a\x00b", ", record 7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs := make([]plugins.Record, c.n)
			for i := range recs {
				recs[i] = plugins.Record{Index: i, Key: fmt.Sprintf(`["%s%d"]`, c.name, i), Values: []plugins.Value{{Text: fmt.Sprint(c.name, i), Valid: true}, {}, {Text: "1", Valid: true}, {}, {}, {}}}
			}
			recs[7].Values[c.col].Text = c.bad
			_, _, err := loadTx(t, p, alltypes, true, recs)
			var pe *pq.Error
			if err == nil || !errors.As(err, &pe) || pe.Code.Class() != "22" || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("a bad value: %v; want a data error (class 22) containing %q", err, c.want)
			}
			t.Log(err)
		})
	}
	var rows int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM all_types").Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d rows left after the failures (%v)", rows, err)
	}
	// A wrong number of values is refused before it reaches the server.
	_, _, err := loadTx(t, p, alltypes, true, []plugins.Record{{Index: 3, Key: "x"}})
	if err == nil || !strings.Contains(err.Error(), "record 3 has 0 values, want one per column: 6") {
		t.Errorf("no values: %v", err)
	}
}

func TestAppendTime(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.FixedZone("x", -3600)),
		time.Date(1970, 1, 1, 0, 0, 0, 1000, time.FixedZone("y", 5*3600+1800)),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got := string(appendTime([]byte("x"), ts))
		want := "x" + ts.UTC().Truncate(time.Microsecond).Format("2006-01-02 15:04:05.000000Z")
		if ts.Year() < 1 {
			want = "x" + string(pq.FormatTimestamp(ts.UTC()))
		}
		if got != want {
			t.Errorf("appendTime(%v) = %q, want %q", ts, got, want)
		}
	}
}

// TestLostConnectionAtCopy: the network goes between the file's last
// statement and its COPY. The COPY must fail at once: database/sql may not
// be left waiting to close a connection the file's own transaction holds.
func TestLostConnectionAtCopy(t *testing.T) {
	_, dsn, px := plugintest.ProxiedPostgres(t)
	ctx := t.Context()
	p := &Postgres{DSN: dsn, ConnectTimeout: 5 * time.Second}
	if err := p.Init(ctx, env); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	createTable(t, p.DB, kv, true)
	conn, err := p.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	l, err := p.newLoader(ctx, conn, tx, kv)
	if err != nil {
		t.Fatal(err)
	}
	px.Cut()
	done := make(chan error, 1)
	go func() {
		recs := records("c", 0, copyMin, "p")
		rows := make([]staged, len(recs))
		idx := make([]int, len(recs))
		for i, r := range recs {
			rows[i], idx[i] = staged{1, r}, i
		}
		_, err := l.(*loader).send(ctx, l.(*loader).q.copyTable, rows, idx)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !outage(err) {
			t.Fatalf("COPY on a cut connection: %v; want an error that ends the run", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the COPY hung on a cut connection")
	}
}
