package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/inputs/dir"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/schemas"
)

// harness is an inbox and a SQLite database, with input and output types
// a test chooses.
type harness struct {
	t       *testing.T
	inbox   string
	dbPath  string
	reg     *plugins.Registry
	router  *schemas.Set
	actions string // the input's on_success and on_failure
	output  string // the output's type
}

func newHarness(t *testing.T) *harness {
	d := t.TempDir()
	h := &harness{t: t, inbox: filepath.Join(d, "inbox"), dbPath: filepath.Join(d, "db.sqlite"), reg: plugins.NewRegistry(),
		actions: `on_success: "move:done", on_failure: "move:failed"`, output: "sqlite"}
	os.MkdirAll(h.inbox, 0o755)
	set, err := schemas.Load("../schemas", schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.router = set
	h.reg.AddInput(plugins.InputSpec{Name: "dir", New: func() plugins.Input { return &dir.Dir{} }})
	h.reg.AddOutput(sqliteSpec(nil))
	return h
}

// engine builds an engine reading the inbox with input type typ; keys are
// more YAML of the input entry.
func (h *harness) engine(typ, keys string, o engine.Options) *engine.Engine {
	h.t.Helper()
	y := fmt.Sprintf(`version: 1
name: scale-test
inputs:
  - {name: in, type: %s, path: %q, %s%s}
outputs:
  - {name: db, type: %s, path: %q}
`, typ, h.inbox, h.actions, keys, h.output, h.dbPath)
	cfg, err := config.Parse(filepath.Join(filepath.Dir(h.inbox), "c.yaml"), []byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		h.t.Fatal(err)
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	e, err := engine.New(context.Background(), cfg, h.reg, h.router, o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { e.Close() })
	return e
}

func (h *harness) write(name, body string) {
	if err := os.WriteFile(filepath.Join(h.inbox, name), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) exists(rel string) bool {
	_, err := os.Stat(filepath.Join(h.inbox, rel))
	return err == nil
}

func (h *harness) db() *sql.DB {
	db, err := sql.Open("sqlite", sqlite.DSN(h.dbPath))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { db.Close() })
	return db
}

func (h *harness) count(db *sql.DB, q string) int {
	h.t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// eventually polls cond until it holds, failing after a deadline.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not synchronisation
	}
}

// TestClaimedFileSkipped: a file another process holds a lease on is
// skipped quietly and left alone; once released, it loads.
func TestClaimedFileSkipped(t *testing.T) {
	h := newHarness(t)
	h.write("vehicles_status_1600000000.json", status(1))
	h.write("vehicles_status_1600000001.json", status(2))
	// The other process: a second handle on the database.
	other := &sqlite.SQLite{Path: h.dbPath}
	if err := other.Init(context.Background(), plugins.Env{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	unhold, err := other.Hold(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	defer unhold()
	if got, err := other.Claim(context.Background(), "other", "in", []string{"vehicles_status_1600000001.json"}, time.Hour); err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	var reasons []string
	var mu sync.Mutex
	e := h.engine("dir", "", engine.Options{Events: func(ev engine.Event) {
		if ev.Kind == "file" && ev.Status == "held" {
			mu.Lock()
			reasons = append(reasons, ev.Reason)
			mu.Unlock()
		}
	}})
	s, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.FilesProcessed != 1 || s.FilesHeld != 1 || s.FilesSkipped != 0 || s.FilesFailed != 0 || s.Status != "ok" {
		t.Fatalf("%+v", s)
	}
	if len(reasons) != 1 || reasons[0] != "claimed by another process" {
		t.Fatalf("skip reasons %q", reasons)
	}
	if !h.exists("vehicles_status_1600000001.json") || !h.exists("done/vehicles_status_1600000000.json") {
		t.Fatal("files not where they belong")
	}
	db := h.db()
	if n := h.count(db, "SELECT count(*) FROM claims WHERE holder <> 'other'"); n != 0 {
		t.Fatalf("%d leases left behind by the run", n)
	}
	if err := other.Release(context.Background(), "other", "in", []string{"vehicles_status_1600000001.json"}); err != nil {
		t.Fatal(err)
	}
	if s, err = e.Run(context.Background()); err != nil || s.FilesProcessed != 1 {
		t.Fatalf("after release: %+v %v", s, err)
	}
}

// outageDB is the SQLite output that loses its "server" at the first
// commit: from then on every call fails as a lost connection does, until
// the test brings it back.
type outageDB struct {
	typed `yaml:",inline"`
	trip  atomic.Bool // the next commit takes the database down
	down  atomic.Bool
	calls atomic.Int32 // calls refused
}

var errLost = plugins.Fatal(errors.New("read tcp 127.0.0.1:5432: connection reset by peer"))

func (d *outageDB) refuse() bool {
	if d.trip.CompareAndSwap(true, false) {
		d.down.Store(true)
	}
	if d.down.Load() {
		d.calls.Add(1)
		return true
	}
	return false
}

func (d *outageDB) Load(ctx context.Context, files []plugins.FileInfo) (plugins.GroupTx, error) {
	if d.down.Load() && d.refuse() {
		return nil, errLost
	}
	tx, err := d.SQLite.Load(ctx, files)
	if err != nil {
		return nil, err
	}
	return &outageTx{tx, d}, nil
}

func (d *outageDB) Lookup(ctx context.Context, input, path, sum string) (string, error) {
	if d.down.Load() && d.refuse() {
		return "", errLost
	}
	return d.SQLite.Lookup(ctx, input, path, sum)
}

func (d *outageDB) Claim(ctx context.Context, holder, input string, paths []string, ttl time.Duration) ([]string, error) {
	if d.down.Load() && d.refuse() {
		return nil, errLost
	}
	return d.SQLite.Claim(ctx, holder, input, paths, ttl)
}

func (d *outageDB) FinishRun(ctx context.Context, r plugins.RunSummary) error {
	if d.down.Load() && d.refuse() {
		return errLost
	}
	return d.SQLite.FinishRun(ctx, r)
}

func (d *outageDB) Sweep(ctx context.Context) error {
	if d.down.Load() && d.refuse() {
		return errLost
	}
	return d.SQLite.Sweep(ctx)
}

type outageTx struct {
	plugins.GroupTx
	d *outageDB
}

func (t *outageTx) Commit(ctx context.Context) ([]plugins.Outcome, error) {
	if t.d.refuse() {
		t.GroupTx.Rollback()
		return nil, errLost
	}
	return t.GroupTx.Commit(ctx)
}

func (h *harness) outage() *outageDB {
	db := &outageDB{}
	db.trip.Store(true)
	h.reg.AddOutput(plugins.OutputSpec{Name: "outage", New: func() any { return db }})
	h.output = "outage"
	return db
}

// bigStatus is a status file over the small-file size, so that it loads
// on its own, streamed, in its own transaction.
func bigStatus(n, records int) string {
	var b strings.Builder
	b.WriteString(`{"vehicle_status":[`)
	for k := range records {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"vehicle_id":"big%d-%06d","report_time":"2020-01-01T00:00:00Z","status":"a status long enough to make the file big"}`, n, k)
	}
	b.WriteString("]}")
	return b.String()
}

// TestOutageRetried: the database goes away at the first commit; the file
// rolls back, and it and the others are retried until the database is
// back. Both paths are covered: a big file alone and a group of small ones.
func TestOutageRetried(t *testing.T) {
	for _, big := range []bool{true, false} {
		t.Run(fmt.Sprint("big=", big), func(t *testing.T) {
			h := newHarness(t)
			db := h.outage()
			records := 0
			for i := range 6 {
				body, n := status(i), 1
				if big && i < 2 {
					body, n = bigStatus(i, 3000), 3000
				}
				h.write(fmt.Sprintf("vehicles_status_%d.json", 1600000000+i), body)
				records += n
			}
			var downs, ups atomic.Int32
			e := h.engine("dir", "", engine.Options{Workers: 2, DBRetryFor: time.Minute, Events: func(ev engine.Event) {
				switch {
				case ev.Kind == "database" && ev.Status == "down":
					downs.Add(1)
					go func() { // back once a few calls have been refused
						for db.calls.Load() < 4 {
							time.Sleep(time.Millisecond)
						}
						db.down.Store(false)
					}()
				case ev.Kind == "database" && ev.Status == "up":
					ups.Add(1)
				}
			}})
			s, err := e.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if s.FilesProcessed != 6 || s.RecordsInserted != int64(records) || s.FilesFailed != 0 || s.Status != "ok" {
				t.Fatalf("%+v", s)
			}
			if downs.Load() != 1 || ups.Load() != 1 || db.calls.Load() < 4 {
				t.Fatalf("%d outages, %d recoveries, %d refused calls", downs.Load(), ups.Load(), db.calls.Load())
			}
			c := h.db()
			if n := h.count(c, "SELECT count(*) FROM vehicles_status"); n != records {
				t.Fatalf("%d records, want %d", n, records)
			}
			if n := h.count(c, "SELECT count(*) FROM files WHERE status = 'processed'"); n != 6 {
				t.Fatalf("%d ledger rows", n)
			}
			if n := h.count(c, "SELECT count(*) FROM claims"); n != 0 {
				t.Fatalf("%d leases left", n)
			}
		})
	}
}

// TestOutageGivesUp: a database that stays away ends the run with a clear
// error once the retry limit is spent; unfinished files stay untouched.
func TestOutageGivesUp(t *testing.T) {
	h := newHarness(t)
	db := h.outage()
	db.trip.Store(false)
	for i := range 4 {
		h.write(fmt.Sprintf("vehicles_status_%d.json", 1600000000+i), bigStatus(i, 3000))
	}
	e := h.engine("dir", "", engine.Options{Workers: 1, DBRetryFor: 300 * time.Millisecond, Events: func(ev engine.Event) {
		if ev.Kind == "file" && ev.Status == "processed" {
			db.trip.Store(true)
		}
	}})
	start := time.Now()
	s, err := e.Run(context.Background())
	if err == nil || !errors.Is(err, plugins.ErrFatal) || !strings.Contains(err.Error(), "database unreachable for 300ms") {
		t.Fatalf("run ended with %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("gave up after %v", took)
	}
	if s.FilesProcessed != 1 || s.Status != "failed" {
		t.Fatalf("%+v", s)
	}
	if !h.exists("done/vehicles_status_1600000000.json") {
		t.Fatal("the file loaded before the outage was not moved")
	}
	for i := 1; i < 4; i++ {
		name := fmt.Sprintf("vehicles_status_%d.json", 1600000000+i)
		if b, err := os.ReadFile(filepath.Join(h.inbox, name)); err != nil || string(b) != bigStatus(i, 3000) {
			t.Fatalf("%s left its input or changed: %v", name, err)
		}
	}
}

// pollDir is the dir input without change notifications.
type pollDir struct {
	Dir dir.Dir `yaml:",inline"`
}

func (p *pollDir) Init(ctx context.Context, env plugins.Env) error  { return p.Dir.Init(ctx, env) }
func (p *pollDir) List(ctx context.Context) ([]plugins.File, error) { return p.Dir.List(ctx) }
func (p *pollDir) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	return p.Dir.Open(ctx, path)
}
func (p *pollDir) Move(ctx context.Context, path, d string) (string, error) {
	return p.Dir.Move(ctx, path, d)
}
func (p *pollDir) Delete(ctx context.Context, path string) error { return p.Dir.Delete(ctx, path) }

// watching runs Watch in the background; stop cancels it and returns its
// error.
func watching(e *engine.Engine, o engine.WatchOptions) (stop func() error) {
	cancel, wait := watchingApart(e, o)
	return func() error { cancel(); return wait() }
}

// watchingApart is watching with the cancel and the wait apart.
func watchingApart(e *engine.Engine, o engine.WatchOptions) (cancel func(), wait func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx, o) }()
	return cancel, sync.OnceValue(func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("Watch did not return")
		}
	})
}

// TestWatchPolls: without notifications, files dropped while Watch runs
// load within two intervals.
func TestWatchPolls(t *testing.T) {
	h := newHarness(t)
	h.reg.AddInput(plugins.InputSpec{Name: "poll", New: func() plugins.Input { return &pollDir{} }})
	h.write("vehicles_status_1600000000.json", status(0))
	loops := make(chan engine.Loop, 100)
	var mu sync.Mutex
	var all []engine.Loop
	const interval = 500 * time.Millisecond
	e := h.engine("poll", "", engine.Options{})
	stop := watching(e, engine.WatchOptions{Interval: interval, Loop: func(l engine.Loop) {
		mu.Lock()
		all = append(all, l)
		mu.Unlock()
		select {
		case loops <- l:
		default:
		}
	}})
	first := <-loops
	if first.Err != nil || !first.DatabaseOK || first.Summary.FilesProcessed != 1 || first.Summary.ID == 0 {
		t.Fatalf("first loop: %+v", first)
	}
	for l := range loops { // until one finds nothing
		if l.Summary.ID == 0 {
			break
		}
	}
	db := h.db()
	for round := 1; round <= 2; round++ {
		dropped := time.Now()
		for i := range 3 {
			h.write(fmt.Sprintf("vehicles_status_%d.json", 1600000000+10*round+i), status(10*round+i))
		}
		want := 1 + 3*round
		eventually(t, "dropped files loaded", 2*interval, func() bool {
			return h.count(db, "SELECT count(*) FROM files WHERE status = 'processed'") == want
		})
		t.Logf("round %d: loaded %v after the drop", round, time.Since(dropped).Round(time.Millisecond))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Loops that found nothing recorded no run.
	recorded, idle := 0, 0
	for _, l := range all {
		if l.Err != nil || !l.DatabaseOK {
			t.Fatalf("loop %+v", l)
		}
		if l.Summary.ID != 0 {
			recorded++
		} else {
			idle++
		}
	}
	if n := h.count(db, "SELECT count(*) FROM runs WHERE status = 'ok'"); n != recorded || n < 3 || idle == 0 {
		t.Fatalf("%d runs recorded for %d loops with files and %d idle ones", n, recorded, idle)
	}
}

// TestWatchNotified: a dir input wakes Watch long before its interval, but
// not before min_age.
func TestWatchNotified(t *testing.T) {
	for _, minAge := range []time.Duration{0, 700 * time.Millisecond} {
		t.Run(fmt.Sprint("min_age=", minAge), func(t *testing.T) {
			h := newHarness(t)
			loops := make(chan engine.Loop, 100)
			e := h.engine("dir", fmt.Sprintf(", min_age: %s", minAge), engine.Options{})
			stop := watching(e, engine.WatchOptions{Interval: time.Hour, Loop: func(l engine.Loop) { loops <- l }})
			defer stop()
			<-loops // the first, empty loop
			dropped := time.Now()
			h.write("vehicles_status_1600000000.json", status(0))
			db := h.db()
			eventually(t, "notified file loaded", 20*time.Second, func() bool {
				return h.count(db, "SELECT count(*) FROM files WHERE status = 'processed'") == 1
			})
			took := time.Since(dropped)
			if took < minAge {
				t.Fatalf("loaded %v after the drop, before min_age %v", took, minAge)
			}
			if took > minAge+10*time.Second {
				t.Fatalf("loaded only %v after the drop", took)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWatchKeepsQuiet: with keep, a loaded file is not read again while it
// is unchanged, and loops with nothing new record no run; a rewritten file
// is loaded again.
func TestWatchKeepsQuiet(t *testing.T) {
	h := newHarness(t)
	h.reg.AddInput(plugins.InputSpec{Name: "poll", New: func() plugins.Input { return &pollDir{} }})
	h.write("vehicles_status_1600000000.json", status(0))
	loops := make(chan engine.Loop, 100)
	h.actions = "on_success: keep, on_failure: keep"
	e := h.engine("poll", "", engine.Options{})
	stop := watching(e, engine.WatchOptions{Interval: 50 * time.Millisecond, Loop: func(l engine.Loop) { loops <- l }})
	for i := range 5 {
		l := <-loops
		if l.Err != nil {
			t.Fatal(l.Err)
		}
		if got := l.Summary.FilesProcessed + l.Summary.FilesSkipped; (i == 0) != (got == 1) {
			t.Fatalf("loop %d dealt with %d files", i, got)
		}
	}
	later := time.Now().Add(time.Minute)
	h.write("vehicles_status_1600000000.json", status(7))
	os.Chtimes(filepath.Join(h.inbox, "vehicles_status_1600000000.json"), later, later)
	for l := range loops {
		if l.Summary.FilesProcessed == 1 {
			break
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	db := h.db()
	if n := h.count(db, "SELECT count(*) FROM runs"); n != 2 {
		t.Fatalf("%d runs recorded, want 2", n)
	}
	if n := h.count(db, "SELECT count(*) FROM files"); n != 2 {
		t.Fatalf("%d ledger rows, want 2", n)
	}
}

// gated is the dir input whose file "vehicles_status_1600000099.json"
// cannot be read until the gate opens (or its context ends).
type gated struct {
	dir.Dir `yaml:",inline"`
	opened  chan struct{}
	gate    chan struct{}
	once    sync.Once
}

const slowFile = "vehicles_status_1600000099.json"

func (g *gated) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if p == slowFile {
		g.once.Do(func() { close(g.opened) })
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Dir.Open(ctx, p)
}

// TestWatchStopsGracefully: when Watch's context ends, the file in flight
// commits within the grace period, no new file starts, and Watch returns
// nil; past the grace period the file in flight rolls back instead.
func TestWatchStopsGracefully(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprint("commits=", commit), func(t *testing.T) {
			h := newHarness(t)
			g := &gated{opened: make(chan struct{}), gate: make(chan struct{})}
			h.reg.AddInput(plugins.InputSpec{Name: "gated", New: func() plugins.Input { return g }})
			h.write(slowFile, bigStatus(99, 3000)) // alone in its unit of work
			for i := range 5 {
				h.write(fmt.Sprintf("vehicles_status_%d.json", 1600000100+i), status(100+i))
			}
			grace := time.Hour
			if !commit {
				grace = 200 * time.Millisecond
			}
			e := h.engine("gated", "", engine.Options{Workers: 1, Grace: grace})
			cancel, wait := watchingApart(e, engine.WatchOptions{Interval: time.Hour})
			<-g.opened // the slow file is the oldest: it goes first
			cancel()
			if commit {
				close(g.gate) // the file in flight may still finish
			}
			if err := wait(); err != nil {
				t.Fatalf("Watch: %v", err)
			}
			db := h.db()
			loaded := h.count(db, "SELECT count(*) FROM files WHERE status = 'processed'")
			if commit && h.count(db, "SELECT count(*) FROM vehicles_status") != 3000 {
				t.Fatal("the slow file's records are not all there")
			}
			want := 0
			if commit {
				want = 1
			}
			if loaded != want || h.exists("done/"+slowFile) != commit || h.exists(slowFile) == commit {
				t.Fatalf("%d files loaded; slow file moved: %v", loaded, h.exists("done/"+slowFile))
			}
			for i := range 5 {
				if !h.exists(fmt.Sprintf("vehicles_status_%d.json", 1600000100+i)) {
					t.Fatalf("file %d started after the stop", i)
				}
			}
			if n := h.count(db, "SELECT count(*) FROM runs WHERE status <> 'ok' OR finished_at IS NULL"); n != 0 {
				t.Fatalf("%d runs not finished ok", n)
			}
			if n := h.count(db, "SELECT count(*) FROM claims"); n != 0 {
				t.Fatalf("%d leases left", n)
			}
		})
	}
}

// TestWatchRidesOutOutage: in watch mode an outage longer than the retry
// limit fails the loop, not the process; loops report the database down
// until it is back, then the files load and the interrupted run is
// recorded as finished.
func TestWatchRidesOutOutage(t *testing.T) {
	h := newHarness(t)
	db := h.outage()
	for i := range 3 {
		h.write(fmt.Sprintf("vehicles_status_%d.json", 1600000000+i), bigStatus(i, 3000))
	}
	loops := make(chan engine.Loop, 100)
	e := h.engine("dir", "", engine.Options{Workers: 1, DBRetryFor: 100 * time.Millisecond})
	stop := watching(e, engine.WatchOptions{Interval: 50 * time.Millisecond, Loop: func(l engine.Loop) { loops <- l }})
	defer stop()
	first := <-loops
	if first.Err == nil || first.DatabaseOK || !strings.Contains(first.Err.Error(), "database unreachable") {
		t.Fatalf("first loop: %+v", first)
	}
	if l := <-loops; l.DatabaseOK || l.Err == nil {
		t.Fatalf("a loop while the database is away: %+v", l)
	}
	db.down.Store(false)
	c := h.db()
	for l := range loops {
		if l.Err != nil {
			continue
		}
		if h.count(c, "SELECT count(*) FROM files WHERE status = 'processed'") == 3 {
			break
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := h.count(c, "SELECT count(*) FROM runs WHERE finished_at IS NULL OR status = 'running'"); n != 0 {
		t.Fatalf("%d runs left unfinished", n)
	}
	if n := h.count(c, "SELECT count(*) FROM runs WHERE status = 'failed'"); n != 1 {
		t.Fatalf("%d failed runs, want the one the outage ended", n)
	}
	if n := h.count(c, "SELECT count(*) FROM vehicles_status"); n != 9000 {
		t.Fatalf("%d records", n)
	}
}

// deadProcess leaves what a killed process would: its run, running, and an
// hour's lease on path, both under a holder whose lock is gone.
func (h *harness) deadProcess(holder, path string) (run int64) {
	h.t.Helper()
	ctx := context.Background()
	d := &sqlite.SQLite{Path: h.dbPath}
	if err := d.Init(ctx, plugins.Env{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		h.t.Fatal(err)
	}
	defer d.Close()
	if err := d.Migrate(ctx); err != nil {
		h.t.Fatal(err)
	}
	release, err := d.Hold(ctx, holder)
	if err != nil {
		h.t.Fatal(err)
	}
	run, err = d.StartRun(ctx, "scale-test", holder)
	if err != nil {
		h.t.Fatal(err)
	}
	if got, err := d.Claim(ctx, holder, "in", []string{path}, time.Hour); err != nil || len(got) != 1 {
		h.t.Fatal(got, err)
	}
	if err := release(); err != nil { // as the process's death would
		h.t.Fatal(err)
	}
	return run
}

// TestDeadHolderTakenOver: a run, and each watch loop, take over at once
// the hour-long leases of a process that died and close its run as
// aborted; a run records its own holder.
func TestDeadHolderTakenOver(t *testing.T) {
	h := newHarness(t)
	h.write("vehicles_status_1600000000.json", status(0))
	dead := h.deadProcess("dead-1", "vehicles_status_1600000000.json")
	e := h.engine("dir", "", engine.Options{})
	s, err := e.Run(context.Background())
	if err != nil || s.FilesProcessed != 1 || s.FilesSkipped != 0 {
		t.Fatalf("%+v %v", s, err)
	}
	db := h.db()
	aborted := func(run int64) bool {
		return h.count(db, fmt.Sprintf("SELECT count(*) FROM runs WHERE id = %d AND status = 'aborted' AND finished_at IS NOT NULL", run)) == 1
	}
	if !aborted(dead) {
		t.Fatal("the dead process's run was not closed as aborted")
	}
	if n := h.count(db, fmt.Sprintf("SELECT count(*) FROM runs WHERE id = %d AND status = 'ok' AND holder LIKE '%%/%d/%%'", s.ID, os.Getpid())); n != 1 {
		t.Fatal("the run did not record its holder")
	}

	loops := make(chan engine.Loop, 100)
	stop := watching(e, engine.WatchOptions{Interval: 100 * time.Millisecond, Loop: func(l engine.Loop) { loops <- l }})
	defer stop()
	<-loops
	// The lease before the file: the loop that finds the file finds it.
	dead = h.deadProcess("dead-2", "vehicles_status_1600000001.json")
	h.write("vehicles_status_1600000001.json", status(1))
	for loaded := false; !loaded; {
		select {
		case l := <-loops:
			if l.Err != nil || l.Summary.FilesSkipped != 0 {
				t.Fatalf("%+v %v", l.Summary, l.Err)
			}
			loaded = l.Summary.FilesProcessed == 1
		case <-time.After(30 * time.Second):
			t.Fatal("the file was not loaded")
		}
	}
	if !aborted(dead) {
		t.Fatal("the watch loop did not close the dead process's run as aborted")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := h.count(db, "SELECT count(*) FROM runs WHERE status = 'running'"); n != 0 {
		t.Fatalf("%d runs left running", n)
	}
}
