package postgres

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// sentKeys remembers, approximately, the record keys this process has
// sent, by table. New keys can then go by plain COPY, as fast as the
// server loads, and only the likely duplicates take INSERT … ON CONFLICT.
// It is a hint, never the judge of what is stored: a false hit only sends
// a row the slower exact way, and a key stored by another process or an
// earlier run makes the COPY fail with a unique violation, after which the
// chunk is merged exactly.
type sentKeys struct {
	seed  maphash.Seed
	once  sync.Once
	bits  atomic.Pointer[[]atomic.Uint64]
	added atomic.Int64
}

const (
	sentBits = 1 << 25 // 4 MiB: about 1% false hits at sentCap keys
	sentCap  = 2 << 20 // past it the filter starts afresh rather than fill up
)

// sentView is the filter as one chunk sees it. Within a view bits are only
// ever set, so the first copy of a key in a chunk is the only one that can
// look new, even when another goroutine starts the filter afresh meanwhile.
type sentView struct {
	s    *sentKeys
	bits []atomic.Uint64
}

// view returns the filter's current bits.
func (s *sentKeys) view() sentView {
	s.once.Do(func() {
		s.seed = maphash.MakeSeed()
		s.bits.Store(newBits())
	})
	return sentView{s, *s.bits.Load()}
}

// seen marks the key as sent and tells whether it was (probably) before.
func (v sentView) seen(table, key string) bool {
	s := v.s
	// Mixing two string hashes beats feeding one maphash.Hash, and a rare
	// collision costs only speed.
	sum := (maphash.String(s.seed, key) ^ maphash.String(s.seed, table)) * 0x9E3779B97F4A7C15
	// Three bits in one word: one cache miss per key, for a slightly
	// higher false hit rate than independent probes.
	w := &v.bits[sum%uint64(len(v.bits))]
	m := uint64(1)<<(sum>>40&63) | uint64(1)<<(sum>>46&63) | uint64(1)<<(sum>>52&63)
	old := w.Load()&m == m
	if !old {
		w.Or(m)
	}
	if !old && s.added.Add(1) > sentCap {
		s.added.Store(0)
		s.bits.Store(newBits())
	}
	return old
}

// seen is view().seen, for one key.
func (s *sentKeys) seen(table, key string) bool {
	return s.view().seen(table, key)
}

func newBits() *[]atomic.Uint64 {
	b := make([]atomic.Uint64, sentBits/64)
	return &b
}
