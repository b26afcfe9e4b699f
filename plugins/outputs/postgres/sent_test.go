package postgres

import (
	"fmt"
	"testing"
)

func TestSentKeys(t *testing.T) {
	var s sentKeys
	const n = 200000
	for i := range n {
		if s.seen("a", fmt.Sprint(i)) && i < 10 {
			t.Fatalf("key %d seen before it was sent", i)
		}
	}
	for i := range n {
		if !s.seen("a", fmt.Sprint(i)) {
			t.Fatalf("key %d sent but not seen", i)
		}
	}
	// The file type is part of the key.
	hits := 0
	for i := range n {
		if s.seen("b", fmt.Sprint(i)) {
			hits++
		}
	}
	if hits > n/100 {
		t.Errorf("%d of %d keys of another file type seen as sent: false hits over 1%%", hits, n)
	}
}

func TestSentKeysStartsAfresh(t *testing.T) {
	var s sentKeys
	for i := range sentCap + sentCap/10 { // false hits do not count towards the cap
		s.seen("a", fmt.Sprint(i))
	}
	if s.seen("a", "0") && s.seen("a", "1") && s.seen("a", "2") {
		t.Error("the filter kept its keys past sentCap; it should start afresh")
	}
}

// TestSentViewKeepsItsBits: a chunk's view of the filter only gains bits,
// even when another chunk starts the filter afresh meanwhile, so a key's
// second copy in the chunk never looks new.
func TestSentViewKeepsItsBits(t *testing.T) {
	var s sentKeys
	v := s.view()
	if v.seen("a", "k") {
		t.Fatal("k seen before it was sent")
	}
	for i := range sentCap + sentCap/10 {
		s.seen("b", fmt.Sprint(i))
	}
	if !v.seen("a", "k") {
		t.Error("the view lost k when the filter started afresh")
	}
	if s.seen("a", "k") {
		t.Error("the fresh filter still holds k")
	}
}
