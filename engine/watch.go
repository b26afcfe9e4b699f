package engine

import (
	"context"
	"errors"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// DefaultInterval is how often Watch polls its inputs.
const DefaultInterval = 30 * time.Second

// settle is how long Watch lets a burst of notifications (one upload is
// many writes) go quiet before it lists.
const settle = 200 * time.Millisecond

// WatchOptions tune Watch.
type WatchOptions struct {
	Interval time.Duration // between polls; default DefaultInterval
	// Loop, when set, is told what every loop did.
	Loop func(Loop)
}

// Loop is what one pass of Watch over its inputs did.
type Loop struct {
	// Summary is the loop's run; its ID is 0 when the loop found nothing
	// to load, since such loops record no run.
	Summary Summary
	// Err is what ended the loop early: an input that cannot be listed, a
	// database that stayed away past the retry limit.
	Err error
	// DatabaseOK is whether the loop reached the database.
	DatabaseOK bool
}

// Watch loads files as they arrive until ctx ends: it polls every input
// each interval, and sooner when an input that implements plugins.Notifier
// reports a change (once the change is min_age old). A failed loop is
// logged and the next one tries again. When ctx ends, the files in flight
// get the grace period to commit and Watch returns nil. A breaking schema
// change ends it with the error.
func (e *Engine) Watch(ctx context.Context, o WatchOptions) error {
	if e.ledger == nil {
		return errors.New("no database output")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Loop == nil {
		o.Loop = func(Loop) {}
	}
	wake := e.notifications(ctx)
	w := &watchState{seen: map[string]seenAs{}}
	defer w.unhold()
	var later []time.Time // when notified changes are old enough to load
	for {
		l := e.loop(ctx, w)
		// The schemas are read once, at the start: only a new deployment
		// mends a breaking change, so waiting for one helps nobody.
		if errors.Is(l.Err, plugins.ErrBreaking) {
			o.Loop(l)
			return l.Err
		}
		if l.Err != nil && ctx.Err() == nil {
			e.log.Error("loop failed; trying again at the next poll", "error", l.Err.Error(), "next_poll", o.Interval.String())
		}
		o.Loop(l)
		deadline := time.Now().Add(o.Interval)
	wait:
		for {
			at := deadline
			for _, d := range later {
				if d.Before(at) {
					at = d
				}
			}
			t := time.NewTimer(time.Until(at))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
				now := time.Now()
				keep := later[:0]
				for _, d := range later {
					if d.After(now) {
						keep = append(keep, d)
					}
				}
				later = keep
				break wait
			case in := <-wake:
				t.Stop()
				// A loop already due once this change is old enough covers it.
				ready := time.Now().Add(in.minAge)
				covered := false
				for _, d := range later {
					covered = covered || !d.Before(ready)
				}
				if !covered {
					later = append(later, ready.Add(settle))
				}
			}
		}
	}
}

// notifications merges the change signals of the inputs that give them.
func (e *Engine) notifications(ctx context.Context) <-chan *input {
	out := make(chan *input)
	for _, in := range e.inputs {
		n, ok := in.plugin.(plugins.Notifier)
		if !ok {
			continue
		}
		ch, err := n.Watch(ctx)
		if err != nil {
			e.log.Warn("no change notifications; polling only", "input", in.name, "error", err.Error())
			continue
		}
		go func() {
			for range ch {
				select {
				case out <- in:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return out
}

// watchState is what Watch remembers between loops.
type watchState struct {
	migrated bool
	// seen holds files left in place (keep) whose current bytes the
	// ledger knows: they are not read again until they change.
	seen map[string]seenAs
	// unfinished are runs whose end could not be recorded: the database
	// was away. They are recorded once it is back.
	unfinished []Summary
	// held: this engine shows itself alive (Engine.hold) from its first
	// run to the end of Watch.
	held func()
}

func (w *watchState) unhold() {
	if w.held != nil {
		w.held()
	}
}

type seenAs struct {
	size int64
	mod  time.Time
}

// fresh drops the files seen unchanged, and forgets those gone. A file no
// type claims is reported once until it changes.
func (w *watchState) fresh(jobs []job, ends []early) ([]job, []early) {
	listed := make(map[string]bool, len(jobs)+len(ends))
	same := func(in *input, f plugins.File) bool {
		k := fileKey(in, f.Path)
		listed[k] = true
		st, ok := w.seen[k]
		return ok && st.size == f.Size && st.mod.Equal(f.ModTime)
	}
	out := jobs[:0]
	for _, j := range jobs {
		if !same(j.in, j.file) {
			out = append(out, j)
		}
	}
	outEnds := ends[:0]
	for _, f := range ends {
		if same(f.in, f.file) {
			continue
		}
		if f.outcome == plugins.OutcomeUnmatched && !f.file.ModTime.IsZero() {
			w.seen[fileKey(f.in, f.file.Path)] = seenAs{f.file.Size, f.file.ModTime}
		}
		outEnds = append(outEnds, f)
	}
	for k := range w.seen {
		if !listed[k] {
			delete(w.seen, k)
		}
	}
	return out, outEnds
}

// record remembers a file the ledger now knows, when it stays where it
// is. A file moved or deleted that is listed again had its action fail,
// and is read again so that the action is retried.
func (w *watchState) record(j job, r result) {
	a := j.in.onSuccess
	if r.status == plugins.StatusFailed {
		a = j.in.onFailure
	}
	if r.known() && a.kind == "keep" && !j.file.ModTime.IsZero() {
		w.seen[jobKey(j)] = seenAs{j.file.Size, j.file.ModTime}
	}
}

// loop is one pass: reach the database, list, load what is new.
func (e *Engine) loop(ctx context.Context, w *watchState) (l Loop) {
	l = Loop{Summary: Summary{Pipeline: e.name, Started: time.Now()}}
	s := &l.Summary
	defer func() {
		if s.Finished.IsZero() {
			s.Finished = time.Now()
		}
	}()
	if !w.migrated {
		if l.Err = e.Migrate(ctx); l.Err != nil {
			return l
		}
		w.migrated = true
	}
	// The database first: health is about it, whatever the inputs do. The
	// sweep doubles as the check.
	var err error
	if e.claimer() != nil {
		err = e.sweep(ctx)
	} else {
		_, err = e.ledger.Lookup(ctx, "", "", "")
	}
	if err != nil {
		l.Err = err
		e.events(Event{Kind: "database", Status: "down", Reason: err.Error()})
		return l
	}
	l.DatabaseOK = true
	e.events(Event{Kind: "database", Status: "up"})
	for len(w.unfinished) > 0 && e.ledger.FinishRun(ctx, w.unfinished[0]) == nil {
		w.unfinished = w.unfinished[1:]
	}
	jobs, ends, err := e.list(ctx)
	jobs, ends = w.fresh(jobs, ends)
	strict := e.settle(s, ends)
	if err != nil {
		l.Err = err
		return l
	}
	if len(jobs) == 0 {
		return l
	}
	if w.held == nil {
		if w.held, l.Err = e.hold(ctx); l.Err != nil {
			l.DatabaseOK = false
			return l
		}
	}
	if s.ID, l.Err = e.ledger.StartRun(ctx, e.name, e.scale.holder); l.Err != nil {
		l.DatabaseOK = false
		return l
	}
	e.events(Event{Kind: "listed", Total: len(jobs)})
	err = e.process(ctx, s, jobs, w.record)
	// Stopping early is not a failure: the files not started are still in
	// their inputs for the next process.
	stopped := ctx.Err() != nil && errors.Is(err, context.Cause(ctx))
	s.Finished = time.Now()
	if err != nil && !stopped {
		l.Err = err
		l.DatabaseOK = !errors.Is(err, plugins.ErrFatal)
	}
	s.Status = status(*s, strict, l.Err != nil)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := e.ledger.FinishRun(fctx, *s); ferr != nil {
		w.unfinished = append(w.unfinished, *s)
		if l.Err == nil {
			l.Err, l.DatabaseOK = ferr, false
		}
	}
	e.finished(*s, l.Err)
	return l
}
