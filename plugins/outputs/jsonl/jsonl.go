// Package jsonl writes accepted records as newline-delimited JSON.
package jsonl

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/carpipe/carpipe/plugins"
)

//go:embed sample.yaml
var sample string

func init() {
	plugins.Default.AddOutput(plugins.OutputSpec{
		Name:   "jsonl",
		Doc:    "Writes each accepted record as one JSON line, after the database has committed its file.",
		Sample: sample,
		New:    func() any { return &JSONL{} },
	})
}

// JSONL is a file (or stdout) of JSON lines.
type JSONL struct {
	Path string `yaml:"path" required:"true" carpipe:"path" doc:"file to append to; \"-\" is standard output"`

	mu  sync.Mutex
	out io.Writer
	f   *os.File
}

var (
	_ plugins.Output = (*JSONL)(nil)
	_ plugins.Initer = (*JSONL)(nil)
	_ plugins.Closer = (*JSONL)(nil)

	_ plugins.StdoutWriter = (*JSONL)(nil)
)

// WritesStdout tells whether the lines go to standard output.
func (j *JSONL) WritesStdout() bool { return j.Path == "-" }

// Init opens the destination.
func (j *JSONL) Init(_ context.Context, env plugins.Env) error {
	if j.Path == "-" {
		j.out = env.Stdout
		if j.out == nil {
			j.out = os.Stdout
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(j.Path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(j.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	j.f, j.out = f, f
	return nil
}

// Close closes the file.
func (j *JSONL) Close() error {
	if j.f != nil {
		return j.f.Close()
	}
	return nil
}

// Begin spools a file's lines to a temporary file, so that nothing of a
// file that fails is written and memory stays flat.
func (j *JSONL) Begin(_ context.Context, info plugins.FileInfo) (plugins.FileTx, error) {
	tmp, err := os.CreateTemp("", "carpipe-jsonl-*")
	if err != nil {
		return nil, err
	}
	os.Remove(tmp.Name()) // unlinked: nothing to clean after a crash
	return &tx{j: j, info: info, tmp: tmp, w: bufio.NewWriter(tmp)}, nil
}

type tx struct {
	j    *JSONL
	info plugins.FileInfo
	tmp  *os.File
	w    *bufio.Writer
	line []byte
}

type line struct {
	FileType  string          `json:"file_type"`
	Input     string          `json:"input"`
	Path      string          `json:"path"`
	Index     int             `json:"index"`
	Key       string          `json:"key"`
	EventTime string          `json:"event_time,omitempty"`
	Record    json.RawMessage `json:"record"`
}

func (t *tx) Add(_ context.Context, b plugins.Batch) error {
	for _, r := range b.Records {
		l := line{FileType: t.info.FileType, Input: t.info.Input, Path: t.info.Path, Index: r.Index, Key: r.Key, Record: r.Payload}
		if r.EventTime != nil {
			l.EventTime = r.EventTime.UTC().Format("2006-01-02T15:04:05.000000Z")
		}
		data, err := json.Marshal(l)
		if err != nil {
			return err
		}
		t.w.Write(data)
		if err := t.w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Commit(context.Context) (plugins.Counts, error) {
	defer t.tmp.Close()
	if err := t.w.Flush(); err != nil {
		return plugins.Counts{}, err
	}
	if _, err := t.tmp.Seek(0, io.SeekStart); err != nil {
		return plugins.Counts{}, err
	}
	t.j.mu.Lock()
	defer t.j.mu.Unlock()
	n, err := io.Copy(t.j.out, t.tmp)
	if err != nil {
		return plugins.Counts{}, &writeError{n: n, err: err}
	}
	return plugins.Counts{}, nil
}

func (t *tx) Rollback() error { return t.tmp.Close() }

type writeError struct {
	n   int64
	err error
}

func (e *writeError) Error() string {
	return "after " + strconv.FormatInt(e.n, 10) + " bytes: " + e.err.Error()
}
