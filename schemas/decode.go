package schemas

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/carpipe/carpipe/plugins"
)

// SyntaxError is a file that is not the JSON its type expects.
type SyntaxError struct {
	Offset    int64 // bytes from the start of the file
	Line, Col int   // 1-based; 0 when unknown
	Msg       string
}

func (e *SyntaxError) Error() string {
	return "invalid JSON " + place(e.Offset, e.Line, e.Col) + ": " + e.Msg
}

// FileError is a file refused at a place in it for a reason other than
// its JSON: a record larger than max_record_size, or a records pointer
// that leads to two arrays.
type FileError struct {
	Offset    int64 // bytes from the start of the file
	Line, Col int   // 1-based; 0 when unknown
	Msg       string
}

func (e *FileError) Error() string { return place(e.Offset, e.Line, e.Col) + ": " + e.Msg }

// place says where in a file an error is: by line and column when known.
func place(off int64, line, col int) string {
	if line > 0 {
		return fmt.Sprintf("at line %d, column %d (byte %d)", line, col, off)
	}
	return fmt.Sprintf("at byte %d", off)
}

// Position is the error's line and column, for reports.
func (e *FileError) Position() (int, int) { return e.Line, e.Col }

// Decode streams the file's records to fn in batches, validating them on
// t.workers goroutines while keeping their order. Memory stays bounded by a
// few batches and the largest record, which lim bounds: a larger one fails
// the file as soon as the scan passes the limit.
func (t *Type) Decode(ctx context.Context, open plugins.Opener, lim plugins.Limits, fn func(plugins.Batch) error) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	limit := lim.MaxRecord
	if limit <= 0 {
		limit = plugins.DefaultMaxRecord
	}
	err = t.decode(ctx, rc, limit, fn)
	var se *SyntaxError
	var fe *FileError
	switch {
	case errors.As(err, &se):
		se.Line, se.Col = locate(open, se.Offset)
	case errors.As(err, &fe):
		fe.Line, fe.Col = locate(open, fe.Offset)
	}
	return err
}

// sizeText writes a byte count as max_record_size is usually given.
func sizeText(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

type chunk struct {
	first  int
	raws   [][]byte  // slices of the scanner's arena
	counts [][]int32 // the sizes of each record's containers (see scanner)
	offs   []int64   // where each raw record starts in the file
	out    chan plugins.Batch
}

func (t *Type) decode(ctx context.Context, r io.Reader, limit int64, fn func(plugins.Batch) error) (err error) {
	s := newScanner(r, limit)
	defer s.release()
	defer func() {
		// fill names the record too large; this is a member name on the
		// way to the records or after them.
		if err == errTooLarge {
			err = &FileError{Offset: s.began, Msg: fmt.Sprintf("a member name is larger than max_record_size (%s)", sizeText(limit))}
		}
	}()
	parents, err := t.seek(s)
	if err != nil {
		return err
	}
	// A file of one batch, as most small files are, is checked here:
	// starting goroutines would cost more than its records.
	first := &chunk{}
	full, err := t.fill(s, first)
	if err != nil {
		return err
	}
	if !full {
		if len(first.raws) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(t.check(first)); err != nil {
				return err
			}
		}
		return t.finish(s, parents)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *chunk, t.workers)
	order := make(chan *chunk, t.workers+1)
	var wg sync.WaitGroup
	for i := 0; i < t.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.out <- t.check(c)
			}
		}()
	}
	// Emit in order on this goroutine's behalf while the reader goes on.
	emitErr := make(chan error, 1)
	go func() {
		var err error
		for c := range order {
			b := <-c.out
			if err == nil {
				if err = ctx.Err(); err == nil {
					err = fn(b)
				}
				if err != nil {
					cancel()
				}
			}
		}
		emitErr <- err
	}()

	readErr := t.split(ctx, s, first, work, order)
	close(work)
	close(order)
	wg.Wait()
	if err := <-emitErr; err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	return t.finish(s, parents)
}

// split hands c, a full batch, and the rest of the records array to the
// workers in order.
func (t *Type) split(ctx context.Context, s *scanner, c *chunk, work, order chan *chunk) error {
	send := func(c *chunk) bool {
		c.out = make(chan plugins.Batch, 1)
		select {
		case order <- c:
		case <-ctx.Done():
			return false
		}
		select {
		case work <- c:
			return true
		case <-ctx.Done():
			// The emitter waits on c.out; answer it so it can finish.
			c.out <- plugins.Batch{}
			return false
		}
	}
	for {
		if !send(c) {
			return ctx.Err()
		}
		c = &chunk{first: c.first + len(c.raws)}
		full, err := t.fill(s, c)
		if err != nil {
			return err
		}
		if !full {
			if len(c.raws) > 0 && !send(c) {
				return ctx.Err()
			}
			return nil
		}
	}
}

