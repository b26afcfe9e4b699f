package jsonl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

func env(stdout *syncBuffer) plugins.Env {
	e := plugins.Env{Name: "out", Logger: slog.New(slog.DiscardHandler)}
	if stdout != nil {
		e.Stdout = stdout
	}
	return e
}

// syncBuffer is a shared standard output; Write yields first, so that
// writers that are not serialised do interleave.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	runtime.Gosched()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newJSONL(t *testing.T, path string, stdout *syncBuffer) *JSONL {
	t.Helper()
	j := &JSONL{Path: path}
	if err := j.Init(t.Context(), env(stdout)); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func info(path string) plugins.FileInfo {
	return plugins.FileInfo{Run: 1, Input: "inbox", Path: path, FileType: "order", SHA256: "ab"}
}

func ts(s string) *time.Time {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &v
}

// load runs Begin, Add per batch and Commit.
func load(t *testing.T, j *JSONL, fi plugins.FileInfo, batches ...plugins.Batch) {
	t.Helper()
	tx, err := j.Begin(t.Context(), fi)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	for _, b := range batches {
		if err := tx.Add(t.Context(), b); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	if _, err := tx.Commit(t.Context()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// lines decodes JSON lines, failing on a line that is not one object.
func lines(t *testing.T, data string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d %q is not a JSON object: %v", len(out)+1, sc.Text(), err)
		}
		out = append(out, m)
	}
	if !strings.HasSuffix(data, "\n") && data != "" {
		t.Fatalf("output does not end with a newline: ...%q", data[max(0, len(data)-40):])
	}
	return out
}

func decode(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	return v
}

func TestCommitWritesLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "nested", "records.jsonl")
	j := newJSONL(t, path, nil)
	recs := []plugins.Record{
		{Index: 0, Key: "A-1", EventTime: ts("2024-05-06T07:08:09.123456Z"), Payload: json.RawMessage(`{"id":"A-1","n":1.5}`)},
		{Index: 2, Key: "A-2", Payload: json.RawMessage(`{"id":"A-2","s":"<ü & \"q\">","a":[1,null]}`)},
		{Index: 5, Key: "A|3", EventTime: ts("2024-05-06T07:08:09Z"), Payload: json.RawMessage(`{}`)},
	}
	load(t, j, info("2024/orders.json"), plugins.Batch{Records: recs[:2]}, plugins.Batch{}, plugins.Batch{Records: recs[2:]})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := lines(t, string(data))
	if len(got) != len(recs) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(recs), data)
	}
	times := []any{"2024-05-06T07:08:09.123456Z", nil, "2024-05-06T07:08:09.000000Z"}
	for i, r := range recs {
		want := map[string]any{
			"file_type": "order", "input": "inbox", "path": "2024/orders.json",
			"index": float64(r.Index), "key": r.Key, "record": decode(string(r.Payload)),
		}
		if times[i] != nil {
			want["event_time"] = times[i]
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("line %d:\n got %v\nwant %v", i+1, got[i], want)
		}
	}
}

func TestRollbackWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.jsonl")
	j := newJSONL(t, path, nil)
	tx, err := j.Begin(t.Context(), info("bad.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Add(t.Context(), plugins.Batch{Records: []plugins.Record{{Key: "x", Payload: json.RawMessage(`{"x":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if data, _ := os.ReadFile(path); len(data) != 0 {
		t.Fatalf("a rolled back file wrote %q", data)
	}
	load(t, j, info("good.json"), plugins.Batch{Records: []plugins.Record{{Key: "y", Payload: json.RawMessage(`{"y":1}`)}}})
	data, _ := os.ReadFile(path)
	got := lines(t, string(data))
	if len(got) != 1 || got[0]["path"] != "good.json" {
		t.Fatalf("after a rollback and a commit the output is %q, want only good.json's line", data)
	}
}

func TestAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(path, []byte("{\"earlier\":true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := newJSONL(t, path, nil)
	load(t, j, info("a.json"), plugins.Batch{Records: []plugins.Record{{Key: "a", Payload: json.RawMessage(`{}`)}}})
	data, _ := os.ReadFile(path)
	got := lines(t, string(data))
	if len(got) != 2 || got[0]["earlier"] != true || got[1]["key"] != "a" {
		t.Fatalf("output %q, want the earlier line kept and a's appended", data)
	}
}

func TestStdout(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // a file named "-" would land here
	out := &syncBuffer{}
	j := newJSONL(t, "-", out)
	load(t, j, info("a.json"), plugins.Batch{Records: []plugins.Record{{Index: 3, Key: "a", Payload: json.RawMessage(`{"a":1}`)}}})
	got := lines(t, out.String())
	if len(got) != 1 || got[0]["key"] != "a" || got[0]["index"] != 3.0 {
		t.Fatalf("standard output %q, want a's line", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "-")); err == nil {
		t.Error(`path "-" created a file named "-"`)
	}
}

// TestConcurrentCommits: files committed at once each land as one block.
func TestConcurrentCommits(t *testing.T) {
	out := &syncBuffer{}
	j := newJSONL(t, "-", out)
	const files, n = 4, 3000
	txs := make([]plugins.FileTx, files)
	for f := range files {
		tx, err := j.Begin(t.Context(), info(fmt.Sprintf("f%d.json", f)))
		if err != nil {
			t.Fatal(err)
		}
		var b plugins.Batch
		for i := range n {
			b.Records = append(b.Records, plugins.Record{Index: i, Key: fmt.Sprintf("%d-%d", f, i),
				Payload: json.RawMessage(fmt.Sprintf(`{"file":%d,"i":%d,"pad":"%s"}`, f, i, strings.Repeat("x", 40)))})
		}
		if err := tx.Add(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		txs[f] = tx
	}
	start := make(chan struct{})
	errs := make(chan error, files)
	for _, tx := range txs {
		go func() {
			<-start
			_, err := tx.Commit(t.Context())
			errs <- err
		}()
	}
	close(start)
	for range files {
		if err := <-errs; err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	if out.writes < 2*files {
		t.Fatalf("only %d writes: the files are too small to test interleaving", out.writes)
	}
	got := lines(t, out.String())
	if len(got) != files*n {
		t.Fatalf("%d lines, want %d", len(got), files*n)
	}
	// Each file's lines are contiguous and in order.
	seen := map[any]bool{}
	for k := 0; k < len(got); k += n {
		p := got[k]["path"]
		if seen[p] {
			t.Fatalf("file %v appears in two blocks", p)
		}
		seen[p] = true
		for i := range n {
			if l := got[k+i]; l["path"] != p || l["index"] != float64(i) {
				t.Fatalf("line %d is %v/%v inside the block of %v: files interleaved", k+i+1, l["path"], l["index"], p)
			}
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > 10 {
		k := 10 - w.n
		w.n = 10
		return k, errors.New("disk full")
	}
	w.n += len(p)
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	j := &JSONL{Path: "-"}
	if err := j.Init(t.Context(), plugins.Env{Stdout: &failWriter{}}); err != nil {
		t.Fatal(err)
	}
	tx, err := j.Begin(t.Context(), info("a.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Add(t.Context(), plugins.Batch{Records: []plugins.Record{{Key: "a", Payload: json.RawMessage(`{"a":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Commit(t.Context())
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "10 bytes") {
		t.Fatalf("Commit to a failing writer: %v; want the write error and how much was written", err)
	}
}

// TestEventTimeIsUTC: event_time ends in Z, so it must be the UTC clock
// whatever zone the time came in.
func TestEventTimeIsUTC(t *testing.T) {
	out := &syncBuffer{}
	j := newJSONL(t, "-", out)
	et := ts("2024-05-06T12:38:09.000001+05:30")
	load(t, j, info("a.json"), plugins.Batch{Records: []plugins.Record{{Key: "a", EventTime: et, Payload: json.RawMessage(`{}`)}}})
	got := lines(t, out.String())
	if len(got) != 1 {
		t.Fatalf("%d lines, want 1", len(got))
	}
	s, _ := got[0]["event_time"].(string)
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !parsed.Equal(*et) {
		t.Errorf("event_time %q for %s: want %q, the same instant (the layout's Z is a literal: the time is not converted to UTC)",
			s, et.Format(time.RFC3339Nano), et.UTC().Format("2006-01-02T15:04:05.000000Z"))
	}
}
