package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/carpipe/carpipe/engine"
)

// progress is the bar `run` shows on a terminal: files done of the total,
// records per second and failures so far. The engine's events feed it
// from the workers; they only count, the bar reads the counts.
type progress struct {
	out     io.Writer
	opts    []mpb.ContainerOption
	p       *mpb.Progress
	bar     *mpb.Bar
	start   time.Time
	records atomic.Int64
	failed  atomic.Int64
	logs    *maskWriter // logs go above the bar while it runs
	logsTo  io.Writer
}

// newProgress returns the display for `run`, or nil when standard error
// is not a terminal.
func (c *cli) newProgress() *progress {
	mw, ok := c.stderr.(*maskWriter)
	if !ok {
		return nil
	}
	f, ok := mw.w.(*os.File)
	if !ok || !isatty.IsTerminal(f.Fd()) && !isatty.IsCygwinTerminal(f.Fd()) {
		return nil
	}
	return &progress{out: f, logs: mw}
}

// hook adds the display to the engine's events.
func (pr *progress) hook(prev func(*engine.Options)) func(*engine.Options) {
	if pr == nil {
		return prev
	}
	return func(o *engine.Options) {
		if prev != nil {
			prev(o)
		}
		next := o.Events
		o.Events = func(ev engine.Event) {
			if next != nil {
				next(ev)
			}
			pr.event(ev)
		}
	}
}

// begin shows the bar; logs written meanwhile print above it.
func (pr *progress) begin() {
	if pr == nil {
		return
	}
	pr.start = time.Now()
	pr.p = mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(pr.out), mpb.WithWidth(32)}, pr.opts...)...)
	pr.bar = pr.p.AddBar(0,
		mpb.PrependDecorators(decor.Name("files "), decor.CountersNoUnit("%d/%d", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			return stats(pr.records.Load(), pr.failed.Load(), time.Since(pr.start))
		})),
	)
	if pr.logs != nil {
		pr.logsTo, pr.logs.w = pr.logs.w, pr.p
	}
}

func (pr *progress) event(ev engine.Event) {
	switch ev.Kind {
	case "listed":
		pr.bar.SetTotal(int64(ev.Total), ev.Total == 0)
	case "file":
		pr.records.Add(ev.Counts.Inserted + ev.Counts.Duplicate + ev.Counts.Rejected)
		if ev.Status == "failed" {
			pr.failed.Add(1)
		}
		pr.bar.Increment()
	}
}

// end completes the bar, even after a fatal error, and gives standard
// error back to the logs.
func (pr *progress) end() {
	if pr == nil || pr.p == nil {
		return
	}
	pr.bar.SetTotal(-1, true)
	if pr.logs != nil {
		pr.logs.w = pr.logsTo
	}
	pr.p.Wait()
}

// stats is the text after the bar.
func stats(records, failed int64, elapsed time.Duration) string {
	rate := float64(records) / max(elapsed.Seconds(), 1e-3)
	s := fmt.Sprintf("%s records/s", grouped(int64(rate+0.5)))
	if failed > 0 {
		s += fmt.Sprintf(", %d failed", failed)
	}
	return s + ", " + elapsed.Round(time.Second).String()
}

// grouped writes n with thousands separators: 12,345.
func grouped(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
