package schemas

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit, so that the same files pass.
const maxDepth = 10000

const (
	bufSize  = 64 << 10
	slabSize = 64 << 10
)

// scanner reads a JSON document strictly in one pass over a bounded
// buffer, and cuts values out of it into an arena. It refuses exactly what
// encoding/json refuses, and invalid UTF-8 too, at the offending byte. Its
// messages are encoding/json's, so that reports read as they always did.
type scanner struct {
	r     io.Reader
	buf   []byte
	i     int   // the next byte of buf
	base  int64 // the file offset of buf[0]
	eof   bool
	err   error  // a read error other than io.EOF
	depth int    // containers open around the value being scanned
	stack []byte // containers open inside it: '{' or '['

	// While cutting, the bytes from buf[mark:] go to arena before the
	// buffer moves on.
	cutting bool
	mark    int
	arena   []byte
	start   int   // where the value being cut starts in arena
	slab    int   // the next slab's size: small files need little
	limit   int64 // the most a value cut may hold
	spill   [][]byte
	spilled int // bytes in spill
	// While cutting, the member or element count of each non-empty
	// container, in the order they open: parse sizes maps and slices by
	// them once, instead of growing them.
	counts []int32
	opened []int32 // the counts of the containers open, a stack
	began  int64   // the file offset of the value being cut
	keyAt  int64   // the file offset of the last member name key read

	pooled *[bufSize]byte
}

// release returns the read buffer; values cut stay valid.
func (s *scanner) release() {
	if s.pooled != nil {
		bufs.Put(s.pooled)
		s.pooled, s.buf = nil, nil
	}
}

// bufs are read buffers: small files come by the thousand.
var bufs = sync.Pool{New: func() any { return new([bufSize]byte) }}

// errTooLarge is a value cut past the scanner's limit; fill says which.
var errTooLarge = errors.New("value larger than the limit")

func newScanner(r io.Reader, limit int64) *scanner {
	s := &scanner{r: r, pooled: bufs.Get().(*[bufSize]byte), limit: limit}
	s.buf = s.pooled[:0]
	if s.has(3) && bytes.HasPrefix(s.buf, []byte("\xEF\xBB\xBF")) {
		s.i = 3 // a byte order mark, which offsets still count
	}
	return s
}

// off is the file offset of the next byte.
func (s *scanner) off() int64 { return s.base + int64(s.i) }

// more reads more of the file, keeping buf[s.i:]. It reports false at the
// end of the file or on a read error.
func (s *scanner) more() bool {
	if s.eof || s.err != nil {
		return false
	}
	if s.cutting {
		if !s.save(s.buf[s.mark:s.i]) {
			return false
		}
		s.mark = 0
	}
	n := copy(s.buf[:cap(s.buf)], s.buf[s.i:])
	s.base += int64(s.i)
	s.i = 0
	if n == cap(s.buf) {
		s.buf = slices.Grow(s.buf[:n], n)
	}
	for tries := 0; ; tries++ {
		m, err := s.r.Read(s.buf[n:cap(s.buf)])
		s.buf = s.buf[:n+m]
		switch {
		case err == io.EOF:
			s.eof = true
		case err != nil:
			s.err = err
		case m == 0 && tries == 100:
			s.err = io.ErrNoProgress
		}
		if m > 0 {
			return true
		}
		if s.eof || s.err != nil {
			return false
		}
	}
}

// has reports whether n bytes are buffered from s.i on, reading if need be.
func (s *scanner) has(n int) bool {
	for len(s.buf)-s.i < n {
		if !s.more() {
			return false
		}
	}
	return true
}

// at is the byte k after the next one.
func (s *scanner) at(k int) (byte, bool) {
	if !s.has(k + 1) {
		return 0, false
	}
	return s.buf[s.i+k], true
}

func (s *scanner) peek() (byte, bool) {
	if s.i < len(s.buf) || s.more() {
		return s.buf[s.i], true
	}
	return 0, false
}

// space skips white space and returns the next byte, unread; false at the
// end of the file.
func (s *scanner) space() (byte, bool) {
	for {
		b, i := s.buf, s.i
		for ; i < len(b); i++ {
			if c := b[i]; c > ' ' || c != ' ' && c != '\n' && c != '\r' && c != '\t' {
				s.i = i
				return c, true
			}
		}
		s.i = i
		if !s.more() {
			return 0, false
		}
	}
}

// begin starts cutting a value at the next byte.
func (s *scanner) begin() {
	s.cutting, s.mark, s.start, s.began = true, s.i, len(s.arena), s.off()
}

