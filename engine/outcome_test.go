package engine_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/schemas"
)

// outcomes runs the fixture's pipeline and returns, per listed path, every
// outcome the engine reported for it.
func (f *fixture) outcomes(prepare func(*flaky)) (engine.Summary, map[string][]string) {
	f.t.Helper()
	var mu sync.Mutex
	seen := map[string][]string{}
	e, err := engine.New(context.Background(), f.cfg, f.reg, f.router, engine.Options{Workers: 2, Events: func(ev engine.Event) {
		if ev.Kind == "file" {
			mu.Lock()
			seen[ev.Path] = append(seen[ev.Path], ev.Status)
			mu.Unlock()
		}
	}})
	if err != nil {
		f.t.Fatal(err)
	}
	defer e.Close()
	if prepare != nil {
		prepare(f.input)
	}
	s, err := e.Run(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return s, seen
}

// withAmbiguous adds a file type whose name pattern overlaps vehicles_status.
func (f *fixture) withAmbiguous() {
	f.t.Helper()
	dir := f.t.TempDir()
	for _, n := range []string{"vehicles_status.schema.json", "objects_detection.schema.json"} {
		b, err := os.ReadFile(filepath.Join("../schemas", n))
		if err != nil {
			f.t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "status_copy.schema.json"), []byte(`{"type":"object","x-carpipe":{
		"match":"^vehicles_status_(?P<timestamp>\\d{10})\\.json$","records":"/vehicle_status","key":["vehicle_id"]},
		"properties":{"vehicle_id":{"type":"string"}}}`), 0o644)
	set, err := schemas.Load(dir, schemas.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.router = set
}

func TestEveryFileOneOutcome(t *testing.T) {
	f := newFixture(t)
	f.withAmbiguous()
	f.cfg.Inputs[0].Node.Content = append(f.cfg.Inputs[0].Node.Content, scalar("min_age"), scalar("1h"))
	old := time.Now().Add(-2 * time.Hour)
	files := map[string]string{
		"objects_detection_1600000000.json": `{"objects_detection_events":[]}`,    // processed
		"objects_detection_1600000001.json": `{"objects_detection_events":[`,      // failed
		"objects_detection_1600000002.json": `{"objects_detection_events":[]} `,   // left: its move fails
		"objects_detection_1600000003.json": `{"objects_detection_events":[]}  `,  // skipped: vanishes
		"vehicles_status_1600000004.json":   status(4),                            // ambiguous
		"notes.txt":                         "hello",                              // unmatched
		"objects_detection_1600000005.json": `{"objects_detection_events":[]}   `, // skipped: too recent
	}
	for n, body := range files {
		f.write(n, body)
		if n != "objects_detection_1600000005.json" {
			os.Chtimes(filepath.Join(f.inbox, n), old, old)
		}
	}
	s, seen := f.outcomes(func(in *flaky) {
		in.vanish = "objects_detection_1600000003.json"
		in.stay = "objects_detection_1600000002.json"
	})
	want := map[string]string{
		"objects_detection_1600000000.json": plugins.OutcomeProcessed,
		"objects_detection_1600000001.json": plugins.OutcomeFailed,
		"objects_detection_1600000002.json": plugins.OutcomeLeft,
		"objects_detection_1600000003.json": plugins.OutcomeSkipped,
		"vehicles_status_1600000004.json":   plugins.OutcomeAmbiguous,
		"notes.txt":                         plugins.OutcomeUnmatched,
		"objects_detection_1600000005.json": plugins.OutcomeSkipped,
	}
	for p, w := range want {
		if got := seen[p]; len(got) != 1 || got[0] != w {
			t.Errorf("%s: outcomes %q, want exactly [%s]", p, got, w)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("outcomes for %d paths, want %d: %v", len(seen), len(want), seen)
	}
	if s.Files() != int64(len(want)) || s.FilesProcessed != 1 || s.FilesFailed != 1 || s.FilesLeft != 1 ||
		s.FilesSkipped != 2 || s.FilesAmbiguous != 1 || s.FilesUnmatched != 1 || s.Status != "partial" {
		t.Fatalf("summary %+v", s)
	}
	if !f.exists("failed/vehicles_status_1600000004.json") || !f.exists("objects_detection_1600000002.json") || !f.exists("notes.txt") {
		t.Fatal("files not where they belong")
	}
}

// A store that answers "not found" to a move it refused must not make the
// file look dealt with.
func TestMoveRefusedAsVanished(t *testing.T) {
	f := newFixture(t)
	f.write("vehicles_status_1600000000.json", status(1))
	s, _ := f.outcomes(func(in *flaky) { in.lie = "vehicles_status_1600000000.json" })
	if s.FilesLeft != 1 || s.Status != "partial" {
		t.Fatalf("%+v", s)
	}
	// A file a replica really moved away is fine.
	f.write("vehicles_status_1600000001.json", status(2))
	s, _ = f.outcomes(func(in *flaky) { in.lie, in.steal = "", "vehicles_status_1600000001.json" })
	if s.FilesProcessed != 1 || s.Status != "ok" {
		t.Fatalf("%+v", s)
	}
}

func TestUnmatchedFailsWhenAsked(t *testing.T) {
	for _, mode := range []string{"keep", "fail"} {
		f := newFixture(t)
		f.cfg.Inputs[0].Node.Content = append(f.cfg.Inputs[0].Node.Content, scalar("on_unmatched"), scalar(mode))
		f.write("vehicles_status_1600000000.json", status(1))
		f.write("vehicles_status_x.json", "{}")
		s := f.run(nil)
		want := map[string]string{"keep": "ok", "fail": "partial"}[mode]
		if s.FilesUnmatched != 1 || s.FilesProcessed != 1 || s.Status != want {
			t.Errorf("on_unmatched %s: %+v, want status %s", mode, s, want)
		}
	}
}

// The ledger stores every outcome count of a run.
func TestRunRowCounts(t *testing.T) {
	f := newFixture(t)
	f.withAmbiguous()
	f.write("vehicles_status_1600000004.json", status(4))
	f.write("notes.txt", "x")
	s := f.run(nil)
	db := f.db()
	var amb, unm int64
	var st string
	if err := db.QueryRow("SELECT files_ambiguous, files_unmatched, status FROM runs WHERE id = ?", s.ID).Scan(&amb, &unm, &st); err != nil {
		t.Fatal(err)
	}
	if amb != 1 || unm != 1 || st != "partial" {
		t.Fatalf("runs row: ambiguous %d, unmatched %d, status %s", amb, unm, st)
	}
	var reason string
	if err := db.QueryRow("SELECT error FROM files WHERE path = 'vehicles_status_1600000004.json'").Scan(&reason); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"several file types", "status_copy", "vehicles_status"} {
		if !strings.Contains(reason, w) {
			t.Errorf("reason %q lacks %q", reason, w)
		}
	}
}

func (f *fixture) db() *sql.DB {
	f.t.Helper()
	db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(filepath.Dir(f.inbox), "db.sqlite")))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { db.Close() })
	return db
}
