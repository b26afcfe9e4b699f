package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/inputs/dir"
)

// sampled is the dir input whose readers measure the live heap every
// sampleEvery bytes read: a measure taken as the file is read, not on a
// timer.
type sampled struct {
	dir.Dir `yaml:",inline"`
	mu      sync.Mutex
	peak    uint64
	samples int
}

const sampleEvery = 2 << 20

func (s *sampled) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	rc, err := s.Dir.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return &sampler{ReadCloser: rc, s: s}, nil
}

type sampler struct {
	io.ReadCloser
	s    *sampled
	read int
}

func (r *sampler) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.read += n
	if r.read >= sampleEvery {
		r.read = 0
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		r.s.mu.Lock()
		r.s.peak = max(r.s.peak, m.HeapAlloc)
		r.s.samples++
		r.s.mu.Unlock()
	}
	return n, err
}

// TestBigFileFlatMemory: a file far bigger than what loading it may hold
// is streamed, as a group of one, into the ledger: the live heap stays
// flat however big the file, and every record lands.
func TestBigFileFlatMemory(t *testing.T) {
	h := newHarness(t)
	in := &sampled{}
	h.reg.AddInput(plugins.InputSpec{Name: "sampled", New: func() plugins.Input { return in }})
	const records = 200_000
	name := filepath.Join(h.inbox, "vehicles_status_1600000000.json")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString(`{"vehicle_status":[`)
	for k := range records {
		if k > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(w, `{"vehicle_id":"big-%08d","report_time":"2020-01-01T00:00:00Z","status":"a status long enough to make the file big, and bigger still"}`, k)
	}
	w.WriteString("]}")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(name)
	e := h.engine("sampled", "", engine.Options{Workers: 1})
	s, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.FilesProcessed != 1 || s.RecordsInserted != records {
		t.Fatalf("%+v", s)
	}
	if n := h.count(h.db(), "SELECT count(*) FROM vehicles_status"); n != records {
		t.Fatalf("%d records stored, want %d", n, records)
	}
	// Hashed, then read again as it loads: two reads' worth of samples.
	if in.samples < int(2*fi.Size()/sampleEvery)-2 {
		t.Fatalf("%d samples of a %d-byte file", in.samples, fi.Size())
	}
	t.Logf("file %d MB, live heap at most %d MB over %d samples", fi.Size()>>20, in.peak>>20, in.samples)
	if in.peak > uint64(fi.Size())/2 {
		t.Fatalf("the live heap reached %d bytes loading a %d-byte file: the file is held, not streamed", in.peak, fi.Size())
	}
}