// cut returns the bytes read since begin. They stay valid: the arena only
// ever grows past them.
func (s *scanner) cut() ([]byte, error) {
	s.cutting = false
	if !s.save(s.buf[s.mark:s.i]) {
		return nil, s.err
	}
	if s.spill != nil {
		// One slice of the value's exact size, outside the arena.
		v := make([]byte, 0, s.spilled)
		for _, b := range s.spill {
			v = append(v, b...)
		}
		s.spill, s.spilled = nil, 0
		return v, nil
	}
	n := len(s.arena)
	return s.arena[s.start:n:n], nil
}

// spillFrom is the size from which a value being cut leaves the arena for
// blocks of its own, joined once at its end: growing one slice by
// doubling would allocate up to four times the value.
const spillFrom = 1 << 20

// save moves p to the arena, unless the value being cut would then be
// larger than the limit: the scanner then fails with errTooLarge, having
// held no more than the limit and a buffer.
func (s *scanner) save(p []byte) bool {
	part := s.arena[s.start:]
	if int64(len(part)+s.spilled+len(p)) > s.limit {
		s.err = errTooLarge
		return false
	}
	switch {
	case s.spill != nil:
		last := &s.spill[len(s.spill)-1]
		if len(*last)+len(p) > cap(*last) {
			s.spill = append(s.spill, make([]byte, 0, max(spillFrom, len(p))))
			last = &s.spill[len(s.spill)-1]
		}
		*last = append(*last, p...)
		s.spilled += len(p)
		return true
	case len(part)+len(p) > spillFrom:
		s.spill = [][]byte{append(make([]byte, 0, 2*spillFrom), part...)}
		s.spilled = len(part)
		s.arena = s.arena[:s.start] // the arena keeps what values before it hold
		return s.save(p)
	case len(s.arena)+len(p) > cap(s.arena):
		// A new slab: the values already cut keep the old one.
		s.slab = min(max(2*s.slab, 4<<10), slabSize)
		slab := make([]byte, 0, max(s.slab, 2*(len(part)+len(p))))
		s.arena = append(slab, part...)
		s.start = 0
	}
	s.arena = append(s.arena, p...)
	return true
}

// value scans one JSON value, starting at the next non-space byte.
func (s *scanner) value() error {
	s.stack, s.opened = s.stack[:0], s.opened[:0]
	for {
		opened, err := s.item()
		if err != nil {
			return err
		}
		if opened {
			continue
		}
		if done, err := s.after(); done || err != nil {
			return err
		}
	}
}

// item scans a scalar or an empty container, or opens a container; for an
// object, up to its first value.
func (s *scanner) item() (opened bool, err error) {
	c, ok := s.space()
	if !ok {
		return false, s.eofErr()
	}
	switch c {
	case '{', '[':
		if s.depth+len(s.stack) >= maxDepth {
			return false, s.syntax(c, "exceeded max depth")
		}
		s.i++
		d, ok := s.space()
		if !ok {
			return false, s.eofErr()
		}
		if d == c+2 { // '}' or ']'
			s.i++
			return false, nil
		}
		s.stack = append(s.stack, c)
		if s.cutting {
			s.opened = append(s.opened, int32(len(s.counts)))
			s.counts = append(s.counts, 1)
		}
		if c == '{' {
			return true, s.member()
		}
		return true, nil
	case '"':
		return false, s.str()
	case 't':
		return false, s.literal("true")
	case 'f':
		return false, s.literal("false")
	case 'n':
		return false, s.literal("null")
	}
	if c == '-' || isDigit(c) {
		return false, s.number()
	}
	return false, s.syntax(c, "looking for beginning of value")
}

// after follows a value: it closes the containers it ends and consumes the
// comma, and an object's next key, before the next value. done is true when
// the outermost value is complete.
func (s *scanner) after() (done bool, err error) {
	for len(s.stack) > 0 {
		c, ok := s.space()
		if !ok {
			return false, s.eofErr()
		}
		top := s.stack[len(s.stack)-1]
		switch {
		case c == ',':
			s.i++
			if s.cutting {
				s.counts[s.opened[len(s.opened)-1]]++
			}
			if top == '{' {
				return false, s.member()
			}
			return false, nil
		case c == top+2:
			s.i++
			s.stack = s.stack[:len(s.stack)-1]
			if s.cutting {
				s.opened = s.opened[:len(s.opened)-1]
			}
		case top == '{':
			return false, s.syntax(c, "after object key:value pair")
		default:
			return false, s.syntax(c, "after array element")
		}
	}
	return true, nil
}

// member scans an object's key and its colon.
func (s *scanner) member() error {
	c, ok := s.space()
	if !ok {
		return s.eofErr()
	}
	if c != '"' {
		return s.syntax(c, "looking for beginning of object key string")
	}
	if err := s.str(); err != nil {
		return err
	}
	if c, ok = s.space(); !ok {
		return s.eofErr()
	}
	if c != ':' {
		return s.syntax(c, "after object key")
	}
	s.i++
	return nil
}

