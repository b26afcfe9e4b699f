package engine

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// CommonInputKeys is a value whose yaml fields are the keys the engine
// reads from every input entry, for documentation and the config schema.
func CommonInputKeys() any { return &common{} }

// History returns the ledger's record of past runs and files. It never
// migrates: a database without carpipe's tables is an error that matches
// plugins.ErrNotMigrated.
func (e *Engine) History(ctx context.Context) (plugins.History, error) {
	if e.ledger == nil {
		return nil, errors.New("no database output")
	}
	h, ok := e.ledger.(plugins.History)
	if !ok {
		return nil, errors.New("the database output keeps no history")
	}
	if r, ok := e.ledger.(plugins.Readier); ok {
		if err := r.Ready(ctx); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// located records where a file went after its action, on its ledger row.
// A miss only leaves the ledger's location stale, so it is logged, not
// returned.
func (e *Engine) located(ctx context.Context, j job, id int64, loc string) {
	l, ok := e.ledger.(plugins.Locator)
	if !ok || id == 0 {
		return
	}
	// The file has moved: record it even when the run is stopping, briefly.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := l.Moved(ctx, id, loc); err != nil {
		e.log.Warn("where the file went was not recorded", "input", j.in.name, "path", j.file.Path, "location", loc, "error", err.Error())
	}
}

// ReprocessQuery picks the failed files to put back.
type ReprocessQuery struct {
	IDs []int64
	// Failed picks every failed file that on_failure moved away, of this
	// config's inputs, processed at or after Since.
	Failed bool
	Since  time.Time
}

// Putback is what Reprocess did with one file.
type Putback struct {
	File    plugins.FileEntry
	From    string // where it was moved back from
	Path    string // where the file is now, when Err is nil
	InPlace bool   // it was already where the next run finds it
	Note    string // a remark on a file put back
	Err     error  // why it was not put back
}

// Reprocess puts failed files back where they were found, so that the
// next run loads them: the ledger lets a failed file load again. A file
// that was loaded is refused. The error is for the database only.
func (e *Engine) Reprocess(ctx context.Context, q ReprocessQuery) ([]Putback, error) {
	h, err := e.History(ctx)
	if err != nil {
		return nil, err
	}
	var files []plugins.FileEntry
	var out []Putback
	for _, id := range q.IDs {
		f, err := h.File(ctx, id)
		if errors.Is(err, plugins.ErrNotFound) {
			out = append(out, Putback{File: plugins.FileEntry{ID: id}, Err: errors.New("no such file in the ledger")})
			continue
		}
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if q.Failed {
		all, err := h.Files(ctx, plugins.FileQuery{Status: plugins.StatusFailed, Since: q.Since})
		if err != nil {
			return nil, err
		}
		for _, f := range slices.Backward(all) { // oldest first
			if e.input(f.Input) != nil && f.Location != "" && f.Location != f.Path {
				files = append(files, f)
			}
		}
	}
	seen := map[int64]bool{}
	for _, f := range files {
		if seen[f.ID] {
			continue
		}
		seen[f.ID] = true
		p, err := e.putBack(ctx, h, f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (e *Engine) input(name string) *input {
	for _, in := range e.inputs {
		if in.name == name {
			return in
		}
	}
	return nil
}

func (e *Engine) putBack(ctx context.Context, h plugins.History, f plugins.FileEntry) (Putback, error) {
	p := Putback{File: f}
	in := e.input(f.Input)
	if f.Status == plugins.StatusProcessed {
		p.Err = fmt.Errorf("it was loaded (run %d, %d records inserted); nothing to reprocess", f.Run, f.RecordsInserted)
		return p, nil
	}
	if in == nil {
		p.Err = fmt.Errorf("its input %q is not in this config", f.Input)
		return p, nil
	}
	atPath, err := exists(ctx, in, f.Path)
	if err != nil {
		p.Err = err
		return p, nil
	}
	from := f.Location
	unrecorded := from == f.Path || from == ""
	switch {
	case atPath && unrecorded:
		// on_failure kept it, or it was put back: the next run tries it.
		p.Path, p.InPlace = f.Path, true
		return p, nil
	case atPath:
		// Move would pick another name, which the file type may not match.
		p.Err = fmt.Errorf("%s is taken by another file; move that one away first", f.Path)
		return p, nil
	case unrecorded && in.onFailure.kind == "move":
		// A crash before its move was recorded: on_failure's folder under
		// its own name is where it went.
		from = path.Join(in.onFailure.dir, path.Base(f.Path))
	case unrecorded && in.onFailure.kind == "delete":
		p.Err = errors.New("it was deleted (on_failure: delete); nothing to put back")
		return p, nil
	case unrecorded:
		p.Err = fmt.Errorf("it is no longer at %s", f.Path)
		return p, nil
	}
	moved, err := in.plugin.Move(ctx, from, path.Dir(f.Path))
	if errors.Is(err, plugins.ErrVanished) {
		p.Err = fmt.Errorf("it is not at %s", from)
		return p, nil
	}
	if err != nil {
		p.Err = fmt.Errorf("moving %s back: %w", from, err)
		return p, nil
	}
	p.From, p.Path = from, moved
	if moved != f.Path {
		p.Note = f.Path + " was taken meanwhile"
	}
	return p, h.SetLocation(ctx, f.ID, moved)
}

// exists tells whether an input holds a file, by opening it.
func exists(ctx context.Context, in *input, p string) (bool, error) {
	rc, err := in.plugin.Open(ctx, p)
	if errors.Is(err, plugins.ErrVanished) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot tell whether %s exists: %w", p, err)
	}
	rc.Close()
	return true, nil
}
