package schemas

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/carpipe/carpipe/plugins"
)

// SyntaxError is a file that is not the JSON its type expects.
type SyntaxError struct {
	Offset    int64 // bytes from the start of the file
	Line, Col int   // 1-based; 0 when unknown
	Msg       string
	// value is where the JSON value holding the error starts, when
	// encoding/json gave an offset relative to it; -1 otherwise.
	value int64
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("invalid JSON at line %d, column %d (byte %d): %s", e.Line, e.Col, e.Offset, e.Msg)
	}
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// Decode streams the file's records to fn in batches, validating them on
// t.workers goroutines while keeping their order. Memory stays bounded by a
// few batches whatever the file's size.
func (t *Type) Decode(ctx context.Context, open plugins.Opener, fn func(plugins.Batch) error) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	err = t.decode(ctx, rc, fn)
	var se *SyntaxError
	if errors.As(err, &se) {
		if se.value >= 0 {
			se.Offset = refine(open, se.value, se.Offset)
		}
		se.Line, se.Col = locate(open, se.Offset)
	}
	return err
}

type chunk struct {
	first int
	raws  []json.RawMessage
	offs  []int64 // where each raw record starts in the file
	out   chan plugins.Batch
}

func (t *Type) decode(ctx context.Context, r io.Reader, fn func(plugins.Batch) error) error {
	ur := &utf8Reader{r: bufio.NewReaderSize(r, 64<<10)}
	dec := json.NewDecoder(ur)
	dec.UseNumber()
	parents, err := t.seek(dec, ur)
	if err != nil {
		return err
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

	readErr := t.split(ctx, dec, ur, work, order)
	close(work)
	close(order)
	wg.Wait()
	if err := <-emitErr; err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	return finish(dec, ur, parents)
}

// split reads the records array into chunks.
func (t *Type) split(ctx context.Context, dec *json.Decoder, ur *utf8Reader, work, order chan *chunk) error {
	n := 0
	c := &chunk{}
	flush := func() bool {
		if len(c.raws) == 0 {
			return true
		}
		c.out = make(chan plugins.Batch, 1)
		select {
		case order <- c:
		case <-ctx.Done():
			return false
		}
		select {
		case work <- c:
		case <-ctx.Done():
			// The emitter waits on c.out; answer it so it can finish.
			c.out <- plugins.Batch{}
			return false
		}
		c = &chunk{first: n}
		return true
	}
	for dec.More() {
		var raw json.RawMessage
		start := dec.InputOffset()
		if err := dec.Decode(&raw); err != nil {
			return valueErr(err, dec, ur, start)
		}
		if err := ur.err(); err != nil {
			return err
		}
		c.raws = append(c.raws, raw)
		c.offs = append(c.offs, start+ur.bom)
		n++
		if len(c.raws) == t.batch && !flush() {
			return ctx.Err()
		}
	}
	if !flush() {
		return ctx.Err()
	}
	return nil
}

// seek walks the document to the records array, whose '[' it consumes. It
// returns the kinds of the containers it entered (true for an object).
func (t *Type) seek(dec *json.Decoder, ur *utf8Reader) ([]bool, error) {
	var parents []bool
	ptr := t.Records
	var segs []string
	if ptr != "" {
		segs = strings.Split(ptr[1:], "/")
	}
	where := "the file"
	for _, seg := range segs {
		seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
		tok, err := dec.Token()
		if err != nil {
			return nil, tokenErr(err, dec, ur, "expected a JSON document")
		}
		switch tok {
		case json.Delim('{'):
			parents = append(parents, true)
			if err := seekKey(dec, ur, seg); err != nil {
				if errors.Is(err, errNotFound) {
					return nil, fmt.Errorf("%s has no %q member: the records are expected at %s", where, seg, ptr)
				}
				return nil, err
			}
		case json.Delim('['):
			parents = append(parents, false)
			i, err := strconv.Atoi(seg)
			if err != nil {
				return nil, fmt.Errorf("%s is an array, not an object with %q: the records are expected at %s", where, seg, ptr)
			}
			for ; i > 0 && dec.More(); i-- {
				if err := skip(dec, ur); err != nil {
					return nil, err
				}
			}
			if !dec.More() {
				return nil, fmt.Errorf("%s has no element %s: the records are expected at %s", where, seg, ptr)
			}
		default:
			return nil, fmt.Errorf("%s is %s, not an object: the records are expected at %s", where, kind(tok), ptr)
		}
		where = fmt.Sprintf("%q", seg)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, tokenErr(err, dec, ur, "expected a JSON document")
	}
	if tok != json.Delim('[') {
		at := ptr
		if at == "" {
			at = "the root"
		}
		return nil, fmt.Errorf("expected an array of records at %s, got %s", at, kind(tok))
	}
	return parents, nil
}

var errNotFound = errors.New("not found")

// seekKey consumes an object's members up to the value of key.
func seekKey(dec *json.Decoder, ur *utf8Reader, key string) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return tokenErr(err, dec, ur, "")
		}
		if tok == key {
			return nil
		}
		if err := skip(dec, ur); err != nil {
			return err
		}
	}
	return errNotFound
}

