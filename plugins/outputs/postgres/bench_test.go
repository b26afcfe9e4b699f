package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// status is the shape of the shipped vehicles_status type.
var status = plugins.Table{Name: "vehicles_status", FileType: "vehicles_status", HasTime: true, Key: []int{0, 1}, Columns: []plugins.Column{
	{Name: "vehicle_id", Property: "vehicle_id", Type: plugins.ColText},
	{Name: "report_time", Property: "report_time", Type: plugins.ColTimestamp},
	{Name: "status", Property: "status", Type: plugins.ColText},
}}

// statusFiles are files of per records of status, every key new, in
// time order within a vehicle as a car would report them.
func statusFiles(files, per int) [][]plugins.Record {
	vehicles := make([]string, 1000)
	for i := range vehicles {
		vehicles[i] = fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15)
	}
	states := []string{"driving", "parked", "charging", "idle"}
	base := time.Date(2020, 9, 13, 12, 0, 0, 0, time.UTC)
	out := make([][]plugins.Record, files)
	for f := range out {
		recs := make([]plugins.Record, per)
		vals := make([]plugins.Value, 3*per)
		times := make([]time.Time, per)
		for i := range recs {
			k := f*per + i
			v := vehicles[k%len(vehicles)]
			times[i] = base.Add(time.Duration(k/len(vehicles)) * time.Second).Add(time.Duration(k%997) * time.Millisecond)
			ts := times[i].Format("2006-01-02T15:04:05.000000Z")
			vals[3*i] = plugins.Value{Text: v, Valid: true}
			vals[3*i+1] = plugins.Value{Text: ts, Valid: true}
			vals[3*i+2] = plugins.Value{Text: states[k%len(states)], Valid: true}
			recs[i] = plugins.Record{Index: i, Key: `["` + v + `","` + ts + `"]`, EventTime: &times[i], Values: vals[3*i : 3*i+3 : 3*i+3]}
		}
		out[f] = recs
	}
	return out
}