// fill reads records into c until it holds a batch (full) or the records
// array ends.
func (t *Type) fill(s *scanner, c *chunk) (full bool, err error) {
	s.counts = nil // the last chunk's are its own
	for len(c.raws) < t.batch {
		at, more, err := s.next(c.first == 0 && len(c.raws) == 0)
		if err != nil {
			return false, err
		}
		if !more {
			return false, nil
		}
		from := len(s.counts)
		raw, err := s.record()
		if errors.Is(err, errTooLarge) {
			return false, &FileError{Offset: s.began, Msg: fmt.Sprintf("record %d is larger than max_record_size (%s)", c.first+len(c.raws), sizeText(s.limit))}
		}
		if err != nil {
			return false, err
		}
		c.raws = append(c.raws, raw)
		c.counts = append(c.counts, s.counts[from:len(s.counts):len(s.counts)])
		c.offs = append(c.offs, at)
	}
	return true, nil
}

// level is a container seek entered on the way to the records.
type level struct {
	object bool
	member string // of an object: the one seek took
}

// seek walks the document to the records array, whose '[' it consumes. It
// returns the containers it entered.
func (t *Type) seek(s *scanner) ([]level, error) {
	if _, ok := s.space(); !ok {
		if s.err != nil {
			return nil, s.err
		}
		return nil, ErrEmpty
	}
	var parents []level
	ptr := t.Records
	var segs []string
	if ptr != "" {
		segs = strings.Split(ptr[1:], "/")
	}
	where := "the file"
	for _, seg := range segs {
		seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
		c, err := s.open()
		if err != nil {
			return nil, err
		}
		switch c {
		case '{':
			parents = append(parents, level{object: true, member: seg})
			found, err := s.find(seg)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, fmt.Errorf("%s has no %q member: the records are expected at %s", where, seg, ptr)
			}
		case '[':
			parents = append(parents, level{})
			i, err := strconv.Atoi(seg)
			if err != nil {
				return nil, fmt.Errorf("%s is an array, not an object with %q: the records are expected at %s", where, seg, ptr)
			}
			found, err := s.skip(i)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, fmt.Errorf("%s has no element %s: the records are expected at %s", where, seg, ptr)
			}
		default:
			k, err := s.scalar()
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%s is %s, not an object: the records are expected at %s", where, k, ptr)
		}
		where = fmt.Sprintf("%q", seg)
	}
	c, err := s.open()
	if err != nil {
		return nil, err
	}
	if c != '[' {
		k := "an object"
		if c != '{' {
			if k, err = s.scalar(); err != nil {
				return nil, err
			}
		}
		at := ptr
		if at == "" {
			at = "the root"
		}
		return nil, fmt.Errorf("expected an array of records at %s, got %s", at, k)
	}
	return parents, nil
}

// finish reads what follows the records array so that a truncated file or
// one with trailing garbage is refused rather than half-trusted, and so is
// a second member of the name that led to the records: which of the two
// holds them is anyone's guess (encoding/json would take the last).
func (t *Type) finish(s *scanner, parents []level) error {
	for i := len(parents) - 1; i >= 0; i-- {
		for {
			var more bool
			var err error
			if parents[i].object {
				var key []byte
				key, more, err = s.key(false)
				if err == nil && more && sameKey(key, parents[i].member) {
					return &FileError{Offset: s.keyAt, Msg: fmt.Sprintf("member %s appears twice in an object on the records pointer %s; carpipe cannot tell which holds the records", show(parents[i].member), t.Records)}
				}
			} else {
				_, more, err = s.next(false)
			}
			if err != nil {
				return err
			}
			if !more {
				break
			}
			if err := s.value(); err != nil {
				return err
			}
		}
	}
	if c, ok := s.space(); ok {
		return s.errAt(c, "unexpected data after the end of the JSON document")
	}
	return s.err
}

