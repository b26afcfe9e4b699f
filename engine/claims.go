package engine

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// Defaults of the Options that make replicas and outages safe.
const (
	DefaultClaimTTL = time.Minute
	// releaseTimeout bounds the calls made after a file is done, which
	// must run even when the run is being cancelled.
	releaseTimeout = 5 * time.Second
)

// scaleOut is what lets several processes share inputs and ride out a lost
// database: file leases, the outage clock and the shutdown grace period.
type scaleOut struct {
	holder string        // this engine's name in the claims table
	ttl    time.Duration // lease length
	grace  time.Duration
	outage *outage
}

func newScaleOut(o Options) scaleOut {
	ttl := o.ClaimTTL
	if ttl <= 0 {
		ttl = DefaultClaimTTL
	}
	return scaleOut{
		holder: newHolder(),
		ttl:    ttl,
		grace:  o.Grace,
		outage: &outage{limit: o.DBRetryFor, log: o.Logger, events: o.Events},
	}
}

// newHolder names an engine in the claims and runs tables: host and pid
// for people reading them, a random part so that two engines in one
// process (tests) are two holders.
func newHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	crand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// hold shows this engine alive to the other processes until unhold, so
// that they take its leases and close its run as soon as it dies. Its
// name's lock held by another (a hash collision), it takes a new name:
// nothing is claimed under a name before it is held.
func (e *Engine) hold(ctx context.Context) (unhold func(), err error) {
	c := e.claimer()
	if c == nil {
		return func() {}, nil
	}
	release, err := c.Hold(ctx, e.scale.holder)
	if err != nil && ctx.Err() == nil {
		e.scale.holder = newHolder()
		release, err = c.Hold(ctx, e.scale.holder)
	}
	if err != nil {
		return nil, err
	}
	return func() {
		if err := release(); err != nil {
			e.log.Debug("holder lock not released; it goes with the process", "error", err.Error())
		}
	}, nil
}

func (e *Engine) claimer() plugins.Claimer {
	c, _ := e.ledger.(plugins.Claimer)
	return c
}

func jobKey(j job) string { return fileKey(j.in, j.file.Path) }

func fileKey(in *input, path string) string { return in.name + "\x00" + path }

// lease is a unit of work with the outcome of claiming its files. The
// feeder claims a unit before a worker is free for it, so that a worker
// goes from one unit to the next without waiting to take leases (on
// SQLite, behind another worker's load).
type lease struct {
	unit []job
	mine map[string]bool
	err  error
}

// leased loads a unit of work under leases taken before any of its files
// is read: files another process holds are skipped, the others load and
// their leases go (through release) once their commit and action are
// done. Through a database outage, the unit's unfinished files keep their
// leases and are tried again.
func (e *Engine) leased(work, stop context.Context, run int64, l lease, report func(job, result, time.Duration), release func([]job)) {
	start := time.Now()
	unit, mine, err := l.unit, l.mine, l.err
	for try := 1; ; try++ {
		// A claim the feeder could not take is taken again here: by now the
		// outage it met may be over, and a stale error must not start one.
		if try > 1 || l.err != nil {
			mine, err = e.claim(work, unit)
		}
		var again []job
		if err != nil {
			again = unit
		} else {
			var claimed, done []job
			for _, j := range unit {
				if mine[jobKey(j)] {
					claimed = append(claimed, j)
					continue
				}
				e.log.Debug("file held by another live process; left to it", "input", j.in.name, "path", j.file.Path)
				report(j, result{outcome: plugins.OutcomeHeld, reason: reasonClaimed}, time.Since(start))
			}
			if len(claimed) > 0 {
				e.work(work, run, claimed, func(j job, r result, took time.Duration) {
					if r.fatal != nil && work.Err() == nil && stop.Err() == nil {
						again, err = append(again, j), r.fatal
						return
					}
					done = append(done, j)
					report(j, r, took)
				})
			}
			release(done)
		}
		if len(again) == 0 {
			e.scale.outage.ok()
			return
		}
		if work.Err() == nil && stop.Err() == nil {
			// A stop ends the wait: the files are left for the next process.
			wait, cancel := context.WithCancel(work)
			unhook := context.AfterFunc(stop, cancel)
			err = e.scale.outage.wait(wait, try, err)
			unhook()
			cancel()
			if err == nil {
				unit = again
				continue
			}
		}
		// Given up, or stopping: these files stay untouched in their input.
		for _, j := range again {
			report(j, result{fatal: err}, 0)
		}
		release(again)
		return
	}
}

