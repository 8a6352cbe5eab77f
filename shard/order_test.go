package shard

import (
	"slices"
	"testing"
)

// TestPermutationGolden pins the documented algorithm: the expected values
// come from an independent Python implementation of the Permutation doc
// comment, testdata/permutation.py.
func TestPermutationGolden(t *testing.T) {
	tests := []struct {
		seed, epoch uint64
		want        []uint32
	}{
		{1337, 0, []uint32{9, 0, 5, 6, 7, 8, 4, 1, 2, 3}},
		{1337, 1, []uint32{7, 1, 0, 3, 2, 4, 5, 8, 6, 9}},
		{0, 0, []uint32{4, 7, 0, 5, 9, 3, 6, 2, 8, 1}},
		{1337, 0, []uint32{14, 9, 2, 15, 4, 0, 1, 16, 12, 18, 10, 13, 8, 5, 17, 19, 11, 3, 6, 7}},
	}
	for _, tc := range tests {
		got := make([]uint32, len(tc.want))
		Permutation(got, tc.seed, tc.epoch)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Permutation(seed %d, epoch %d, N %d) = %v, want %v", tc.seed, tc.epoch, len(tc.want), got, tc.want)
		}
	}
}

func TestPermutationIsPermutation(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 64, 1000, 4097} {
		for _, seed := range []uint64{0, 1, 1337, 1 << 63} {
			for epoch := uint64(0); epoch < 3; epoch++ {
				p := make([]uint32, n)
				Permutation(p, seed, epoch)
				seen := make([]bool, n)
				for _, v := range p {
					if int(v) >= n || seen[v] {
						t.Fatalf("N %d seed %d epoch %d: %v is not a permutation", n, seed, epoch, p)
					}
					seen[v] = true
				}
			}
		}
	}
}

func TestPermutationPureAndVaries(t *testing.T) {
	const n = 1000
	perm := func(seed, epoch uint64) []uint32 {
		p := make([]uint32, n)
		// Dirty the buffer: the result must not depend on its old contents.
		for i := range p {
			p[i] = uint32(n - i)
		}
		Permutation(p, seed, epoch)
		return p
	}
	a := perm(7, 3)
	// Same (seed, epoch) after computing others: identical.
	perm(7, 4)
	perm(8, 3)
	if !slices.Equal(a, perm(7, 3)) {
		t.Fatal("Permutation(7, 3) changed between calls")
	}
	distinct := [][2]uint64{{7, 4}, {8, 3}, {7, 2}, {6, 3}, {3, 7}}
	for _, se := range distinct {
		if slices.Equal(a, perm(se[0], se[1])) {
			t.Errorf("Permutation(%d, %d) equals Permutation(7, 3)", se[0], se[1])
		}
	}
	ident := 0
	for i, v := range a {
		if int(v) == i {
			ident++
		}
	}
	if ident > 10 { // expected about 1
		t.Errorf("%d fixed points out of %d: not shuffled", ident, n)
	}
}

// TestPermutationUniform checks all 6 orders of 3 items appear about
// equally often over 6000 epochs (deterministic; each ≈1000, the bound is
// about 7 standard deviations).
func TestPermutationUniform(t *testing.T) {
	counts := map[[3]uint32]int{}
	p := make([]uint32, 3)
	for e := uint64(0); e < 6000; e++ {
		Permutation(p, 42, e)
		counts[[3]uint32(p)]++
	}
	if len(counts) != 6 {
		t.Fatalf("%d distinct orders, want 6: %v", len(counts), counts)
	}
	for k, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("order %v appeared %d times, want about 1000", k, c)
		}
	}
}

func TestBelow(t *testing.T) {
	r := splitMix64{state: 1}
	for _, n := range []uint64{1, 2, 3, 10, 1<<63 + 5, ^uint64(0)} {
		for range 1000 {
			if v := r.below(n); v >= n {
				t.Fatalf("below(%d) = %d", n, v)
			}
		}
	}
}
