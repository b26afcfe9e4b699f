package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/inputs/dir"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/schemas"
)

// flaky is the real dir input with failures injected where a test wants
// them: a file that vanishes after listing, one that cannot be read, a
// crash right before a move.
type flaky struct {
	dir.Dir  `yaml:",inline"`
	mu       sync.Mutex
	vanish   string
	unread   string
	noMoves  bool
	moveSeen int
	stay     string // its move fails
	lie      string // its move answers "vanished" and does nothing
	steal    string // a replica moves it away just before our move
}

func (f *flaky) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if p == f.vanish {
		os.Remove(filepath.Join(f.Path, p))
	}
	if p == f.unread {
		return nil, errors.New("permission denied")
	}
	return f.Dir.Open(ctx, p)
}

func (f *flaky) Move(ctx context.Context, p, d string) (string, error) {
	f.mu.Lock()
	f.moveSeen++
	stop := f.noMoves
	f.mu.Unlock()
	switch {
	case stop:
		return "", errors.New("simulated crash before the move")
	case p == f.stay:
		return "", errors.New("permission denied")
	case p == f.lie:
		return "", plugins.ErrVanished
	case p == f.steal:
		os.Remove(filepath.Join(f.Path, p))
	}
	return f.Dir.Move(ctx, p, d)
}

type fixture struct {
	t      *testing.T
	inbox  string
	cfg    *config.Config
	reg    *plugins.Registry
	input  *flaky
	router *schemas.Set
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	os.MkdirAll(inbox, 0o755)
	yaml := fmt.Sprintf(`version: 1
name: engine-test
inputs:
  - {name: in, type: flaky, path: %q, on_success: "move:done", on_failure: "move:failed"}
outputs:
  - {name: db, type: sqlite, path: %q}
`, inbox, filepath.Join(dir, "db.sqlite"))
	cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	set, err := schemas.Load("../schemas", schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, inbox: inbox, cfg: cfg, reg: plugins.NewRegistry(), router: set}
	f.reg.AddInput(plugins.InputSpec{Name: "flaky", New: func() plugins.Input {
		f.input = &flaky{}
		return f.input
	}})
	f.reg.AddOutput(sqliteSpec(nil))
	return f
}

