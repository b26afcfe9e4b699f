package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/carpipe/carpipe/plugins"
)

// Summary is what a run did.
type Summary = plugins.RunSummary

// Event is what the engine tells Options.Events.
type Event struct {
	Kind     string // "listed": Total files are about to load; "file": one is done; "database": Status "down" or "up"
	Total    int
	Input    string
	Path     string
	FileType string
	Status   string // the file's outcome: one of plugins.Outcomes
	Reason   string // why it failed, was left or was skipped
	Bytes    int64
	Counts   plugins.Counts
	Duration time.Duration
	FileTime *time.Time // a read file's time: from its name, else its modification time
}

// job is one matched file.
type job struct {
	in   *input
	file plugins.File
	typ  plugins.FileType
	time *time.Time
}

// early is a listed file whose outcome is known without reading it.
type early struct {
	in      *input
	file    plugins.File
	outcome string
	reason  string
}

// list lists every input and routes each file. Files no type claims, and
// files too recent to read, end here; a file routing cannot settle (several
// types, a bad time in its name) becomes a job that fails with the reason.
func (e *Engine) list(ctx context.Context) (jobs []job, ends []early, err error) {
	now := time.Now()
	for _, in := range e.inputs {
		files, err := in.plugin.List(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("input %s: listing: %w", in.name, err)
		}
		for _, f := range files {
			if in.owns(f.Path) {
				continue
			}
			if in.minAge > 0 && !f.ModTime.IsZero() && now.Sub(f.ModTime) < in.minAge {
				e.log.Debug("file too recent; left for a later run", "input", in.name, "path", f.Path)
				ends = append(ends, early{in, f, plugins.OutcomeSkipped, reasonRecent})
				continue
			}
			typ, ts, err := e.router.Route(base(f.Path))
			if err == nil && typ == nil {
				e.log.Info("file matches no file type; left alone", "input", in.name, "path", f.Path)
				ends = append(ends, early{in, f, plugins.OutcomeUnmatched, "matches no file type"})
				continue
			}
			if err != nil {
				name := ""
				if typ != nil {
					name = typ.Name()
				}
				typ, ts = unrouted{name, err}, nil
			}
			if ts == nil && !f.ModTime.IsZero() {
				mt := f.ModTime.UTC()
				ts = &mt
			}
			jobs = append(jobs, job{in: in, file: f, typ: typ, time: ts})
		}
	}
	sort.SliceStable(jobs, func(i, j int) bool {
		a, b := jobs[i], jobs[j]
		if at, bt := stamp(a.time), stamp(b.time); !at.Equal(bt) {
			return at.Before(bt)
		}
		if ba, bb := base(a.file.Path), base(b.file.Path); ba != bb {
			return ba < bb
		}
		return a.in.name+"/"+a.file.Path < b.in.name+"/"+b.file.Path
	})
	return jobs, ends, nil
}

// unrouted is the type of a file routing could not settle: the file is
// read and hashed like any other, then fails with routing's reason.
type unrouted struct {
	name string
	err  error
}

func (u unrouted) Name() string     { return u.name }
func (u unrouted) RejectFile() bool { return true }
func (u unrouted) Decode(context.Context, plugins.Opener, plugins.Limits, func(plugins.Batch) error) error {
	return u.err
}

func stamp(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// Run loads every new file once. A non-nil error is fatal (the database is
// gone, an input cannot be listed); files that fail are counted instead.
func (e *Engine) Run(ctx context.Context) (Summary, error) {
	s := Summary{Pipeline: e.name, Started: time.Now()}
	if e.ledger == nil {
		return s, errors.New("no database output")
	}
	// A run that cannot start ends like any other: with its event.
	unstarted := func(err error) (Summary, error) {
		s.Finished, s.Status = time.Now(), "failed"
		e.finished(s, err)
		return s, err
	}
	if err := e.ledger.Migrate(ctx); err != nil {
		return unstarted(err)
	}
	if err := e.tables(ctx); err != nil {
		return unstarted(err)
	}
	unhold, err := e.hold(ctx)
	if err != nil {
		return s, err
	}
	defer unhold()
	id, err := e.ledger.StartRun(ctx, e.name, e.scale.holder)
	if err != nil {
		return unstarted(err)
	}
	s.ID = id
	strict, runErr := e.run(ctx, &s)
	s.Finished = time.Now()
	s.Status = status(s, strict, runErr != nil)
	// The run row is written even when the run was cancelled.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.ledger.FinishRun(fctx, s); err != nil && runErr == nil {
		runErr = err
	}
	e.finished(s, runErr)
	return s, runErr
}

