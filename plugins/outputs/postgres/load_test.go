package postgres

import (
	"context"
	"database/sql"
	"fmt"
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

// records are n records with keys prefix-from … and payloads naming tag.
func records(prefix string, from, n int, tag string) []plugins.Record {
	out := make([]plugins.Record, n)
	for i := range out {
		out[i] = plugins.Record{Index: i, Key: fmt.Sprintf("%s-%06d", prefix, from+i), Payload: []byte(fmt.Sprintf(`{"from":%q,"i":%d}`, tag, i))}
	}
	return out
}

// sends is how a file was sent: COPYs, and COPYs merged instead.
type sends struct{ copies, fallbacks int64 }

// load runs one file through p and reports its counts and how it was sent.
func load(t *testing.T, p *Postgres, path string, recs []plugins.Record) (plugins.Counts, sends) {
	t.Helper()
	ctx := t.Context()
	before := sends{p.copies.Load(), p.fallbacks.Load()}
	run, err := p.StartRun(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := p.Begin(ctx, plugins.FileInfo{Run: run, Input: "in", Path: path, FileType: "t", SHA256: path})
	if err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < len(recs); lo += 1000 {
		if err := tx.Add(ctx, plugins.Batch{Records: recs[lo:min(lo+1000, len(recs))]}); err != nil {
			t.Fatalf("%s: Add: %v", path, err)
		}
	}
	c, err := tx.Commit(ctx)
	if err != nil {
		t.Fatalf("%s: Commit: %v", path, err)
	}
	return c, sends{p.copies.Load() - before.copies, p.fallbacks.Load() - before.fallbacks}
}

// stored maps each key to the tag of the file whose copy was kept.
func stored(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT record_key, payload->>'from' FROM records")
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

func TestCopyNewKeys(t *testing.T) {
	p, db := open(t)
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs := records("a", 0, 3000, "a")
	recs = append(recs, recs[10], recs[2999]) // repeats inside the file
	c, l := load(t, p, "a.json", recs)
	if c != (plugins.Counts{Inserted: 3000, Duplicate: 2}) {
		t.Fatalf("counts %+v, want 3000 inserted, 2 duplicate", c)
	}
	if l.copies != 1 || l.fallbacks != 0 {
		t.Errorf("new keys: %d COPYs, %d fallbacks; want one COPY and no fallback", l.copies, l.fallbacks)
	}
	if got := stored(t, db); len(got) != 3000 {
		t.Errorf("%d rows stored, want 3000", len(got))
	}
}

// TestCopyMeetsStoredKeys: keys another process stored make the COPY fail;
// the chunk is merged instead, with exact counts, and the first stored copy
// stays.
func TestCopyMeetsStoredKeys(t *testing.T) {
	p, db := open(t)
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	q := second(t, p)
	if c, _ := load(t, q, "q.json", records("k", 500, 1000, "q")); c.Inserted != 1000 {
		t.Fatalf("q: %+v", c)
	}
	c, l := load(t, p, "p.json", records("k", 0, 1000, "p"))
	if c != (plugins.Counts{Inserted: 500, Duplicate: 500}) {
		t.Fatalf("counts %+v, want 500 inserted, 500 duplicate", c)
	}
	if l.fallbacks != 1 {
		t.Errorf("%d fallbacks, want 1: the COPY should have met q's keys", l.fallbacks)
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
	c, l = load(t, p, "p2.json", records("n", 0, 500, "p"))
	if c.Inserted != 500 || l.copies != 1 || l.fallbacks != 0 {
		t.Errorf("next file: %+v, %d COPYs, %d fallbacks; want 500 inserted by one COPY", c, l.copies, l.fallbacks)
	}
}

// TestCopyStopsAfterConflicts: a big file of old data is merged after two
// failed COPYs rather than failing every chunk.
func TestCopyStopsAfterConflicts(t *testing.T) {
	p, _ := open(t)
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	q := second(t, p)
	old := records("o", 0, 4*chunk, "q")
	load(t, q, "q.json", old)
	c, l := load(t, p, "p.json", records("o", 0, 4*chunk, "p"))
	if c != (plugins.Counts{Duplicate: 4 * chunk}) {
		t.Fatalf("counts %+v, want all %d duplicate", c, 4*chunk)
	}
	if l.copies != 2 || l.fallbacks != 2 {
		t.Errorf("%d COPYs, %d fallbacks; want 2 and 2, then merges only", l.copies, l.fallbacks)
	}
}

// TestCopyWaitsForConcurrentKeys: a COPY that meets a key another process
// has sent but not committed waits for it; if it commits, the chunk is
// merged and the counts are exact.
func TestCopyWaitsForConcurrentKeys(t *testing.T) {
	p, db := open(t)
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	q := second(t, p)
	ctx := t.Context()
	run, _ := q.StartRun(ctx, "q", "")
	held, err := q.Begin(ctx, plugins.FileInfo{Run: run, Input: "in", Path: "q.json", FileType: "t", SHA256: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Add(ctx, plugins.Batch{Records: records("w", 0, chunk, "q")}); err != nil { // a full chunk is sent at once
		t.Fatal(err)
	}
	type result struct {
		c plugins.Counts
		l sends
	}
	done := make(chan result, 1)
	go func() {
		c, l := load(t, p, "p.json", records("w", chunk-300, 600, "p"))
		done <- result{c, l}
	}()
	waitForLock(t, db, done)
	if _, err := held.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting load did not finish after the other committed")
	}
	if r.c != (plugins.Counts{Inserted: 300, Duplicate: 300}) || r.l.fallbacks != 1 {
		t.Errorf("counts %+v with %d fallbacks, want 300 inserted, 300 duplicate after one fallback", r.c, r.l.fallbacks)
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

// TestCopyText: COPY's text format has its own escapes; every byte of a
// key and payload must arrive as sent, and times keep their microseconds.
func TestCopyText(t *testing.T) {
	p, db := open(t)
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs := records("x", 0, copyMin, "p")
	odd := "tab\there, line\nbreak, cr\rret, back\\slash \\N é"
	recs[7].Key = odd
	recs[7].Payload = []byte(`{"from":"p","s":"a\\tb \"q\" \\\\N é"}`)
	ts := time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.FixedZone("x", 5*3600))
	recs[8].EventTime = &ts
	bc := time.Date(0, 3, 1, 12, 0, 0, 0, time.UTC) // 1 BC
	recs[9].EventTime = &bc
	if c, s := load(t, p, "odd.json", recs); c.Inserted != int64(len(recs)) || s.copies != 1 {
		t.Fatalf("%+v, %+v; want all inserted by one COPY", c, s)
	}
	var payload string
	if err := db.QueryRowContext(t.Context(), "SELECT payload::text FROM records WHERE record_key = $1", odd).Scan(&payload); err != nil {
		t.Fatalf("the odd key did not arrive as sent: %v", err)
	}
	if want := `{"s": "a\\tb \"q\" \\\\N é", "from": "p"}`; payload != want {
		t.Errorf("payload %s, want %s", payload, want)
	}
	for _, r := range recs[8:10] {
		var got time.Time
		if err := db.QueryRowContext(t.Context(), "SELECT event_time FROM records WHERE record_key = $1", r.Key).Scan(&got); err != nil || !got.Equal(*r.EventTime) {
			t.Errorf("event_time %v (%v), want %v", got, err, *r.EventTime)
		}
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
	if err := p.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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
	l := &loader{tx: tx, conn: conn, p: p, fileType: "t", fileID: 1}
	px.Cut()
	done := make(chan error, 1)
	go func() {
		_, err := l.send(ctx, copyRecords, records("c", 0, copyMin, "p"))
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
