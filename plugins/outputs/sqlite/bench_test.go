package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// BenchmarkLoadFiles loads groups of small files of 10 records, as many
// as GroupSize, the unit the engine loads; the figure is files/s.
func BenchmarkLoadFiles(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "b.db")
	s := &SQLite{Path: path}
	if err := s.Init(ctx, plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	status := plugins.Table{Name: "vehicles_status", FileType: "vehicles_status", HasTime: true, Key: []int{0, 1}, Columns: []plugins.Column{
		{Name: "vehicle_id", Property: "vehicle_id", Type: plugins.ColText},
		{Name: "report_time", Property: "report_time", Type: plugins.ColTimestamp},
		{Name: "status", Property: "status", Type: plugins.ColText}}}
	withTables(b, s, db, []plugins.Table{status})
	run, _ := s.StartRun(ctx, "bench", "")
	groupN := s.GroupSize()
	ts := time.Unix(1600000000, 0).UTC()
	n := 0
	b.ResetTimer()
	for range b.N {
		infos := make([]plugins.FileInfo, groupN)
		batches := make([]plugins.Batch, groupN)
		for i := range infos {
			n++
			infos[i] = plugins.FileInfo{Run: run, Input: "in", Path: fmt.Sprintf("f%06d.json", n), FileType: "vehicles_status", SHA256: fmt.Sprint(n), Size: 1000}
			for k := range 10 {
				et := ts.Add(time.Duration(n*10+k) * time.Second)
				id := fmt.Sprintf("%016x", (n*7919+k*104729)%5000)
				at := et.Format("2006-01-02T15:04:05.000000Z")
				batches[i].Records = append(batches[i].Records, plugins.Record{Index: k, EventTime: &et,
					Key:    fmt.Sprintf(`["%s","%s"]`, id, at),
					Values: []plugins.Value{{Text: id, Valid: true}, {Text: at, Valid: true}, {Text: "driving", Valid: true}}})
			}
		}
		tx, err := s.Load(ctx, infos)
		if err != nil {
			b.Fatal(err)
		}
		for i := range batches {
			if err := tx.Add(ctx, i, batches[i]); err != nil {
				b.Fatal(err)
			}
		}
		out, err := tx.Commit(ctx)
		if err != nil || out[groupN-1].Counts.Inserted != 10 {
			b.Fatal(err, out[groupN-1])
		}
	}
	b.ReportMetric(float64(groupN*b.N)/b.Elapsed().Seconds(), "files/s")
}
