package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// Small files are loaded in groups, one transaction for many: a commit
// costs more than a small file's records. A group holds at most the
// ledger's GroupSize files and groupBytes bytes, and only files up to
// smallFile, which are read whole. A bigger file is a group of one,
// streamed.
const (
	smallFile  = 256 << 10
	groupBytes = 8 << 20
)

// small tells a file read whole. A listing that gives neither size nor
// modification time tells nothing: such a file is streamed.
func small(j job) bool {
	return j.file.Size <= smallFile && !(j.file.Size == 0 && j.file.ModTime.IsZero())
}

// groups cuts the ordered jobs into units of work: runs of small files,
// and big files alone.
func (e *Engine) groups(jobs []job) [][]job {
	most := e.ledger.GroupSize()
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
		if !small(j) {
			flush()
			out = append(out, []job{j})
			continue
		}
		if len(cur) >= most || size+j.file.Size > groupBytes {
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
	start := time.Now()
	results := e.load(ctx, run, unit)
	each := time.Since(start) / time.Duration(len(unit))
	for i, j := range unit {
		done(j, results[i], each)
	}
}

// part is a file of a unit, hashed and ready to load.
type part struct {
	j    job
	info plugins.FileInfo
	log  *slog.Logger
	// whole is a small file's content, decoded; nil for a file streamed
	// (read again, its hash checked, as it loads).
	whole *plugins.Batch
	sinks []sinkTx // a streamed file's, open while it loads
}

// load loads a unit: its small files in one transaction, and a file that
// must be streamed in one of its own. Files that fail on their own
// (unreadable, invalid) fail alone.
func (e *Engine) load(ctx context.Context, run int64, unit []job) []result {
	results := make([]result, len(unit))
	var parts []*part
	var at []int
	for i, j := range unit {
		p, r, ok := e.read(ctx, run, j)
		switch {
		case !ok:
			results[i] = r
		case p.whole == nil:
			results[i] = e.commit(ctx, []*part{p})[0]
		default:
			parts = append(parts, p)
			at = append(at, i)
		}
	}
	if len(parts) > 0 {
		for k, r := range e.commit(ctx, parts) {
			results[at[k]] = r
		}
	}
	return results
}

// read hashes a file, and reads a small one whole. When the file cannot
// load, ok is false and r says what became of it.
func (e *Engine) read(ctx context.Context, run int64, j job) (p *part, r result, ok bool) {
	p = &part{j: j, log: e.log.With("input", j.in.name, "path", j.file.Path, "file_type", j.typ.Name()),
		info: plugins.FileInfo{Run: run, Input: j.in.name, Path: j.file.Path, FileType: j.typ.Name(), Time: j.time}}
	if r, ok := e.tooBig(ctx, j, &p.info, p.log); !ok {
		return nil, r, false
	}
	if small(j) {
		content, err := readAll(ctx, j)
		if !errors.Is(err, errGrew) {
			if r, ok := e.readErr(ctx, j, p.info, p.log, err); !ok {
				return nil, r, false
			}
			sum := sha256.Sum256(content)
			p.info.Size, p.info.SHA256 = int64(len(content)), hex.EncodeToString(sum[:])
			b, err := decodeAll(ctx, j, content)
			if err != nil {
				return nil, e.fail(ctx, j, p.info, p.log, err), false
			}
			p.whole = &b
			return p, result{}, true
		}
		// Grown since it was listed: streamed rather than held.
	}
	// The claim names the content, so a streamed file is hashed first.
	size, sum, err := digest(func() (io.ReadCloser, error) { return j.in.plugin.Open(ctx, j.file.Path) })
	if r, ok := e.readErr(ctx, j, p.info, p.log, err); !ok {
		return nil, r, false
	}
	p.info.Size, p.info.SHA256 = size, sum
	return p, result{}, true
}

// commit loads parts in one ledger transaction, then the sinks, then each
// file's action. A conflict with another writer is tried again; if the
// database refuses a group, its files are loaded one by one so that only
// a bad one fails. Only database trouble is fatal.
func (e *Engine) commit(ctx context.Context, parts []*part) []result {
	results := make([]result, len(parts))
	p := parts[0]
	log := p.log
	if len(parts) > 1 {
		log = e.log.With("files", len(parts))
	}
	var outs []plugins.Outcome
	err := retryConflicts(ctx, log, func() (err error) {
		outs, err = e.transact(ctx, parts)
		return err
	})
	switch {
	case errors.Is(err, errChanged):
		p.log.Warn("file changed while it was read; it will be loaded on a later run")
		return []result{{outcome: plugins.OutcomeSkipped, reason: reasonChanged}}
	case errors.Is(err, plugins.ErrFatal) || ctx.Err() != nil:
		for k := range results {
			results[k] = result{fatal: err}
		}
		return results
	case err != nil && len(parts) > 1:
		e.log.Warn("a group of small files was refused; loading them one by one", "files", len(parts), "error", err.Error())
		for k, p := range parts {
			results[k] = e.commit(ctx, []*part{p})[0]
		}
		return results
	case err != nil:
		return []result{e.fail(ctx, p.j, p.info, p.log, err)}
	}
	for k, p := range parts {
		o := outs[k]
		if errors.Is(o.Err, plugins.ErrLoaded) {
			// Loaded before: finish what a crash may have left undone.
			p.log.Debug("file already loaded")
			rollback(p.sinks)
			results[k] = e.done(ctx, p.j, p.j.in.onSuccess, p.log,
				result{outcome: plugins.OutcomeSkipped, status: plugins.StatusProcessed, reason: reasonLoaded, id: o.Counts.FileID})
			continue
		}
		e.sink(ctx, p)
		results[k] = e.loaded(ctx, p.j, p.log, o.Counts)
	}
	return results
}

// transact runs one ledger transaction over parts: small files from
// memory, a big one streamed in batches to the ledger and the sinks.
func (e *Engine) transact(ctx context.Context, parts []*part) (out []plugins.Outcome, err error) {
	infos := make([]plugins.FileInfo, len(parts))
	for k, p := range parts {
		infos[k] = p.info
	}
	tx, err := e.ledger.Load(ctx, infos)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			for _, p := range parts {
				rollback(p.sinks)
				p.sinks = nil
			}
		}
	}()
	for k, p := range parts {
		if tx.Loaded(k) {
			continue
		}
		if p.whole != nil {
			if err := tx.Add(ctx, k, *p.whole); err != nil {
				return nil, err
			}
			continue
		}
		if p.sinks, err = e.openSinks(ctx, p.info); err != nil {
			return nil, err
		}
		err = e.stream(ctx, p, func(b plugins.Batch) error {
			if err := tx.Add(ctx, k, b); err != nil {
				return err
			}
			for _, s := range p.sinks {
				if err := s.tx.Add(ctx, b); err != nil {
					return fmt.Errorf("output %s: %w", s.name, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return tx.Commit(ctx)
}

// stream reads a file again, hashing it, and hands its batches to add: a
// big file is never held.
func (e *Engine) stream(ctx context.Context, p *part, add func(plugins.Batch) error) error {
	inv := &invalid{}
	h := sha256.New()
	first := true
	hashed := func() (io.ReadCloser, error) {
		rc, err := p.j.in.plugin.Open(ctx, p.j.file.Path)
		if err != nil || !first {
			return rc, err
		}
		first = false
		return hashingReader{rc, h}, nil
	}
	err := p.j.typ.Decode(ctx, hashed, p.j.in.limits, func(b plugins.Batch) error {
		if b, ok := inv.take(p.j.typ, b); ok {
			return add(b)
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case inv.n > 0:
		return inv
	case hex.EncodeToString(h.Sum(nil)) != p.info.SHA256:
		return errChanged
	}
	return nil
}

// decodeAll decodes a small file's content whole.
func decodeAll(ctx context.Context, j job, content []byte) (plugins.Batch, error) {
	var all plugins.Batch
	inv := &invalid{}
	err := j.typ.Decode(ctx, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }, j.in.limits,
		func(b plugins.Batch) error {
			if b, ok := inv.take(j.typ, b); ok {
				all.Records = append(all.Records, b.Records...)
				all.Rejects = append(all.Rejects, b.Rejects...)
			}
			return nil
		})
	if err == nil && inv.n > 0 {
		err = inv
	}
	return all, err
}

var errGrew = errors.New("file grew past the small-file size")

// readAll reads a file listed as small; one that has since grown is left
// to be streamed rather than held in memory.
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

// sinkTx is a sink's transaction of one file.
type sinkTx struct {
	name string
	tx   plugins.FileTx
}

// openSinks begins the file's transaction in every sink.
func (e *Engine) openSinks(ctx context.Context, info plugins.FileInfo) ([]sinkTx, error) {
	var txs []sinkTx
	for _, o := range e.outs {
		if o.sink == nil {
			continue
		}
		tx, err := o.sink.Begin(ctx, info)
		if err != nil {
			rollback(txs)
			return nil, fmt.Errorf("output %s: %w", o.name, err)
		}
		txs = append(txs, sinkTx{o.name, tx})
	}
	return txs, nil
}

func rollback(txs []sinkTx) {
	for _, s := range txs {
		s.tx.Rollback()
	}
}

// sink hands a file the ledger committed to the other outputs: a streamed
// file's transactions are open already, a small file's records are in
// memory. A sink's failure no longer changes the file's outcome.
func (e *Engine) sink(ctx context.Context, p *part) {
	txs := p.sinks
	p.sinks = nil
	if p.whole != nil {
		var err error
		if txs, err = e.openSinks(ctx, p.info); err != nil {
			e.log.Error("output failed after the ledger commit", "path", p.info.Path, "error", err.Error())
			return
		}
		for i, s := range txs {
			if err := s.tx.Add(ctx, *p.whole); err != nil {
				e.log.Error("output failed after the ledger commit", "output", s.name, "path", p.info.Path, "error", err.Error())
				s.tx.Rollback()
				txs[i].tx = nil
			}
		}
	}
	for _, s := range txs {
		if s.tx == nil {
			continue
		}
		if _, err := s.tx.Commit(ctx); err != nil {
			e.log.Error("output failed after the ledger commit", "output", s.name, "path", p.info.Path, "error", err.Error())
		}
	}
}