// status is ok, partial or failed: partial when a file failed, was
// ambiguous or left, a record was rejected, or strict files matched no type.
func status(s Summary, strict int64, failed bool) string {
	switch {
	case failed:
		return "failed"
	case s.FilesFailed+s.FilesAmbiguous+s.FilesLeft+s.RecordsRejected+strict > 0:
		return "partial"
	}
	return "ok"
}

// finished logs the run's end with every count, for whoever reads the log
// rather than the summary.
func (e *Engine) finished(s Summary, err error) {
	attrs := []any{"run", s.ID, "status", s.Status, "duration", s.Finished.Sub(s.Started).Round(time.Millisecond).String(),
		"files", s.Files()}
	for _, o := range plugins.Outcomes {
		attrs = append(attrs, "files_"+o, *s.Count(o))
	}
	attrs = append(attrs, "records_inserted", s.RecordsInserted, "records_duplicate", s.RecordsDuplicate,
		"records_rejected", s.RecordsRejected)
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	e.log.Info("run finished", attrs...)
}

// run lists and loads; strict counts the unmatched files of inputs that
// fail the run on them.
func (e *Engine) run(ctx context.Context, s *Summary) (strict int64, err error) {
	jobs, ends, err := e.list(ctx)
	strict = e.settle(s, ends)
	if err != nil {
		return strict, err
	}
	if err := e.sweep(ctx); err != nil {
		e.log.Debug("expired leases not swept", "error", err.Error())
	}
	e.events(Event{Kind: "listed", Total: len(jobs)})
	return strict, e.process(ctx, s, jobs, nil)
}

// settle counts and reports the files whose outcome listing decided.
func (e *Engine) settle(s *Summary, ends []early) (strict int64) {
	for _, f := range ends {
		*s.Count(f.outcome)++
		if f.outcome == plugins.OutcomeUnmatched && f.in.failUnmatched {
			strict++
		}
		e.events(Event{Kind: "file", Input: f.in.name, Path: f.file.Path, Status: f.outcome, Reason: f.reason, Bytes: f.file.Size})
	}
	return strict
}

// process loads jobs on the workers, small files in groups. When ctx ends
// no new file starts, and the files in flight get the grace period to
// commit. A database error is retried until the outage limit; done, when
// set, sees every result.
func (e *Engine) process(ctx context.Context, s *Summary, jobs []job, done func(job, result)) error {
	work, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	stopHard := context.AfterFunc(ctx, func() {
		if e.scale.grace <= 0 {
			cancel(context.Cause(ctx))
			return
		}
		t := time.AfterFunc(e.scale.grace, func() {
			cancel(fmt.Errorf("%w: files still loading after the %s grace period were rolled back", context.Cause(ctx), e.scale.grace))
		})
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopHard()
	defer e.renew(work)()

	units := make(chan lease)
	var mu sync.Mutex
	report := func(j job, r result, took time.Duration) {
		if r.fatal == nil && r.outcome != "" {
			e.events(Event{Kind: "file", Input: j.in.name, Path: j.file.Path, FileType: j.typ.Name(),
				Status: r.outcome, Reason: r.reason, Bytes: j.file.Size, Counts: r.counts, Duration: took, FileTime: j.time})
		}
		mu.Lock()
		r.addTo(s)
		if done != nil {
			done(j, r)
		}
		mu.Unlock()
		if r.fatal != nil {
			cancel(r.fatal)
		}
	}
	release, released := e.releaser(work)
	var wg sync.WaitGroup
	for i := 0; i < e.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range units {
				e.leased(work, ctx, s.ID, l, report, release)
			}
		}()
	}
feed:
	for _, unit := range e.groups(jobs) {
		if ctx.Err() != nil || work.Err() != nil {
			break // a stop wins over an idle worker
		}
		mine, err := e.claim(work, unit)
		select {
		case units <- lease{unit, mine, err}:
		case <-ctx.Done():
			release(unit)
			break feed
		case <-work.Done():
			release(unit)
			break feed
		}
	}
	close(units)
	wg.Wait()
	released()
	if err := context.Cause(work); err != nil {
		return err
	}
	return context.Cause(ctx)
}