func (f *fixture) write(name, body string) {
	if err := os.WriteFile(filepath.Join(f.inbox, name), []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) run(prepare func(*flaky)) engine.Summary {
	f.t.Helper()
	s, _ := f.outcomes(prepare)
	return s
}

func (f *fixture) exists(rel string) bool {
	_, err := os.Stat(filepath.Join(f.inbox, rel))
	return err == nil
}

func status(n int) string {
	return fmt.Sprintf(`{"vehicle_status":[{"vehicle_id":"v%d","report_time":"2020-01-01T00:00:00Z","status":"ok"}]}`, n)
}

func TestCrashBetweenCommitAndMoveHeals(t *testing.T) {
	f := newFixture(t)
	f.write("vehicles_status_1600000000.json", status(1))
	f.write("vehicles_status_1600000001.json", status(2))
	s := f.run(func(in *flaky) { in.noMoves = true })
	// Committed but not moved: left, and the run says so.
	if s.FilesLeft != 2 || s.FilesProcessed != 0 || s.RecordsInserted != 2 || f.input.moveSeen != 2 || s.Status != "partial" {
		t.Fatalf("first run: %+v, %d moves tried", s, f.input.moveSeen)
	}
	if !f.exists("vehicles_status_1600000000.json") {
		t.Fatal("file moved although the move 'crashed'")
	}
	s = f.run(nil)
	if s.FilesSkipped != 2 || s.RecordsInserted != 0 || s.FilesProcessed != 0 {
		t.Fatalf("second run loaded again: %+v", s)
	}
	if !f.exists("done/vehicles_status_1600000000.json") || !f.exists("done/vehicles_status_1600000001.json") {
		t.Fatal("pending moves were not completed")
	}
}

func TestVanishedAndUnreadable(t *testing.T) {
	f := newFixture(t)
	f.write("vehicles_status_1600000000.json", status(1))
	f.write("vehicles_status_1600000001.json", status(2))
	f.write("vehicles_status_1600000002.json", status(3))
	s := f.run(func(in *flaky) {
		in.vanish = "vehicles_status_1600000000.json"
		in.unread = "vehicles_status_1600000001.json"
	})
	// Vanished: someone else took it, so skipped, not failed.
	if s.FilesFailed != 1 || s.FilesSkipped != 1 || s.FilesProcessed != 1 || s.Status != "partial" {
		t.Fatalf("%+v", s)
	}
	if !f.exists("failed/vehicles_status_1600000001.json") || !f.exists("done/vehicles_status_1600000002.json") {
		t.Fatal("files not where they belong")
	}
	// The unreadable file is retried once it can be read.
	os.Rename(filepath.Join(f.inbox, "failed/vehicles_status_1600000001.json"), filepath.Join(f.inbox, "vehicles_status_1600000001.json"))
	s = f.run(nil)
	if s.FilesProcessed != 1 || s.RecordsInserted != 1 {
		t.Fatalf("retry: %+v", s)
	}
}

func TestOrderAndUnmatched(t *testing.T) {
	f := newFixture(t)
	// The same key in two files: the older file's record is kept.
	f.write("vehicles_status_1600000009.json", `{"vehicle_status":[{"vehicle_id":"a","report_time":"2020-01-01T00:00:00Z","status":"newer"}]}`)
	f.write("vehicles_status_1600000001.json", `{"vehicle_status":[{"vehicle_id":"a","report_time":"2020-01-01T00:00:00Z","status":"older"}]}`)
	f.write("readme.md", "hello")
	f.write(".vehicles_status_1600000002.json", "partial upload")
	e, err := engine.New(context.Background(), f.cfg, f.reg, f.router, engine.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.FilesUnmatched != 1 || s.RecordsInserted != 1 || s.RecordsDuplicate != 1 {
		t.Fatalf("%+v", s)
	}
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(filepath.Dir(f.inbox), "db.sqlite")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var path string
	if err := db.QueryRow("SELECT f.path FROM vehicles_status r JOIN files f ON f.id = r._file_id").Scan(&path); err != nil {
		t.Fatal(err)
	}
	if path != "vehicles_status_1600000001.json" {
		t.Fatalf("kept the record of %s; files load in file-time order, so the older copy wins", path)
	}
	if !f.exists("readme.md") || !f.exists(".vehicles_status_1600000002.json") {
		t.Fatal("unmatched or hidden file touched")
	}
}

func TestConfigErrors(t *testing.T) {
	f := newFixture(t)
	bad := strings.Replace(mustRead(t, f.cfg.Path, f), `on_success: "move:done"`, `on_success: "move:../up", speed: 3`, 1)
	cfg, err := config.Parse(f.cfg.Path, []byte(bad), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.New(context.Background(), cfg, f.reg, f.router, engine.Options{})
	var ps config.Problems
	if !errors.As(err, &ps) || !strings.Contains(err.Error(), `unknown key "speed"`) {
		t.Fatalf("got %v", err)
	}
}

func mustRead(t *testing.T, _ string, f *fixture) string {
	return fmt.Sprintf(`version: 1
name: engine-test
inputs:
  - {name: in, type: flaky, path: %q, on_success: "move:done", on_failure: "move:failed"}
outputs:
  - {name: db, type: sqlite, path: %q}
`, f.inbox, filepath.Join(filepath.Dir(f.inbox), "db.sqlite"))
}

func TestMinAgeAndMaxSize(t *testing.T) {
	f := newFixture(t)
	f.cfg.Inputs[0].Node.Content = append(f.cfg.Inputs[0].Node.Content, scalar("min_age"), scalar("1h"), scalar("max_file_size"), scalar("100B"))
	f.write("vehicles_status_1600000000.json", status(1))
	old := time.Now().Add(-2 * time.Hour)
	f.write("vehicles_status_1600000001.json", status(2))
	os.Chtimes(filepath.Join(f.inbox, "vehicles_status_1600000001.json"), old, old)
	big := `{"vehicle_status":[` + strings.Repeat(`{"vehicle_id":"x","report_time":"2020-01-01T00:00:00Z","status":"ok"},`, 3) + `{"vehicle_id":"y","report_time":"2020-01-01T00:00:00Z","status":"ok"}]}`
	f.write("vehicles_status_1600000002.json", big)
	os.Chtimes(filepath.Join(f.inbox, "vehicles_status_1600000002.json"), old, old)
	s := f.run(nil)
	if s.FilesProcessed != 1 || s.FilesFailed != 1 || s.RecordsInserted != 1 {
		t.Fatalf("%+v", s)
	}
	if !f.exists("vehicles_status_1600000000.json") {
		t.Fatal("a file younger than min_age was touched")
	}
	if !f.exists("failed/vehicles_status_1600000002.json") {
		t.Fatal("the file over max_file_size was not failed")
	}
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

func TestBadCommonKeys(t *testing.T) {
	for _, kv := range [][2]string{{"max_file_size", "lots"}, {"min_age", "-1s"}, {"on_success", "move:../out"}, {"on_failure", "shred"}} {
		f := newFixture(t)
		n := f.cfg.Inputs[0].Node
		for i := 0; i < len(n.Content); i += 2 {
			if n.Content[i].Value == kv[0] {
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				break
			}
		}
		n.Content = append(n.Content, scalar(kv[0]), scalar(kv[1]))
		_, err := engine.New(context.Background(), f.cfg, f.reg, f.router, engine.Options{})
		var ps config.Problems
		if !errors.As(err, &ps) {
			t.Errorf("%s: %s gave %v, want a config problem", kv[0], kv[1], err)
		}
	}
}

// conflicted is the real SQLite output whose first commits fail the way a
// Postgres deadlock does.
type conflicted struct {
	typed `yaml:",inline"`
	fails int
}

func (c *conflicted) Load(ctx context.Context, files []plugins.FileInfo) (plugins.GroupTx, error) {
	tx, err := c.typed.Load(ctx, files)
	if err != nil {
		return nil, err
	}
	return &conflictTx{GroupTx: tx, c: c}, nil
}

type conflictTx struct {
	plugins.GroupTx
	c *conflicted
}

func (t *conflictTx) Commit(ctx context.Context) ([]plugins.Outcome, error) {
	if t.c.fails > 0 {
		t.c.fails--
		t.GroupTx.Rollback()
		return nil, plugins.Retry(errors.New("pq: deadlock detected (40P01)"))
	}
	return t.GroupTx.Commit(ctx)
}

func TestRetryAfterConflict(t *testing.T) {
	f := newFixture(t)
	db := &conflicted{fails: 2}
	reg := plugins.NewRegistry()
	reg.AddInput(plugins.InputSpec{Name: "flaky", New: func() plugins.Input { f.input = &flaky{}; return f.input }})
	reg.AddOutput(plugins.OutputSpec{Name: "sqlite", New: func() any { return db }})
	f.reg = reg
	f.write("vehicles_status_1600000000.json", status(1))
	s := f.run(nil)
	if s.FilesProcessed != 1 || s.FilesFailed != 0 || s.RecordsInserted != 1 || db.fails != 0 {
		t.Fatalf("%+v, %d failures left", s, db.fails)
	}
	if !f.exists("done/vehicles_status_1600000000.json") {
		t.Fatal("file not moved after the retried commit")
	}
}