func skip(dec *json.Decoder, ur *utf8Reader) error {
	var raw json.RawMessage
	start := dec.InputOffset()
	if err := dec.Decode(&raw); err != nil {
		return valueErr(err, dec, ur, start)
	}
	return ur.err()
}

// finish reads what follows the records array so that a truncated file or
// one with trailing garbage is refused rather than half-trusted.
func finish(dec *json.Decoder, ur *utf8Reader, parents []bool) error {
	if _, err := dec.Token(); err != nil { // the array's ']'
		return tokenErr(err, dec, ur, "")
	}
	for i := len(parents) - 1; i >= 0; i-- {
		for dec.More() {
			if parents[i] {
				if _, err := dec.Token(); err != nil {
					return tokenErr(err, dec, ur, "")
				}
			}
			if err := skip(dec, ur); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return tokenErr(err, dec, ur, "")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return &SyntaxError{Offset: dec.InputOffset() + ur.bom, Msg: "unexpected data after the end of the JSON document", value: -1}
		}
		return tokenErr(err, dec, ur, "")
	}
	return ur.err()
}

func kind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// ErrEmpty is a file with no JSON in it.
var ErrEmpty = errors.New("empty file: no JSON document")

func tokenErr(err error, dec *json.Decoder, ur *utf8Reader, what string) error {
	if err == io.EOF {
		if dec.InputOffset() == 0 && what != "" {
			return ErrEmpty
		}
		return eof(ur)
	}
	return tokErr(err, ur)
}

func eof(ur *utf8Reader) error {
	return &SyntaxError{Offset: ur.off, Msg: "unexpected end of file", value: -1}
}

// tokErr converts an error of Token, whose offset is exact.
func tokErr(err error, ur *utf8Reader) error {
	if uerr := ur.err(); uerr != nil {
		return uerr
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &SyntaxError{Offset: se.Offset + ur.bom, Msg: se.Error(), value: -1}
	}
	return err
}

// valueErr converts an error of Decode, whose offset is not exact.
func valueErr(err error, dec *json.Decoder, ur *utf8Reader, start int64) error {
	if uerr := ur.err(); uerr != nil {
		return uerr
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &SyntaxError{Offset: start + ur.bom, Msg: se.Error(), value: start}
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return eof(ur)
	}
	return err
}

// refine finds the exact offset of a syntax error in the value starting at
// start by decoding that value alone again: encoding/json counts a fresh
// decoder's first value from its start.
func refine(open plugins.Opener, start, fallback int64) int64 {
	rc, err := open()
	if err != nil {
		return fallback
	}
	defer rc.Close()
	ur := &utf8Reader{r: bufio.NewReader(rc)}
	if _, err := io.CopyN(io.Discard, ur, start); err != nil {
		return fallback
	}
	var raw json.RawMessage
	var se *json.SyntaxError
	if err := json.NewDecoder(ur).Decode(&raw); errors.As(err, &se) && se.Offset > 0 {
		return ur.bom + start + se.Offset - 1
	}
	return fallback
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

// utf8Reader refuses invalid UTF-8, which encoding/json would silently
// replace, and skips a leading byte order mark.
type utf8Reader struct {
	r       *bufio.Reader
	started bool
	bom     int64 // bytes skipped at the start
	off     int64 // bytes read from r
	carry   []byte
	buf     []byte
	bad     error
}

func (u *utf8Reader) err() error { return u.bad }

func (u *utf8Reader) Read(p []byte) (int, error) {
	if u.bad != nil {
		return 0, u.bad
	}
	if !u.started {
		u.started = true
		if b, _ := u.r.Peek(3); bytes.Equal(b, []byte("\xEF\xBB\xBF")) {
			u.r.Discard(3)
			u.off, u.bom = 3, 3
		}
	}
	n, err := u.r.Read(p)
	data := p[:n]
	if len(u.carry) > 0 {
		u.buf = append(append(u.buf[:0], u.carry...), data...)
		data = u.buf
	}
	// An incomplete rune at the end waits for the next read.
	end := len(data)
	if err == nil {
		for i := len(data) - 1; i >= 0 && i >= len(data)-3; i-- {
			if utf8.RuneStart(data[i]) {
				if !utf8.FullRune(data[i:]) {
					end = i
				}
				break
			}
		}
	}
	if i := invalidAt(data[:end]); i >= 0 {
		u.bad = &SyntaxError{Offset: u.off - int64(len(u.carry)) + int64(i), Msg: "invalid UTF-8"}
		return 0, u.bad
	}
	u.off += int64(n)
	u.carry = append(u.carry[:0], data[end:]...)
	return n, err
}

func invalidAt(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// Position is the error's line and column, for reports.
func (e *SyntaxError) Position() (int, int) { return e.Line, e.Col }