// result is what happened to one file.
type result struct {
	outcome string // one of plugins.Outcomes
	status  string // the ledger's status, when the ledger knows the file's current bytes
	reason  string
	counts  plugins.Counts
	id      int64 // the ledger row, on which the file's action is recorded
	fatal   error
}

// Why a file was skipped or held.
const (
	reasonLoaded     = "already loaded"
	reasonClaimed    = "claimed by another process"
	reasonVanished   = "vanished"
	reasonChanged    = "changed while read"
	reasonRecent     = "too recent (min_age)"
	reasonNotRegular = "not a regular file"
)

// known: the ledger holds the file's current bytes, loaded or failed.
func (r result) known() bool { return r.status != "" }

func (r result) addTo(s *Summary) {
	if r.outcome != "" {
		*s.Count(r.outcome)++
	}
	s.RecordsInserted += r.counts.Inserted
	s.RecordsDuplicate += r.counts.Duplicate
	s.RecordsRejected += r.counts.Rejected
}

// loaded logs a committed file and applies on_success.
func (e *Engine) loaded(ctx context.Context, j job, log *slog.Logger, c plugins.Counts) result {
	log.Info("file loaded", "records", c.Inserted+c.Duplicate+c.Rejected,
		"inserted", c.Inserted, "duplicate", c.Duplicate, "rejected", c.Rejected)
	return e.done(ctx, j, j.in.onSuccess, log, result{outcome: plugins.OutcomeProcessed, status: plugins.StatusProcessed, counts: c, id: c.FileID})
}

// tooBig fails a file over its input's max_file_size.
func (e *Engine) tooBig(ctx context.Context, j job, info *plugins.FileInfo, log *slog.Logger) (result, bool) {
	if j.in.maxSize == 0 || j.file.Size <= j.in.maxSize {
		return result{}, true
	}
	info.Size = j.file.Size
	return e.fail(ctx, j, *info, log, fmt.Errorf("file is %d bytes, over max_file_size (%d bytes)", j.file.Size, j.in.maxSize)), false
}

// readErr says what becomes of a file that could not be read.
func (e *Engine) readErr(ctx context.Context, j job, info plugins.FileInfo, log *slog.Logger, err error) (result, bool) {
	switch {
	case ctx.Err() != nil:
		return result{}, false
	case errors.Is(err, plugins.ErrVanished):
		// Another process took it (a replica, the uploader): not a failure.
		// Replicas see this all the time, so it is only worth a warning
		// when there are none.
		if e.claimer() != nil {
			log.Debug("file vanished before it was read; skipped")
		} else {
			log.Warn("file vanished before it was read; skipped")
		}
		return result{outcome: plugins.OutcomeSkipped, reason: reasonVanished}, false
	case errors.Is(err, plugins.ErrNotRegular):
		// A pipe or device swapped in: nothing to load, nothing to move.
		log.Warn("file is no longer a regular file; skipped", "error", oneLine(err.Error()))
		return result{outcome: plugins.OutcomeSkipped, reason: reasonNotRegular}, false
	case err != nil:
		return e.fail(ctx, j, info, log, fmt.Errorf("cannot read: %w", err)), false
	}
	return result{}, true
}

// fail records a file as failed, then applies on_failure: the record comes
// first so that a moved file is never without its reason. Only a lost
// database makes recording fatal; a file whose failure cannot be recorded
// stays where it is.
func (e *Engine) fail(ctx context.Context, j job, info plugins.FileInfo, log *slog.Logger, cause error) result {
	reason := oneLine(cause.Error())
	r := result{outcome: plugins.OutcomeFailed, status: plugins.StatusFailed, reason: reason}
	if errors.Is(cause, plugins.ErrAmbiguous) {
		r.outcome = plugins.OutcomeAmbiguous
	}
	id, err := e.ledger.Fail(ctx, info, reason)
	if err != nil {
		if errors.Is(err, plugins.ErrFatal) || ctx.Err() != nil {
			return result{fatal: err}
		}
		log.Error("file failed, and the ledger refused its failure; it stays where it is", "reason", reason, "error", oneLine(err.Error()))
		r.status = ""
		return r
	}
	log.Warn("file failed", "reason", reason)
	r.id = id
	return e.done(ctx, j, j.in.onFailure, log, r)
}

