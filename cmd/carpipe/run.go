package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	_ "github.com/carpipe/carpipe/plugins/all"
	"github.com/carpipe/carpipe/schemas"
)

// pipeline loads the config and schemas and builds the engine.
func (c *cli) pipeline(workers int) (*engine.Engine, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	if err := unset(cfg.Inputs, cfg.Outputs); err != nil {
		return nil, err
	}
	if len(cfg.Inputs) == 0 {
		return nil, &exitError{exitUsage, config.Problems{{Pos: config.Pos{File: cfg.Path}, Msg: "no inputs: declare at least one"}}}
	}
	set, err := schemas.LoadContext(c.ctx, cfg.Schemas, schemas.Options{})
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	opts := engine.Options{
		Workers: workers, Logger: c.log, Stdout: c.stdout, Secret: c.mask.add,
	}
	if c.tune != nil {
		c.tune(&opts)
	}
	e, err := engine.New(c.ctx, cfg, plugins.Default, set, opts)
	if err != nil {
		return nil, configError(err)
	}
	return e, nil
}

func (c *cli) runCmd() *cobra.Command {
	cmd, _ := c.runCommand()
	return cmd
}

// runCommand is run with the options its flags fill in.
func (c *cli) runCommand() (*cobra.Command, *runOpts) {
	var workers int
	var quiet bool
	var o *runOpts
	cmd := c.command("run", "Load every new file of the pipeline once",
		`Load every new file of the pipeline's inputs once: each file is checked
against its file type's schema and loaded in one transaction with its
ledger row, then moved as on_success or on_failure says. A file already in
the ledger is skipped, so running again loads only what is new.

The database is migrated first, as migrate does: a breaking schema change
stops the run before it loads anything, with exit 2. With --watch, carpipe
keeps running and loads files as they arrive until SIGINT or SIGTERM.

Every run ends with one "run finished" log event carrying every count. The
summary goes to standard output, or to standard error when an output
writes records there (a jsonl output with path "-"); under --log-format
json the event stands for it.`,
		`  # One run, as a cron job or CI step would do it
  carpipe run -c config/pipeline.yaml

  # Keep loading files as they arrive, with Prometheus metrics on :9090
  carpipe run -c config/pipeline.yaml --watch --metrics-addr :9090

  # Structured logs for a log collector
  carpipe run -c config/pipeline.yaml --log-format json`,
		nil, func(cmd *cobra.Command, args []string) error {
			return c.run(cmd, workers, quiet, o)
		})
	c.configFlag(cmd)
	cmd.Flags().IntVar(&workers, "workers", 0, "files loaded at once (default: number of CPUs)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress display, even on a terminal (not with --watch, which shows none)")
	o = addRunFlags(cmd)
	return cmd, o
}

func (c *cli) run(cmd *cobra.Command, workers int, quiet bool, o *runOpts) error {
	if err := o.check(c, cmd); err != nil {
		return err
	}
	var m *metrics
	if o.metricsAddr != "" || o.pushgateway != "" {
		m = newMetrics()
	}
	c.tune = o.tune(m)
	var pr *progress // only on a terminal, and not for a daemon or JSON logs
	if !quiet && !o.watch && !c.json {
		pr = c.newProgress()
	}
	c.tune = pr.hook(c.tune)
	e, err := c.pipeline(workers)
	if err != nil {
		return err
	}
	defer e.Close()
	stop, err := c.serveMetrics(m, o)
	if err != nil {
		return err
	}
	defer stop()
	if o.watch {
		return c.watch(e, o, m)
	}
	pr.begin()
	s, err := e.Run(c.ctx)
	pr.end()
	c.summary(s, e.WritesStdout())
	c.pushMetrics(m, o, s, err)
	if err != nil {
		return fatalError(err)
	}
	if s.Status == "partial" {
		return errPartial
	}
	return nil
}

// summary tells a person what the run did: on standard output, unless an
// output writes records there; then on standard error, where under JSON
// logs the run's end event already says it.
func (c *cli) summary(s engine.Summary, stdoutTaken bool) {
	if s.ID == 0 || s.Finished.IsZero() {
		return
	}
	w := c.stdout
	if stdoutTaken {
		if c.json {
			return
		}
		w = c.stderr
	}
	d := s.Finished.Sub(s.Started)
	rate := float64(s.RecordsInserted+s.RecordsDuplicate) / max(d.Seconds(), 1e-9)
	fmt.Fprintf(w, "run %d of %s: %s in %s\n", s.ID, s.Pipeline, s.Status, d.Round(time.Millisecond))
	fmt.Fprintf(w, "  files:   %s\n", outcomes(s))
	fmt.Fprintf(w, "  records: %d inserted, %d duplicate, %d rejected (%.0f records/s)\n",
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

func (c *cli) migrateCmd() *cobra.Command {
	cmd := c.command("migrate", "Apply pending database migrations and create or extend the file types' tables",
		`Create carpipe's tables in the database, or bring them up to date, then
create the table of every file type and add the columns of new properties
(old rows read NULL). A breaking change (a different key, a column whose
type would change, a renamed table) changes nothing and is exit 2: 'carpipe
check' shows the plan first. run does all this too; migrate lets a
deployment do it first, with a role that may run DDL, so that the
pipeline's role and the read-only commands need not.`,
		`  carpipe migrate -c config/pipeline.yaml`,
		nil, func(cmd *cobra.Command, args []string) error {
			e, err := c.pipeline(1)
			if err != nil {
				return err
			}
			defer e.Close()
			if err := e.Migrate(c.ctx); err != nil {
				return fatalError(err)
			}
			fmt.Fprintln(c.stdout, "database is up to date")
			return nil
		})
	c.configFlag(cmd)
	return cmd
}
