package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sort"
	"sync"

	"github.com/carpipe/carpipe/plugins"
)

// Source is a file to validate.
type Source struct {
	Input  string // "" for a file named on the command line
	Path   string
	Open   plugins.Opener
	Limits plugins.Limits // the input's, so that validate and run agree
}

// Report is what validating one file found.
type Report struct {
	Source
	FileType  string
	Unmatched bool
	Records   int
	Errors    []Finding
	Warnings  []Finding
	Dropped   int // errors beyond MaxErrors, counted but not kept
}

// Valid reports whether a matched file has no error.
func (r Report) Valid() bool { return !r.Unmatched && len(r.Errors) == 0 }

// Finding is one problem in a file. Record is -1 for the file as a whole.
type Finding struct {
	Record  int
	Pointer string // inside the file, e.g. /vehicle_status/3/report_time
	Message string
	Line    int
	Col     int
	offset  int64
}

// MaxErrors is how many errors a report keeps per file.
const MaxErrors = 100

// Sources lists the config's inputs, read-only, as sources to validate.
func (e *Engine) Sources(ctx context.Context) ([]Source, error) {
	var out []Source
	for _, in := range e.inputs {
		files, err := in.plugin.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("input %s: listing: %w", in.name, err)
		}
		for _, f := range files {
			if in.owns(f.Path) {
				continue
			}
			plugin, p := in.plugin, f.Path
			out = append(out, Source{Input: in.name, Path: p, Limits: in.limits, Open: func() (io.ReadCloser, error) { return plugin.Open(ctx, p) }})
		}
	}
	return out, nil
}

// Validate checks sources exactly as a run would decode them (same routing,
// parsing, validation, keys and times) and writes nothing. Reports come
// back in the sources' order; workers files are read at once.
func Validate(ctx context.Context, router plugins.Router, srcs []Source, workers int) []Report {
	out := make([]Report, len(srcs))
	idx := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				out[i] = validate(ctx, router, srcs[i])
			}
		}()
	}
	for i := range srcs {
		idx <- i
	}
	close(idx)
	wg.Wait()
	return out
}

func validate(ctx context.Context, router plugins.Router, src Source) Report {
	r := Report{Source: src}
	typ, _, err := router.Route(base(src.Path))
	if err != nil {
		r.Errors = []Finding{{Record: -1, Message: err.Error()}}
		return r
	}
	if typ == nil {
		r.Unmatched = true
		return r
	}
	r.FileType = typ.Name()
	seen := map[uint64]int{}
	seed := maphash.MakeSeed()
	err = typ.Decode(ctx, src.Open, src.Limits, func(b plugins.Batch) error {
		r.Records += len(b.Records) + len(b.Rejects)
		for _, rec := range b.Records {
			h := maphash.String(seed, rec.Key)
			if first, dup := seen[h]; dup {
				r.Warnings = append(r.Warnings, Finding{Record: rec.Index,
					Message: fmt.Sprintf("duplicate key %s (first at record %d); only the first is loaded", rec.Key, first)})
				continue
			}
			seen[h] = rec.Index
		}
		for _, rj := range b.Rejects {
			for _, fe := range rj.Errors {
				if len(r.Errors) >= MaxErrors {
					r.Dropped++
					continue
				}
				r.Errors = append(r.Errors, Finding{Record: rj.Index, Pointer: rj.Pointer + fe.Pointer, Message: fe.Message, offset: rj.Offset})
			}
		}
		return nil
	})
	if err != nil {
		f := Finding{Record: -1, Message: err.Error()}
		var pos interface{ Position() (int, int) }
		if errors.As(err, &pos) {
			f.Line, f.Col = pos.Position()
		}
		r.Errors = append(r.Errors, f)
	}
	locate(src.Open, r.Errors)
	return r
}

// locate gives record errors the line and column where their record
// starts, reading the file once more, only when there are some.
func locate(open plugins.Opener, fs []Finding) {
	var todo []*Finding
	for i := range fs {
		if fs[i].Record >= 0 && fs[i].Line == 0 {
			todo = append(todo, &fs[i])
		}
	}
	if len(todo) == 0 {
		return
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].offset < todo[j].offset })
	rc, err := open()
	if err != nil {
		return
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	var off int64
	line, col := 1, 1
	for _, f := range todo {
		for {
			// The offset may point at the space and comma before the record.
			b, err := br.Peek(1)
			if err != nil {
				return
			}
			if off >= f.offset && b[0] != ' ' && b[0] != '\t' && b[0] != '\r' && b[0] != '\n' && b[0] != ',' {
				break
			}
			br.ReadByte()
			off++
			switch {
			case b[0] == '\n':
				line, col = line+1, 1
			case b[0] < 0x80 || b[0] >= 0xC0:
				col++
			}
		}
		f.Line, f.Col = line, col
	}
}
