package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// Small files are loaded in groups, one transaction for many: a commit
// costs more than a small file's records. A group holds at most the
// ledger's GroupSize files and groupBytes bytes, and only files up to
// smallFile.
const (
	smallFile  = 256 << 10
	groupBytes = 8 << 20
)

// groups cuts the ordered jobs into units of work: runs of small files
// when the ledger can load them together, and single files otherwise.
func (e *Engine) groups(jobs []job) [][]job {
	g, can := e.ledger.(plugins.Grouper)
	var out [][]job
	var cur []job
	var size int64
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur, size = nil, 0
		}
	}
	for _, j := range jobs {
		if !can || j.file.Size > smallFile || j.file.Size == 0 && j.file.ModTime.IsZero() {
			flush()
			out = append(out, []job{j})
			continue
		}
		if len(cur) == g.GroupSize() || size+j.file.Size > groupBytes {
			flush()
		}
		cur = append(cur, j)
		size += j.file.Size
	}
	flush()
	return out
}

// work loads one unit and tells what happened to each of its files.
func (e *Engine) work(ctx context.Context, run int64, unit []job, done func(job, result, time.Duration)) {
	if len(unit) == 1 {
		start := time.Now()
		done(unit[0], e.file(ctx, run, unit[0]), time.Since(start))
		return
	}
	start := time.Now()
	results := e.group(ctx, run, unit)
	each := time.Since(start) / time.Duration(len(unit))
	for i, j := range unit {
		done(j, results[i], each)
	}
}

// small is a small file read whole: hashed and decoded from memory.
type small struct {
	info plugins.FileInfo
	data plugins.Batch
}

// group loads small files in one transaction. Files that fail on their own
// (unreadable, invalid) fail alone; if the database refuses the group, its
// files are loaded one by one so that only a bad one fails.
func (e *Engine) group(ctx context.Context, run int64, unit []job) []result {
	results := make([]result, len(unit))
	var batch []plugins.FileData
	var idx []int
	for i, j := range unit {
		info := plugins.FileInfo{Run: run, Input: j.in.name, Path: j.file.Path, FileType: j.typ.Name(), Time: j.time}
		data, r, ok := e.readSmall(ctx, j, &info)
		if !ok {
			results[i] = r
			continue
		}
		batch = append(batch, plugins.FileData{Info: info, Batch: data})
		idx = append(idx, i)
	}
	if len(batch) == 0 {
		return results
	}
	var out []plugins.Outcome
	err := retryConflicts(ctx, e.log.With("files", len(batch)), func() (err error) {
		out, err = e.ledger.(plugins.Grouper).LoadFiles(ctx, batch)
		return err
	})
	switch {
	case errors.Is(err, plugins.ErrFatal) || ctx.Err() != nil:
		for _, i := range idx {
			results[i] = result{fatal: err}
		}
		return results
	case err != nil:
		e.log.Warn("a group of small files was refused; loading them one by one", "files", len(batch), "error", err.Error())
		for _, i := range idx {
			results[i] = e.file(ctx, run, unit[i])
		}
		return results
	}
	for k, i := range idx {
		j := unit[i]
		log := e.log.With("input", j.in.name, "path", j.file.Path, "file_type", j.typ.Name())
		if errors.Is(out[k].Err, plugins.ErrLoaded) {
			results[i] = e.done(ctx, j, j.in.onSuccess, log, result{outcome: plugins.OutcomeSkipped, status: plugins.StatusProcessed, reason: reasonLoaded})
			continue
		}
		e.sinks(ctx, batch[k])
		results[i] = e.loaded(ctx, j, log, out[k].Counts)
	}
	return results
}

// readSmall reads, hashes and decodes a small file. When it cannot go in
// the group, ok is false and r says what became of it.
func (e *Engine) readSmall(ctx context.Context, j job, info *plugins.FileInfo) (plugins.Batch, result, bool) {
	log := e.log.With("input", j.in.name, "path", j.file.Path, "file_type", j.typ.Name())
	if r, ok := e.tooBig(ctx, j, info, log); !ok {
		return plugins.Batch{}, r, false
	}
	content, err := readAll(ctx, j)
	if errors.Is(err, errGrew) {
		return plugins.Batch{}, e.file(ctx, info.Run, j), false
	}
	if r, ok := e.readErr(ctx, j, *info, log, err); !ok {
		return plugins.Batch{}, r, false
	}
	sum := sha256.Sum256(content)
	info.Size, info.SHA256 = int64(len(content)), hex.EncodeToString(sum[:])
	var all plugins.Batch
	inv := &invalid{}
	err = j.typ.Decode(ctx, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }, j.in.limits,
		func(b plugins.Batch) error {
			if j.typ.RejectFile() {
				inv.add(b.Rejects)
				b.Rejects = nil
			}
			all.Records = append(all.Records, b.Records...)
			all.Rejects = append(all.Rejects, b.Rejects...)
			return nil
		})
	if err == nil && inv.n > 0 {
		err = inv
	}
	if err != nil {
		return plugins.Batch{}, e.fail(ctx, j, *info, log, err), false
	}
	return all, result{}, true
}

var errGrew = errors.New("file grew past the small-file size")

// readAll reads a file listed as small; one that has since grown is left
// to the streaming path rather than held in memory.
func readAll(ctx context.Context, j job) ([]byte, error) {
	rc, err := j.in.plugin.Open(ctx, j.file.Path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 2*smallFile+1))
	if err == nil && len(b) > 2*smallFile {
		return nil, errGrew
	}
	return b, err
}

// sinks hands a committed small file to the outputs that are not the
// ledger.
func (e *Engine) sinks(ctx context.Context, f plugins.FileData) {
	for _, o := range e.outs[1:] {
		tx, err := o.plugin.Begin(ctx, f.Info)
		if err == nil {
			if err = tx.Add(ctx, f.Batch); err == nil {
				_, err = tx.Commit(ctx)
			} else {
				tx.Rollback()
			}
		}
		if err != nil {
			e.log.Error("output failed after the ledger commit", "output", o.name, "path", f.Info.Path, "error", err.Error())
		}
	}
}
