package shard

import (
	"math/rand/v2"
	"testing"
)

// TestAnyAtLeast compares the SWAR scan with the plain loop for every lane
// position, values around the limit and limits around 0x8000.
func TestAnyAtLeast(t *testing.T) {
	naive := func(tok []uint16, limit int) bool {
		for _, v := range tok {
			if int(v) >= limit {
				return true
			}
		}
		return false
	}
	limits := []int{1, 2, 255, 256, 4096, 0x7FFF, 0x8000, 0x8001, 50257, 0xFFFE, 0xFFFF}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]uint16, 40)
	for _, limit := range limits {
		for _, off := range []int{0, 1, 2, 3} { // unaligned starts take the plain path
			for _, n := range []int{0, 1, 3, 4, 5, 8, 13, 36} {
				for trial := range 50 {
					tok := buf[off : off+n]
					for i := range tok {
						tok[i] = uint16(r.IntN(limit)) // all below
					}
					if n > 0 && trial%2 == 1 {
						// One value at, just above or far above the limit, or
						// just below (still no offender).
						vals := []int{limit, limit + 1, 0xFFFF, limit - 1, 0x8000, 0x7FFF}
						v := vals[r.IntN(len(vals))]
						if v <= 0xFFFF {
							tok[r.IntN(n)] = uint16(v)
						}
					}
					if got, want := anyAtLeast(tok, limit), naive(tok, limit); got != want {
						t.Fatalf("limit %d tokens %v: anyAtLeast %v, want %v", limit, tok, got, want)
					}
					p, v := firstAtLeast(tok, limit)
					wantP := -1
					for i, x := range tok {
						if int(x) >= limit {
							wantP = i
							break
						}
					}
					if p != wantP || (p >= 0 && v != int(tok[p])) {
						t.Fatalf("limit %d tokens %v: firstAtLeast (%d, %d), want position %d", limit, tok, p, v, wantP)
					}
				}
			}
		}
	}
}

// TestBigEndianPath opens shards through the copying reader used on
// big-endian machines.
func TestBigEndianPath(t *testing.T) {
	defer func(v bool) { littleEndian = v }(littleEndian)
	littleEndian = false
	dir := t.TempDir()
	tok := []uint16{1, 0x0102, 0xFF00, 65535, 7}
	p := writeShard(t, dir, "a.bin", tok)
	s, err := Open(p, MaxVocab)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, v := range s.Tokens() {
		if v != tok[i] {
			t.Fatalf("token %d = %#x, want %#x", i, v, tok[i])
		}
	}
	if _, err := Open(p, 65535); err == nil {
		t.Fatal("token 65535 accepted with vocabulary 65535")
	}
}
