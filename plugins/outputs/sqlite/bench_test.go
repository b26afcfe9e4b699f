package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// BenchmarkLoadFiles loads groups of small files of 10 records, as many
// as GroupSize, the unit the engine gives a Grouper; the figure is files/s.
func BenchmarkLoadFiles(b *testing.B) {
	ctx := context.Background()
	s := &SQLite{Path: filepath.Join(b.TempDir(), "b.db")}
	if err := s.Init(ctx, plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	run, _ := s.StartRun(ctx, "bench", "")
	groupN := s.GroupSize()
	ts := time.Unix(1600000000, 0).UTC()
	n := 0
	b.ResetTimer()
	for range b.N {
		files := make([]plugins.FileData, groupN)
		for i := range files {
			n++
			f := &files[i]
			f.Info = plugins.FileInfo{Run: run, Input: "in", Path: fmt.Sprintf("f%06d.json", n), FileType: "vehicles_status", SHA256: fmt.Sprint(n), Size: 1000}
			for k := range 10 {
				et := ts.Add(time.Duration(n*10+k) * time.Second)
				f.Batch.Records = append(f.Batch.Records, plugins.Record{Index: k, EventTime: &et,
					Key:     fmt.Sprintf(`["%016x","%s"]`, (n*7919+k*104729)%5000, et.Format(time.RFC3339)),
					Payload: []byte(`{"vehicle_id":"0000000000000d03","report_time":"2020-09-13T12:26:42.916Z","status":"driving"}`)})
			}
		}
		out, err := s.LoadFiles(ctx, files)
		if err != nil || out[groupN-1].Counts.Inserted != 10 {
			b.Fatal(err, out[199])
		}
	}
	b.ReportMetric(float64(groupN*b.N)/b.Elapsed().Seconds(), "files/s")
}