// done applies a file's action once the ledger knows it. A failed action
// leaves the file where it is, and its outcome becomes left.
func (e *Engine) done(ctx context.Context, j job, a action, log *slog.Logger, r result) result {
	if err := e.act(ctx, j, a, r.id); err != nil {
		log.Error("file action failed; the file stays where it is, and the action is retried on the next run",
			"action", a.String(), "error", oneLine(err.Error()))
		r.outcome, r.reason = plugins.OutcomeLeft, oneLine(a.String()+" failed: "+err.Error())
	}
	return r
}

func (e *Engine) act(ctx context.Context, j job, a action, id int64) error {
	if a.kind == "keep" {
		return nil
	}
	loc, err := j.in.apply(ctx, a, j.file.Path)
	if errors.Is(err, plugins.ErrVanished) {
		// Gone is fine (a replica moved it) unless it is still there: some
		// stores answer "not found" for a move they refused.
		rc, oerr := j.in.plugin.Open(ctx, j.file.Path)
		if oerr != nil {
			return nil
		}
		rc.Close()
		return fmt.Errorf("%w, yet the file is still there", err)
	}
	if err != nil {
		return err
	}
	e.located(ctx, j, id, loc)
	return nil
}

var errChanged = errors.New("file changed while it was read")

// retries is how often a file rolled back by a conflict is tried again.
const retries = 5

// retryConflicts runs fn again, with backoff, while a conflict with
// another writer rolls it back; it returns fn's last error, or the
// context's if the run ends while it waits.
func retryConflicts(ctx context.Context, log *slog.Logger, fn func() error) error {
	err := fn()
	for try := 1; errors.Is(err, plugins.ErrRetry) && try <= retries; try++ {
		log.Warn("rolled back by a conflict with another writer; trying again", "try", try, "error", err.Error())
		if !plugins.Wait(ctx, backoff(try)) {
			return ctx.Err()
		}
		err = fn()
	}
	return err
}

// backoff grows 4-fold from 50ms, with jitter so two writers that
// collided do not collide again.
func backoff(try int) time.Duration {
	d := 50 * time.Millisecond << (2 * (try - 1))
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

// invalid collects a file's invalid records under reject_file.
type invalid struct {
	n     int
	first []string
}

// take passes a batch on, unless its type fails a file with an invalid
// record and one was seen: reading goes on only to count and report every
// invalid record.
func (v *invalid) take(t plugins.FileType, b plugins.Batch) (plugins.Batch, bool) {
	if !t.RejectFile() {
		return b, true
	}
	v.add(b.Rejects)
	b.Rejects = nil
	return b, v.n == 0
}

func (v *invalid) add(rs []plugins.Reject) {
	for _, r := range rs {
		v.n++
		if len(v.first) < 3 {
			e := r.Errors[0]
			v.first = append(v.first, fmt.Sprintf("record %d %s: %s", r.Index, r.Pointer+e.Pointer, e.Message))
		}
	}
}

func (v *invalid) Error() string {
	s := fmt.Sprintf("%d invalid record(s): %s", v.n, strings.Join(v.first, "; "))
	if v.n > len(v.first) {
		s += fmt.Sprintf("; and %d more", v.n-len(v.first))
	}
	return s
}

type hashingReader struct {
	io.ReadCloser
	h hash.Hash
}

func (r hashingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.h.Write(p[:n])
	return n, err
}

func digest(open plugins.Opener) (int64, string, error) {
	rc, err := open()
	if err != nil {
		return 0, "", err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// maxReason bounds a reason in bytes: it goes into the ledger and logs.
const maxReason = 1000

// oneLine makes a reason fit the ledger: one line of valid UTF-8, cut at
// a character boundary.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\ufffd")), " ")
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
