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
	Status   string // processed | failed | skipped
	Reason   string // why it failed or was skipped
	Bytes    int64
	Counts   plugins.Counts
	Duration time.Duration
}

// job is one matched file.
type job struct {
	in   *input
	file plugins.File
	typ  plugins.FileType
	time *time.Time
}

// list lists every input and routes each file. Unmatched files are counted
// and left alone.
func (e *Engine) list(ctx context.Context) (jobs []job, unmatched int64, err error) {
	now := time.Now()
	for _, in := range e.inputs {
		files, err := in.plugin.List(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("input %s: listing: %w", in.name, err)
		}
		for _, f := range files {
			if in.owns(f.Path) {
				continue
			}
			if in.minAge > 0 && !f.ModTime.IsZero() && now.Sub(f.ModTime) < in.minAge {
				e.log.Debug("file too recent; left for a later run", "input", in.name, "path", f.Path)
				continue
			}
			typ, ts, err := e.router.Route(base(f.Path))
			if err != nil {
				e.log.Warn("file left alone", "input", in.name, "path", f.Path, "reason", err.Error())
			}
			if typ == nil {
				unmatched++
				e.log.Debug("file matches no file type", "input", in.name, "path", f.Path)
				continue
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
	return jobs, unmatched, nil
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
	if err := e.ledger.Migrate(ctx); err != nil {
		return s, err
	}
	e.views(ctx)
	unhold, err := e.hold(ctx)
	if err != nil {
		return s, err
	}
	defer unhold()
	id, err := e.ledger.StartRun(ctx, e.name, e.scale.holder)
	if err != nil {
		return s, err
	}
	s.ID = id
	runErr := e.run(ctx, &s)
	s.Finished = time.Now()
	switch {
	case runErr != nil:
		s.Status = "failed"
	case s.FilesFailed > 0 || s.RecordsRejected > 0:
		s.Status = "partial"
	default:
		s.Status = "ok"
	}
	// The run row is written even when the run was cancelled.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.ledger.FinishRun(fctx, s); err != nil && runErr == nil {
		runErr = err
	}
	return s, runErr
}

func (e *Engine) run(ctx context.Context, s *Summary) error {
	jobs, unmatched, err := e.list(ctx)
	s.FilesUnmatched = unmatched
	if err != nil {
		return err
	}
	if err := e.sweep(ctx); err != nil {
		e.log.Debug("expired leases not swept", "error", err.Error())
	}
	e.events(Event{Kind: "listed", Total: len(jobs)})
	return e.process(ctx, s, jobs, nil)
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
		if r.fatal == nil && r.status != "" {
			e.events(Event{Kind: "file", Input: j.in.name, Path: j.file.Path, FileType: j.typ.Name(),
				Status: r.status, Reason: r.reason, Bytes: j.file.Size, Counts: r.counts, Duration: took})
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
	status string // processed | failed | skipped
	reason string
	counts plugins.Counts
	fatal  error
}

// Why a file was skipped.
const (
	reasonLoaded   = "already loaded"
	reasonClaimed  = "claimed by another process"
	reasonVanished = "vanished"
	reasonChanged  = "changed while read"
)

// known: the ledger holds the file's current bytes, loaded or failed.
func (r result) known() bool {
	return r.status == plugins.StatusProcessed || r.status == plugins.StatusFailed || r.reason == reasonLoaded
}

func (r result) addTo(s *Summary) {
	switch r.status {
	case plugins.StatusProcessed:
		s.FilesProcessed++
	case plugins.StatusFailed:
		s.FilesFailed++
	case "skipped":
		s.FilesSkipped++
	}
	s.RecordsInserted += r.counts.Inserted
	s.RecordsDuplicate += r.counts.Duplicate
	s.RecordsRejected += r.counts.Rejected
}

// file loads one file: hash, ledger check, one transaction, then the
// file's action. Only database trouble is fatal.
func (e *Engine) file(ctx context.Context, run int64, j job) result {
	log := e.log.With("input", j.in.name, "path", j.file.Path, "file_type", j.typ.Name())
	info := plugins.FileInfo{Run: run, Input: j.in.name, Path: j.file.Path, FileType: j.typ.Name(), Time: j.time}
	open := func() (io.ReadCloser, error) { return j.in.plugin.Open(ctx, j.file.Path) }

	if r, ok := e.tooBig(ctx, j, &info, log); !ok {
		return r
	}
	size, sum, err := digest(open)
	if r, ok := e.readErr(ctx, j, info, log, err); !ok {
		return r
	}
	info.Size, info.SHA256 = size, sum

	status, err := e.ledger.Lookup(ctx, j.in.name, j.file.Path, sum)
	if err != nil {
		return result{fatal: err}
	}
	if status == plugins.StatusProcessed {
		// Loaded before: finish what a crash may have left undone.
		e.act(ctx, j, j.in.onSuccess, log)
		log.Debug("file already loaded")
		return result{status: "skipped", reason: reasonLoaded}
	}

	var counts plugins.Counts
	err = retryConflicts(ctx, log, func() (err error) {
		counts, err = e.load(ctx, j, info, open)
		return err
	})
	switch {
	case errors.Is(err, plugins.ErrLoaded):
		e.act(ctx, j, j.in.onSuccess, log)
		return result{status: "skipped", reason: reasonLoaded}
	case errors.Is(err, errChanged):
		log.Warn("file changed while it was read; it will be loaded on a later run")
		return result{status: "skipped", reason: reasonChanged}
	case errors.Is(err, plugins.ErrFatal) || ctx.Err() != nil:
		return result{fatal: err}
	case err != nil:
		return e.fail(ctx, j, info, log, err)
	}
	log.Info("file loaded", "records", counts.Inserted+counts.Duplicate+counts.Rejected,
		"inserted", counts.Inserted, "duplicate", counts.Duplicate, "rejected", counts.Rejected)
	e.act(ctx, j, j.in.onSuccess, log)
	return result{status: plugins.StatusProcessed, counts: counts}
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
		return result{status: "skipped", reason: reasonVanished}, false
	case err != nil:
		return e.fail(ctx, j, info, log, fmt.Errorf("cannot read: %w", err)), false
	}
	return result{}, true
}

// fail records a file as failed, then applies on_failure: the record comes
// first so that a moved file is never without its reason.
func (e *Engine) fail(ctx context.Context, j job, info plugins.FileInfo, log interface {
	Warn(string, ...any)
	Error(string, ...any)
}, cause error) result {
	reason := oneLine(cause.Error())
	if err := e.ledger.Fail(ctx, info, reason); err != nil {
		return result{fatal: err}
	}
	e.log.Warn("file failed", "input", j.in.name, "path", j.file.Path, "reason", reason)
	e.act(ctx, j, j.in.onFailure, e.log.With("input", j.in.name, "path", j.file.Path))
	return result{status: plugins.StatusFailed, reason: reason}
}

func (e *Engine) act(ctx context.Context, j job, a action, log interface{ Error(string, ...any) }) {
	if a.kind == "keep" {
		return
	}
	loc, err := j.in.apply(ctx, a, j.file.Path)
	if err != nil {
		if !errors.Is(err, plugins.ErrVanished) {
			log.Error("file action failed; it will be retried on the next run", "action", a.String(), "error", err.Error())
		}
		return
	}
	e.located(ctx, j, loc)
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

// load streams the file into every output's transaction and commits the
// ledger's first: its commit is the one that counts.
func (e *Engine) load(ctx context.Context, j job, info plugins.FileInfo, open plugins.Opener) (plugins.Counts, error) {
	txs := make([]plugins.FileTx, 0, len(e.outs))
	rollback := func() {
		for _, tx := range txs {
			tx.Rollback()
		}
	}
	for _, o := range e.outs {
		tx, err := o.plugin.Begin(ctx, info)
		if err != nil {
			rollback()
			return plugins.Counts{}, fmt.Errorf("output %s: %w", o.name, err)
		}
		txs = append(txs, tx)
	}

	inv := &invalid{}
	h := sha256.New()
	first := true
	hashed := func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil || !first {
			return rc, err
		}
		first = false
		return hashingReader{rc, h}, nil
	}
	err := j.typ.Decode(ctx, hashed, plugins.Limits{}, func(b plugins.Batch) error {
		if j.typ.RejectFile() {
			inv.add(b.Rejects)
			if inv.n > 0 {
				return nil // keep reading to count and report every invalid record
			}
			b.Rejects = nil
		}
		for i, tx := range txs {
			if err := tx.Add(ctx, b); err != nil {
				return fmt.Errorf("output %s: %w", e.outs[i].name, err)
			}
		}
		return nil
	})
	if err == nil && inv.n > 0 {
		err = inv
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != info.SHA256 {
		err = errChanged
	}
	if err != nil {
		rollback()
		return plugins.Counts{}, err
	}
	counts, err := txs[0].Commit(ctx)
	if err != nil {
		rollback()
		return counts, err
	}
	for i, tx := range txs[1:] {
		if _, err := tx.Commit(ctx); err != nil {
			e.log.Error("output failed after the ledger commit", "output", e.outs[i+1].name, "path", info.Path, "error", err.Error())
		}
	}
	return counts, nil
}

// invalid collects a file's invalid records under reject_file.
type invalid struct {
	n     int
	first []string
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

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1000 {
		s = s[:997] + "..."
	}
	return s
}