// strByte marks the bytes a string holds as they are.
var strByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans a string whose quote is the next byte.
func (s *scanner) str() error {
	s.i++
	for {
		b, i := s.buf, s.i
		for i < len(b) && strByte[b[i]] {
			i++
		}
		s.i = i
		if i == len(b) {
			if !s.more() {
				return s.eofErr()
			}
			continue
		}
		switch c := b[i]; {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			if err := s.escape(); err != nil {
				return err
			}
		case c < 0x20:
			return s.syntax(c, "in string literal")
		default:
			n := s.runeLen()
			if n == 0 {
				return s.badUTF8()
			}
			s.i += n
		}
	}
}

func (s *scanner) escape() error {
	c, ok := s.at(1)
	if !ok {
		return s.eofErr()
	}
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return nil
	case 'u':
		for k := 2; k < 6; k++ {
			h, ok := s.at(k)
			if !ok {
				return s.eofErr()
			}
			if !isHex(h) {
				s.i += k
				return s.syntax(h, `in \u hexadecimal character escape`)
			}
		}
		s.i += 6
		return nil
	}
	s.i++
	return s.syntax(c, "in string escape code")
}

// runeLen is the length of the valid UTF-8 rune at s.i, or 0.
func (s *scanner) runeLen() int {
	s.has(utf8.UTFMax) // fewer at the end of the file
	r, n := utf8.DecodeRune(s.buf[s.i:])
	if r == utf8.RuneError && n <= 1 {
		return 0
	}
	return n
}

// number scans a number whose first byte, '-' or a digit, is the next one.
func (s *scanner) number() error {
	if s.buf[s.i] == '-' {
		s.i++
		c, ok := s.peek()
		if !ok {
			return s.eofErr()
		}
		if !isDigit(c) {
			return s.syntax(c, "in numeric literal")
		}
	}
	if s.buf[s.i] == '0' {
		s.i++ // no more digits may follow
	} else {
		s.digits()
	}
	c, ok := s.peek()
	if ok && c == '.' {
		s.i++
		if c, ok = s.peek(); !ok {
			return s.eofErr()
		}
		if !isDigit(c) {
			return s.syntax(c, "after decimal point in numeric literal")
		}
		s.digits()
		c, ok = s.peek()
	}
	if ok && (c == 'e' || c == 'E') {
		s.i++
		if c, ok = s.peek(); ok && (c == '+' || c == '-') {
			s.i++
			c, ok = s.peek()
		}
		if !ok {
			return s.eofErr()
		}
		if !isDigit(c) {
			return s.syntax(c, "in exponent of numeric literal")
		}
		s.digits()
	}
	return nil
}

func (s *scanner) digits() {
	for {
		b, i := s.buf, s.i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		s.i = i
		if i < len(b) || !s.more() {
			return
		}
	}
}

// literal scans true, false or null, whose first byte is the next one.
func (s *scanner) literal(lit string) error {
	if s.has(len(lit)) && string(s.buf[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return nil
	}
	for k := 1; k < len(lit); k++ {
		c, ok := s.at(k)
		if !ok {
			return s.eofErr()
		}
		if c != lit[k] {
			s.i += k
			return s.syntax(c, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	s.i += len(lit)
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// syntax is an error at the next byte, c, in encoding/json's words.
func (s *scanner) syntax(c byte, context string) error {
	return s.errAt(c, "invalid character "+quoteChar(c)+" "+context)
}

// errAt is an error at the next byte, c; a byte that starts no valid rune
// is invalid UTF-8 before it is out of place. A read that failed, or a
// value cut too large, may have left c and what follows it short: that
// error comes first.
func (s *scanner) errAt(c byte, msg string) error {
	if s.err != nil {
		return s.err
	}
	if c >= utf8.RuneSelf && s.runeLen() == 0 {
		return s.badUTF8()
	}
	return &SyntaxError{Offset: s.off(), Msg: msg}
}

func (s *scanner) badUTF8() error {
	if s.err != nil {
		return s.err // the rune may be cut short
	}
	return &SyntaxError{Offset: s.off(), Msg: "invalid UTF-8"}
}

// eofErr is the error of a file that ends, or fails to read, too early.
func (s *scanner) eofErr() error {
	if s.err != nil {
		return s.err
	}
	return &SyntaxError{Offset: s.base + int64(len(s.buf)), Msg: "unexpected end of file"}
}

// quoteChar shows a byte as encoding/json's errors do.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}