// claim leases the unit's files, one statement per input; without a
// Claimer every file is this process's, and the ledger alone keeps loads
// single.
func (e *Engine) claim(ctx context.Context, unit []job) (map[string]bool, error) {
	mine := make(map[string]bool, len(unit))
	c := e.claimer()
	for in, paths := range byInput(unit) {
		if c == nil {
			for _, p := range paths {
				mine[in+"\x00"+p] = true
			}
			continue
		}
		got, err := c.Claim(ctx, e.scale.holder, in, paths, e.scale.ttl)
		if err != nil {
			return nil, plugins.Fatal(err)
		}
		for _, p := range got {
			mine[in+"\x00"+p] = true
		}
	}
	return mine, nil
}

// releaser gives leases up in the background, many units in one
// statement when they queue: a worker goes on to its next unit rather
// than wait for the database (on SQLite, behind another worker's load).
// wait returns once every lease handed to release is given up.
func (e *Engine) releaser(ctx context.Context) (release func([]job), wait func()) {
	if e.claimer() == nil {
		return func([]job) {}, func() {}
	}
	queue := make(chan []job, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for unit := range queue {
			batch := slices.Clone(unit)
		drain:
			for {
				select {
				case more, ok := <-queue:
					if !ok {
						break drain
					}
					batch = append(batch, more...)
				default:
					break drain
				}
			}
			e.release(ctx, batch)
		}
	}()
	release = func(unit []job) {
		if len(unit) > 0 {
			queue <- unit
		}
	}
	return release, func() { close(queue); <-done }
}

// release gives the leases up, even while the run is being cancelled. A
// failed release is harmless: the lease expires.
func (e *Engine) release(ctx context.Context, unit []job) {
	c := e.claimer()
	if c == nil || len(unit) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for in, paths := range byInput(unit) {
		if err := c.Release(ctx, e.scale.holder, in, paths); err != nil {
			e.log.Debug("leases not released; they will expire", "input", in, "error", err.Error())
		}
	}
}

func byInput(unit []job) map[string][]string {
	m := map[string][]string{}
	for _, j := range unit {
		m[j.in.name] = append(m[j.in.name], j.file.Path)
	}
	return m
}

// renew keeps this engine's leases alive while files load, so that a long
// file is not taken over; the returned func stops it and drops whatever
// lease a release lost to an outage is left.
func (e *Engine) renew(ctx context.Context) (stop func()) {
	c := e.claimer()
	if c == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(e.scale.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.Renew(ctx, e.scale.holder, e.scale.ttl); err != nil && ctx.Err() == nil {
					e.log.Warn("leases not renewed", "error", err.Error())
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := c.ReleaseAll(rctx, e.scale.holder); err != nil {
			e.log.Debug("leases not released; they will expire", "error", err.Error())
		}
	}
}

// sweep deletes the leases of dead processes and expired ones, and closes
// dead processes' runs as aborted.
func (e *Engine) sweep(ctx context.Context) error {
	if c := e.claimer(); c != nil {
		return c.Sweep(ctx)
	}
	return nil
}

// outage is the clock of a lost database, shared by every worker: files
// are retried with backoff until the database has been away for limit.
type outage struct {
	limit  time.Duration
	log    *slog.Logger
	events func(Event)

	mu    sync.Mutex
	since time.Time // zero while the database answers
}

// wait is called after a database error: it waits before the next try and
// returns nil, or returns the error that ends the run.
func (o *outage) wait(ctx context.Context, try int, err error) error {
	if o.limit <= 0 {
		return err
	}
	o.mu.Lock()
	if o.since.IsZero() {
		o.since = time.Now()
		o.log.Warn("database error; files in flight rolled back and retried", "retry_for", o.limit.String(), "error", err.Error())
		o.events(Event{Kind: "database", Status: "down", Reason: err.Error()})
	}
	left := o.limit - time.Since(o.since)
	o.mu.Unlock()
	if left <= 0 {
		return plugins.Fatal(fmt.Errorf("database unreachable for %s (the --db-retry-for limit); giving up, unfinished files are left in their inputs: %w", o.limit, err))
	}
	if !plugins.Wait(ctx, min(retryDelay(try), left)) {
		return err
	}
	return nil
}

// ok is called whenever the database answered.
func (o *outage) ok() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.since.IsZero() {
		o.log.Info("database reachable again", "after", time.Since(o.since).Round(time.Millisecond).String())
		o.events(Event{Kind: "database", Status: "up"})
	}
	o.since = time.Time{}
}

// retryDelay doubles from 200ms to 5s, with jitter so that replicas do not
// reconnect in step.
func retryDelay(try int) time.Duration {
	d := min(200*time.Millisecond<<min(try-1, 5), 5*time.Second)
	return d/2 + rand.N(d/2+1)
}
