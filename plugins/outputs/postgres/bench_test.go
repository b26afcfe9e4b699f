package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// BenchmarkLoad loads one file of n records per op: ledger row,
// its records by COPY (one INSERT for a small file), in one transaction.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{10, 5000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			ctx := context.Background()
			p, run := benchOutput(b)
			ts := time.Unix(1600000000, 0).UTC()
			b.ResetTimer()
			for i := range b.N {
				tx, err := p.Begin(ctx, plugins.FileInfo{Run: run, Input: "in", Path: fmt.Sprintf("f%d.json", i), FileType: "t", SHA256: "x"})
				if err != nil {
					b.Fatal(err)
				}
				for lo := 0; lo < n; lo += 1000 {
					batch := make([]plugins.Record, 0, 1000)
					for k := lo; k < min(lo+1000, n); k++ {
						batch = append(batch, plugins.Record{Index: k, Key: fmt.Sprintf(`["v%d","%d"]`, i, k), EventTime: &ts,
							Payload: []byte(`{"vehicle_id":"0000000000000d03","report_time":"2020-09-13T12:26:42.916Z","status":"driving"}`)})
					}
					if err := tx.Add(ctx, plugins.Batch{Records: batch}); err != nil {
						b.Fatal(err)
					}
				}
				if c, err := tx.Commit(ctx); err != nil || c.Inserted != int64(n) {
					b.Fatal(c, err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkMerge loads files of 5,000 records whose keys are all stored
// already: every record goes through the staging table and the merge,
// and is counted a duplicate.
func BenchmarkMerge(b *testing.B) {
	const n = 5000
	ctx := context.Background()
	p, run := benchOutput(b)
	ts := time.Unix(1600000000, 0).UTC()
	recs := make([]plugins.Record, n)
	for k := range recs {
		recs[k] = plugins.Record{Index: k, Key: fmt.Sprintf(`["v","%d"]`, k), EventTime: &ts,
			Payload: []byte(`{"vehicle_id":"0000000000000d03","report_time":"2020-09-13T12:26:42.916Z","status":"driving"}`)}
	}
	load := func(i int) plugins.Counts {
		tx, err := p.Begin(ctx, plugins.FileInfo{Run: run, Input: "in", Path: fmt.Sprintf("f%d.json", i), FileType: "t", SHA256: "x"})
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.Add(ctx, plugins.Batch{Records: recs}); err != nil {
			b.Fatal(err)
		}
		c, err := tx.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	load(-1)
	b.ResetTimer()
	for i := range b.N {
		if c := load(i); c.Inserted != 0 || c.Duplicate != n {
			b.Fatal(c)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// benchOutput is a migrated output on a fresh database, with a run.
func benchOutput(b *testing.B) (*Postgres, int64) {
	ctx := context.Background()
	p := &Postgres{DSN: plugintest.PostgresDSN(b), ConnectTimeout: 10 * time.Second}
	if err := p.Init(ctx, plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	if err := p.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	run, err := p.StartRun(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	return p, run
}
