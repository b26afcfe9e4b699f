package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
)

func TestStats(t *testing.T) {
	for _, c := range []struct {
		records, failed int64
		elapsed         time.Duration
		want            string
	}{
		{12345, 0, time.Second, "12,345 records/s, 1s"},
		{10, 2, 2 * time.Second, "5 records/s, 2 failed, 2s"},
		{0, 0, 0, "0 records/s, 0s"},
		{3_000_000, 1, 1500 * time.Millisecond, "2,000,000 records/s, 1 failed, 2s"},
	} {
		if got := stats(c.records, c.failed, c.elapsed); got != c.want {
			t.Errorf("stats(%d, %d, %s) = %q, want %q", c.records, c.failed, c.elapsed, got, c.want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := grouped(n); got != want {
			t.Errorf("grouped(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestProgressNotATerminal: no display on a pipe, a file or a buffer.
func TestProgressNotATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []any{f, &bytes.Buffer{}} {
		c := &cli{stderr: &maskWriter{w: w.(interface{ Write([]byte) (int, error) }), m: &masker{}}}
		if pr := c.newProgress(); pr != nil {
			t.Errorf("a progress display on %T", w)
		}
	}
	// The hook-up is a no-op then.
	var pr *progress
	pr.begin()
	pr.end()
	if pr.hook(nil) != nil {
		t.Error("a nil display hooks the engine")
	}

	for _, b := range backends[:1] {
		p := newPipe(t, b, "../../testdata/sample", "../../schemas", "keep", "keep")
		code, out, errs := carpipe(t, "run", "-c", p.config)
		wantCode(t, code, exitOK, out, errs)
		if strings.Contains(errs, "records/s") || strings.Contains(errs, "files ") {
			t.Errorf("progress written to a non-terminal:\n%s", errs)
		}
	}
}

// TestProgressRenders drives the display with engine events into a buffer.
func TestProgressRenders(t *testing.T) {
	var buf bytes.Buffer
	pr := &progress{out: &buf, opts: []mpb.ContainerOption{mpb.WithAutoRefresh(), mpb.WithWidth(120)}}
	var seen []string
	o := engine.Options{}
	pr.hook(func(o *engine.Options) {
		o.Events = func(ev engine.Event) { seen = append(seen, ev.Kind) }
	})(&o)
	pr.begin()
	o.Events(engine.Event{Kind: "listed", Total: 3})
	o.Events(engine.Event{Kind: "file", Status: "processed", Counts: plugins.Counts{Inserted: 8, Duplicate: 2}})
	o.Events(engine.Event{Kind: "file", Status: "failed"})
	o.Events(engine.Event{Kind: "file", Status: "processed", Counts: plugins.Counts{Inserted: 5, Rejected: 1}})
	if got := pr.records.Load(); got != 16 {
		t.Errorf("%d records counted, want 16", got)
	}
	pr.end()
	if strings.Join(seen, ",") != "listed,file,file,file" {
		t.Errorf("the hook lost the events of the options it wraps: %v", seen)
	}
	out := buf.String()
	for _, want := range []string{"files 3/3", "records/s, 1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("display lacks %q:\n%q", want, out)
		}
	}
}
