package shard

import (
	"fmt"
	"math/bits"
)

// Order is the order in which the sequence list is visited (docs/data.md).
type Order int

const (
	// Sequential visits list entries 0, 1, 2, … in every epoch.
	Sequential Order = iota
	// Shuffled visits the list through Permutation(seed, epoch, N).
	Shuffled
)

func (o Order) String() string {
	switch o {
	case Sequential:
		return "sequential"
	case Shuffled:
		return "shuffled"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// ParseOrder parses "sequential" (or "") and "shuffled".
func ParseOrder(s string) (Order, error) {
	switch s {
	case "", "sequential":
		return Sequential, nil
	case "shuffled":
		return Shuffled, nil
	}
	return 0, fmt.Errorf("order %q: want sequential or shuffled", s)
}

// SplitMix64 constants (Steele, Lea, Flood 2014).
const (
	golden = 0x9E3779B97F4A7C15
	mixM1  = 0xBF58476D1CE4E5B9
	mixM2  = 0x94D049BB133111EB
)

// mix64 is the SplitMix64 output function.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * mixM1
	z = (z ^ (z >> 27)) * mixM2
	return z ^ (z >> 31)
}

// splitMix64 is the SplitMix64 generator: state += golden; return mix64(state).
type splitMix64 struct{ state uint64 }

func (r *splitMix64) next() uint64 {
	r.state += golden
	return mix64(r.state)
}

// below returns a uniform integer in [0, n) by Lemire's multiply-shift
// method with rejection (n > 0): x = next(); (hi, lo) = x·n as 128 bits;
// while lo < (2⁶⁴ − n) mod n, draw again; return hi.
func (r *splitMix64) below(n uint64) uint64 {
	hi, lo := bits.Mul64(r.next(), n)
	if lo < n {
		t := -n % n
		for lo < t {
			hi, lo = bits.Mul64(r.next(), n)
		}
	}
	return hi
}

// epochSeed is the SplitMix64 starting state for an epoch:
// mix64(mix64(seed + golden) + epoch + golden). Distinct (seed, epoch)
// pairs with the same seed always get distinct states.
func epochSeed(seed, epoch uint64) uint64 {
	return mix64(mix64(seed+golden) + epoch + golden)
}

// Permutation fills perm (length N) with the shuffled order of epoch
// `epoch` for `seed`: list position j of that epoch visits sequence perm[j].
// It is a pure function of (seed, epoch, N), so every worker computes the
// same permutation alone and a resumed run continues it. The algorithm,
// exactly (for reimplementation elsewhere):
//
//	state = mix64(mix64(seed + G) + epoch + G)       // G = 0x9E3779B97F4A7C15, uint64 wrap-around
//	next():  state += G; return mix64(state)          // SplitMix64
//	mix64(z): z = (z^(z>>30))·0xBF58476D1CE4E5B9; z = (z^(z>>27))·0x94D049BB133111EB; return z^(z>>31)
//	below(n): (hi, lo) = 128-bit next()·n; if lo < n { t = (2⁶⁴−n) mod n; while lo < t { (hi, lo) = next()·n } }; return hi
//	perm = [0, 1, …, N−1]
//	for i = N−1 down to 1: j = below(i+1); swap perm[i], perm[j]   // Fisher–Yates
func Permutation(perm []uint32, seed, epoch uint64) {
	for i := range perm {
		perm[i] = uint32(i)
	}
	r := splitMix64{state: epochSeed(seed, epoch)}
	for i := len(perm) - 1; i > 0; i-- {
		j := r.below(uint64(i + 1))
		perm[i], perm[j] = perm[j], perm[i]
	}
}