// benchDB is an output on a fresh database with tb's table, and the
// ledger rows of n files.
func benchDB(b *testing.B, tb plugins.Table, fk bool, n int) (*Postgres, []int64) {
	ctx := context.Background()
	p := &Postgres{DSN: plugintest.PostgresDSN(b), ConnectTimeout: 10 * time.Second}
	if err := p.Init(ctx, plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	createTable(b, p.DB, tb, fk)
	ids := make([]int64, n)
	for i := range ids {
		if err := p.DB.QueryRowContext(ctx, "INSERT INTO files DEFAULT VALUES RETURNING id").Scan(&ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	return p, ids
}

// loadFile loads one file in a transaction of its own, as the engine does.
func loadFile(b *testing.B, p *Postgres, tb plugins.Table, id int64, recs []plugins.Record) int64 {
	return loadGroup(b, p, tb, []int64{id}, [][]plugins.Record{recs})
}

// loadGroup loads files in one transaction and returns the rows inserted.
func loadGroup(b *testing.B, p *Postgres, tb plugins.Table, ids []int64, files [][]plugins.Record) int64 {
	ctx := context.Background()
	conn, err := p.DB.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	l, err := p.newLoader(ctx, conn, tx, tb)
	if err != nil {
		b.Fatal(err)
	}
	for f, recs := range files {
		for lo := 0; lo < len(recs); lo += 1000 {
			if err := l.Add(ctx, ids[f], recs[lo:min(lo+1000, len(recs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	n, err := l.Merge(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	var sum int64
	for _, id := range ids {
		sum += n[id]
	}
	return sum
}

// BenchmarkLoad loads 1,000,000 records of status, 200 files of 5,000
// each in a transaction of its own, four ways, each into a table of its
// own: through the loader (carpipe) and, as the ceiling, by plain COPY of
// the same rows, as COPY text made beforehand, into an identical table
// (copy); each with and without the foreign key of _file_id. The four
// take turns file by file, in an order that rotates, so that a busy
// machine slows them alike; each op reports the four times and their
// ratios.
func BenchmarkLoad(b *testing.B) {
	const files, per = 200, 5000
	data := statusFiles(files, per)
	type way struct {
		name string
		t    plugins.Table
		fk   bool
		copy string // the COPY statement of the ceiling
	}
	var ways []way
	for _, w := range []struct {
		name string
		fk   bool
		copy bool
	}{{"carpipe-s", true, false}, {"copy-s", true, true}, {"carpipe-nofk-s", false, false}, {"copy-nofk-s", false, true}} {
		t := status
		t.Name = "status_" + strings.TrimSuffix(strings.ReplaceAll(w.name, "-", "_"), "_s")
		q := ""
		if w.copy {
			q = "COPY " + t.Name + " (_file_id, _index, _event_time, _extra, vehicle_id, report_time, status) FROM STDIN"
		}
		ways = append(ways, way{w.name, t, w.fk, q})
	}
	secs := map[string]float64{}
	for range b.N {
		b.StopTimer()
		p, ids := benchDB(b, ways[0].t, ways[0].fk, files)
		for _, w := range ways[1:] {
			createTable(b, p.DB, w.t, w.fk)
		}
		text := copyText(data, ids)
		b.StartTimer()
		for f, recs := range data {
			for i := range ways {
				w := ways[(i+f)%len(ways)]
				start := time.Now()
				var n int64
				if w.copy != "" {
					n = plainCopy(b, p.DB, w.copy, text[f])
				} else {
					n = loadFile(b, p, w.t, ids[f], recs)
				}
				secs[w.name] += time.Since(start).Seconds()
				if n != per {
					b.Fatalf("%s: file %d: %d inserted, want %d", w.name, f, n, per)
				}
			}
		}
	}
	for name, s := range secs {
		b.ReportMetric(s/float64(b.N), name)
	}
	// Speed ratios: carpipe ÷ the ceiling; and the foreign key's cost, in
	// time with it ÷ time without.
	b.ReportMetric(secs["copy-s"]/secs["carpipe-s"], "carpipe/copy")
	b.ReportMetric(secs["copy-nofk-s"]/secs["carpipe-nofk-s"], "carpipe/copy-nofk")
	b.ReportMetric(secs["copy-s"]/secs["copy-nofk-s"], "copy-fk/nofk-time")
	b.ReportMetric(secs["carpipe-s"]/secs["carpipe-nofk-s"], "carpipe-fk/nofk-time")
	b.ReportMetric(float64(files*per*b.N)/secs["carpipe-s"], "records/s")
}

// copyText is each file of data as COPY text for the status table.
func copyText(data [][]plugins.Record, ids []int64) []string {
	text := make([]string, len(data))
	for f, recs := range data {
		var buf []byte
		for _, r := range recs {
			buf = strconv.AppendInt(buf, ids[f], 10)
			buf = fmt.Appendf(buf, "\t%d\t%s\t\\N\t%s\t%s\t%s\n", r.Index, r.EventTime.Format("2006-01-02 15:04:05.000000Z"),
				r.Values[0].Text, r.Values[1].Text, r.Values[2].Text)
		}
		text[f] = string(buf)
	}
	return text
}

// plainCopy sends text, whole lines, by one COPY in a transaction of its
// own: psql's \copy.
func plainCopy(b *testing.B, db *sql.DB, query, text string) (n int64) {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer st.Close()
		cd := st.(copyData)
		for len(text) > 0 {
			end := len(text)
			if end > 64<<10 {
				end = 64 << 10
				for text[end-1] != '\n' {
					end--
				}
			}
			// CopyData adds the last newline itself.
			if _, err := cd.CopyData(ctx, text[:end-1]); err != nil {
				return err
			}
			text = text[end:]
		}
		res, err := cd.Exec(nil)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkMerge loads files of 5,000 records whose keys are all stored
// already: every record goes through the staging table and the merge,
// and is counted a duplicate.
func BenchmarkMerge(b *testing.B) {
	const per = 5000
	data := statusFiles(1, per)[0]
	p, ids := benchDB(b, status, true, 1)
	loadFile(b, p, status, ids[0], data)
	b.ResetTimer()
	for range b.N {
		if n := loadFile(b, p, status, ids[0], data); n != 0 {
			b.Fatalf("%d inserted, want none", n)
		}
	}
	b.ReportMetric(float64(per*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSmallFiles loads 10,000 files of 10 records in groups of 100
// files, a transaction each, as the engine groups small files: one INSERT
// per group.
func BenchmarkSmallFiles(b *testing.B) {
	const files, per, group = 10000, 10, 100
	data := statusFiles(files, per)
	for range b.N {
		b.StopTimer()
		p, ids := benchDB(b, status, true, files)
		b.StartTimer()
		for lo := 0; lo < files; lo += group {
			if n := loadGroup(b, p, status, ids[lo:lo+group], data[lo:lo+group]); n != group*per {
				b.Fatalf("%d inserted, want %d", n, group*per)
			}
		}
	}
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
}
