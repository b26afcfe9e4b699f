package postgres

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// sentKeys remembers, approximately, the record keys this process has
// sent. New keys can then go by plain COPY, as fast as the server loads,
// and only the likely duplicates take INSERT … ON CONFLICT. It is a hint,
// never the judge of what is stored: a false hit only sends a row the
// slower exact way, and a key stored by another process or an earlier
// run makes the COPY fail with a unique violation, after which the chunk
// is merged exactly.
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

// seen marks the key as sent and tells whether it was (probably) before.
func (s *sentKeys) seen(fileType, key string) bool {
	s.once.Do(func() {
		s.seed = maphash.MakeSeed()
		s.bits.Store(newBits())
	})
	// Mixing two string hashes beats feeding one maphash.Hash, and a rare
	// collision costs only speed.
	sum := (maphash.String(s.seed, key) ^ maphash.String(s.seed, fileType)) * 0x9E3779B97F4A7C15
	// Three bits in one word: one cache miss per key, for a slightly
	// higher false hit rate than independent probes.
	bits := *s.bits.Load()
	w := &bits[sum%uint64(len(bits))]
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

func newBits() *[]atomic.Uint64 {
	b := make([]atomic.Uint64, sentBits/64)
	return &b
}
