package main

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
)

// runOpts are the flags of run that let replicas share inputs, ride out
// outages, keep running and report.
type runOpts struct {
	watch       bool
	interval    time.Duration
	metricsAddr string
	pushgateway string
	gateway     *url.URL // pushgateway, read
	dbRetryFor  time.Duration
	claimTTL    time.Duration
	grace       time.Duration
}

// defaultGrace fits in Kubernetes' default 30s termination grace period.
const defaultGrace = 25 * time.Second

func addRunFlags(cmd *cobra.Command) *runOpts {
	o := &runOpts{}
	f := cmd.Flags()
	f.BoolVar(&o.watch, "watch", false, "keep running, loading files as they arrive; SIGINT/SIGTERM stop it (exit 0)")
	f.DurationVar(&o.interval, "interval", engine.DefaultInterval, "with --watch, how often every input is listed (dir inputs also wake on file system notifications)")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics and /healthz on `ADDRESS`, e.g. :9090")
	f.StringVar(&o.pushgateway, "pushgateway", "", "push the run's metrics to the Pushgateway at `URL` when it ends (not with --watch)")
	f.DurationVar(&o.dbRetryFor, "db-retry-for", time.Minute, "how long a lost database is waited for, files in flight retried with backoff, before exit 1 (0: at once)")
	f.DurationVar(&o.claimTTL, "claim-ttl", engine.DefaultClaimTTL, "a file's lease, renewed while it loads: a crashed process's files wait at most this long")
	f.DurationVar(&o.grace, "grace", defaultGrace, "on SIGINT/SIGTERM, how long files in flight get to commit before they are rolled back")
	return o
}

func (o *runOpts) check(c *cli, cmd *cobra.Command) error {
	set := cmd.Flags().Changed
	switch {
	case set("interval") && !o.watch:
		return noEffect("--interval", "without --watch: a one-shot run lists its inputs once")
	case set("quiet") && o.watch:
		return noEffect("--quiet", "with --watch, which shows no progress display")
	case o.watch && o.pushgateway != "":
		return usageError("--pushgateway is for one-shot runs; with --watch, let Prometheus scrape --metrics-addr")
	case o.interval <= 0:
		return usageError("--interval must be positive")
	case o.claimTTL < time.Second:
		return usageError("--claim-ttl must be at least 1s")
	case o.dbRetryFor < 0 || o.grace < 0:
		return usageError("--db-retry-for and --grace must not be negative")
	}
	if o.pushgateway != "" {
		var problem string
		if o.gateway, problem = pushURL(o.pushgateway); problem != "" {
			return usageError("%s", problem)
		}
		if o.gateway.User != nil {
			pw, _ := o.gateway.User.Password()
			for _, sec := range []string{pw, o.gateway.User.String(), o.pushgateway} {
				c.mask.add(sec) // as given, and percent-encoded
			}
		}
	}
	return nil
}

// pushURL reads --pushgateway, or says what is wrong with it without
// showing it: a URL that cannot be read may hold its password anywhere.
func pushURL(s string) (*url.URL, string) {
	const encode = "; characters such as @ : / ? # % and spaces in a user name or password must be percent-encoded"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "--pushgateway (not shown: it may hold a password): want an http:// or https:// URL" + encode
	}
	// An @ past the host is the rest of a password that a / ? or # cut
	// short, which the push would send as a path.
	rest := s[strings.Index(s, "//")+2:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 && strings.Contains(rest[i:], "@") {
		return nil, "--pushgateway (not shown: it may hold a password): an @ after the host" + encode
	}
	return u, ""
}

// tune puts the flags into the engine's options, feeding m if set.
func (o *runOpts) tune(m *metrics) func(*engine.Options) {
	return func(eo *engine.Options) {
		eo.ClaimTTL, eo.DBRetryFor, eo.Grace = o.claimTTL, o.dbRetryFor, o.grace
		if m == nil {
			return
		}
		prev := eo.Events
		eo.Events = func(ev engine.Event) {
			if prev != nil {
				prev(ev)
			}
			m.event(ev)
		}
	}
}

// serveMetrics starts the metrics server when asked; stop shuts it down.
func (c *cli) serveMetrics(m *metrics, o *runOpts) (stop func(), err error) {
	if o.metricsAddr == "" {
		return func() {}, nil
	}
	srv, addr, err := m.serve(o.metricsAddr, c.mask.apply)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	c.log.Info("serving metrics", "addr", addr.String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// watch runs the engine until a signal, reporting each loop.
func (c *cli) watch(e *engine.Engine, o *runOpts, m *metrics) error {
	c.log.Info("watching for files", "interval", o.interval.String())
	err := e.Watch(c.ctx, engine.WatchOptions{Interval: o.interval, Loop: func(l engine.Loop) {
		if m != nil {
			m.done(l.Summary, l.Err, l.DatabaseOK)
		}
	}})
	if err != nil {
		return fatalError(err)
	}
	c.log.Info("stopped")
	return nil
}

// pushMetrics sends a one-shot run's final metrics; a failed push is
// logged and leaves the exit code alone: the files are loaded either way.
func (c *cli) pushMetrics(m *metrics, o *runOpts, s engine.Summary, err error) {
	if m == nil {
		return
	}
	m.done(s, err, err == nil || !errors.Is(err, plugins.ErrFatal))
	if o.pushgateway == "" {
		return
	}
	index, _ := c.env("JOB_COMPLETION_INDEX") // set in the pods of an Indexed Job
	if perr := m.push(context.WithoutCancel(c.ctx), o.gateway, s.Pipeline, index); perr != nil {
		c.log.Error("metrics not pushed", "error", perr.Error())
	}
}