// sameKey reports whether raw, a member name as written, is name.
func sameKey(raw []byte, name string) bool {
	raw = raw[1 : len(raw)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	k, _, err := unescape(raw)
	return err == nil && k == name
}

// ErrEmpty is a file with no JSON in it.
var ErrEmpty = errors.New("empty file: no JSON document")

// open enters the container at the next non-space byte, which it returns;
// it leaves anything else unread.
func (s *scanner) open() (byte, error) {
	c, ok := s.space()
	if !ok {
		return 0, s.eofErr()
	}
	if c == '{' || c == '[' {
		if s.depth >= maxDepth {
			return 0, s.syntax(c, "exceeded max depth")
		}
		s.i++
		s.depth++
	}
	return c, nil
}

// scalar scans the value at the next byte, and names its kind.
func (s *scanner) scalar() (string, error) {
	c, _ := s.space()
	if err := s.value(); err != nil {
		return "", err
	}
	switch c {
	case '"':
		return "a string", nil
	case 't', 'f':
		return "a boolean", nil
	case 'n':
		return "null", nil
	}
	return "a number", nil
}

// next moves to the next element of the array being walked, past the
// comma before it; more is false when it consumed the closing ']'
// instead. at is where the element, or its comma, starts.
func (s *scanner) next(first bool) (at int64, more bool, err error) {
	c, ok := s.space()
	if !ok {
		return 0, false, s.eofErr()
	}
	at = s.off()
	switch {
	case c == ']':
		s.i++
		s.depth--
		return at, false, nil
	case first:
		return at, true, nil
	case c == ',':
		s.i++
		return at, true, nil
	case c == '}':
		return 0, false, s.syntax(c, "after array element")
	}
	return 0, false, s.errAt(c, "expected comma after array element")
}

// key moves to the next member of the object being walked, returning its
// raw key once past the colon; more is false when it consumed the closing
// '}' instead.
func (s *scanner) key(first bool) (key []byte, more bool, err error) {
	c, ok := s.space()
	if !ok {
		return nil, false, s.eofErr()
	}
	if c == '}' {
		s.i++
		s.depth--
		return nil, false, nil
	}
	if !first {
		if c != ',' {
			return nil, false, s.syntax(c, "after object key:value pair")
		}
		s.i++
		if c, ok = s.space(); !ok {
			return nil, false, s.eofErr()
		}
	}
	if c != '"' {
		return nil, false, s.syntax(c, "looking for beginning of object key string")
	}
	s.keyAt = s.off()
	s.begin()
	if err := s.str(); err != nil {
		return nil, false, err
	}
	if key, err = s.cut(); err != nil {
		return nil, false, err
	}
	if c, ok = s.space(); !ok {
		return nil, false, s.eofErr()
	}
	if c != ':' {
		return nil, false, s.syntax(c, "after object key")
	}
	s.i++
	return key, true, nil
}

// find moves to the value of the member key of the object being walked.
func (s *scanner) find(key string) (bool, error) {
	for first := true; ; first = false {
		raw, more, err := s.key(first)
		if err != nil || !more {
			return false, err
		}
		if k, _, err := unescape(raw[1 : len(raw)-1]); err == nil && k == key {
			return true, nil
		}
		if err := s.value(); err != nil {
			return false, err
		}
	}
}

// skip moves to the element n of the array being walked.
func (s *scanner) skip(n int) (bool, error) {
	for i := 0; ; i++ {
		_, more, err := s.next(i == 0)
		if err != nil || !more {
			return false, err
		}
		if i >= n {
			return true, nil
		}
		if err := s.value(); err != nil {
			return false, err
		}
	}
}

// record cuts the next value out of the file.
func (s *scanner) record() ([]byte, error) {
	if _, ok := s.space(); !ok {
		return nil, s.eofErr()
	}
	s.begin()
	if err := s.value(); err != nil {
		return nil, err
	}
	return s.cut()
}

// locate turns a byte offset into line and column by reading the file
// again; only the error path pays for it.
func locate(open plugins.Opener, off int64) (line, col int) {
	rc, err := open()
	if err != nil {
		return 0, 0
	}
	defer rc.Close()
	br := bufio.NewReader(io.LimitReader(rc, off))
	line, col = 1, 1
	for {
		b, err := br.ReadByte()
		if err != nil {
			return line, col
		}
		if b == '\n' {
			line, col = line+1, 1
		} else if b < 0x80 || b >= 0xC0 {
			col++
		}
	}
}

// Position is the error's line and column, for reports.
func (e *SyntaxError) Position() (int, int) { return e.Line, e.Col }
