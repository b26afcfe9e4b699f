package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	_ "github.com/carpipe/carpipe/plugins/all"
	"github.com/carpipe/carpipe/schemas"
)

// pipeline loads the config and schemas and builds the engine.
func (c *cli) pipeline(f *flags, workers int) (*engine.Engine, int, bool) {
	cfg, code, ok := c.loadConfig(f)
	if !ok {
		return nil, code, false
	}
	var unset config.Problems
	for _, p := range append(append([]config.Plugin{}, cfg.Inputs...), cfg.Outputs...) {
		unset = append(unset, p.Unset...)
	}
	if len(cfg.Inputs) == 0 {
		unset = append(unset, config.Problem{Pos: config.Pos{File: cfg.Path}, Msg: "no inputs: declare at least one"})
	}
	if err := unset.Err(); err != nil {
		c.fail(err)
		return nil, exitUsage, false
	}
	set, err := schemas.Load(cfg.Schemas, schemas.Options{})
	if err != nil {
		c.fail(err)
		return nil, exitUsage, false
	}
	opts := engine.Options{
		Workers: workers, Logger: c.log, Stdout: c.stdout, Secret: c.mask.add,
	}
	if c.tune != nil {
		c.tune(&opts)
	}
	e, err := engine.New(c.ctx, cfg, plugins.Default, set, opts)
	if err != nil {
		c.fail(err)
		return nil, errCode(err), false
	}
	return e, 0, true
}

func runCmd(c *cli, args []string) int {
	f := c.flags("run", true)
	workers := f.Int("workers", 0, "files loaded at once (default: number of CPUs)")
	quiet := f.Bool("quiet", false, "no progress display, even on a terminal")
	o := addRunFlags(f)
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	if code, ok := o.check(c); !ok {
		return code
	}
	var m *metrics
	if o.metricsAddr != "" || o.pushgateway != "" {
		m = newMetrics()
	}
	c.tune = o.tune(m)
	var pr *progress // only on a terminal, and not for a daemon
	if !*quiet && !o.watch {
		pr = c.newProgress()
	}
	c.tune = pr.hook(c.tune)
	e, code, ok := c.pipeline(f, *workers)
	if !ok {
		return code
	}
	defer e.Close()
	stop, code, ok := c.serveMetrics(m, o)
	if !ok {
		return code
	}
	defer stop()
	if o.watch {
		return c.watch(e, o, m)
	}
	pr.begin()
	s, err := e.Run(c.ctx)
	pr.end()
	c.summary(s)
	c.pushMetrics(m, o, s, err)
	if err != nil {
		c.fail(err)
		return exitFatal
	}
	if s.Status == "partial" {
		return exitPartial
	}
	return exitOK
}

func (c *cli) summary(s engine.Summary) {
	if s.Started.IsZero() || s.Finished.IsZero() {
		return
	}
	d := s.Finished.Sub(s.Started)
	rate := float64(s.RecordsInserted+s.RecordsDuplicate) / max(d.Seconds(), 1e-9)
	fmt.Fprintf(c.stdout, "run %d of %s: %s in %s\n", s.ID, s.Pipeline, s.Status, d.Round(time.Millisecond))
	fmt.Fprintf(c.stdout, "  files:   %s\n", outcomes(s))
	fmt.Fprintf(c.stdout, "  records: %d inserted, %d duplicate, %d rejected (%.0f records/s)\n",
		s.RecordsInserted, s.RecordsDuplicate, s.RecordsRejected, rate)
}

// outcomes lists a run's file counts, every outcome named.
func outcomes(s engine.Summary) string {
	parts := make([]string, len(plugins.Outcomes))
	for i, o := range plugins.Outcomes {
		parts[i] = fmt.Sprintf("%d %s", *s.Count(o), o)
	}
	return strings.Join(parts, ", ")
}

func migrateCmd(c *cli, args []string) int {
	f := c.flags("migrate", true)
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	e, code, ok := c.pipeline(f, 1)
	if !ok {
		return code
	}
	defer e.Close()
	if err := e.Migrate(c.ctx); err != nil {
		c.fail(err)
		return exitFatal
	}
	fmt.Fprintln(c.stdout, "database is up to date")
	return exitOK
}
