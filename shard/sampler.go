package shard

import (
	"fmt"
	"math"
	"sync"
)

// Sampler maps a global data position p (the number of sequences consumed
// since the start of training, the value a checkpoint stores) to a global
// sequence index of a Dataset, and fills batches. Epoch e = p / N covers
// positions e·N … e·N+N−1 (N = NumSequences); position p visits list entry
// j = p mod N for Sequential and Permutation(seed, e)[j] for Shuffled.
//
// Step s of global batch G covers positions s·G … s·G+G−1; rank r of W
// takes the contiguous slice s·G + ⌊r·G/W⌋ … s·G + ⌊(r+1)·G/W⌋ − 1, split
// into micro-batches (see MicroRange). A Sampler is safe for concurrent use.
type Sampler struct {
	ds    *Dataset
	n     int64
	order Order
	seed  uint64

	mu    sync.Mutex
	cache [2]epochPerm // most recently used first
}

type epochPerm struct {
	epoch int64 // -1: empty
	perm  []uint32
}

// NewSampler returns a sampler over ds. Shuffled order supports at most
// 2³²−1 sequences.
func NewSampler(ds *Dataset, order Order, seed uint64) (*Sampler, error) {
	n := int64(ds.NumSequences())
	switch order {
	case Sequential:
	case Shuffled:
		if n > math.MaxUint32 {
			return nil, fmt.Errorf("shuffled order: %d sequences exceed the limit %d", n, uint64(math.MaxUint32))
		}
	default:
		return nil, fmt.Errorf("order %v: unknown", order)
	}
	return &Sampler{ds: ds, n: n, order: order, seed: seed,
		cache: [2]epochPerm{{epoch: -1}, {epoch: -1}}}, nil
}

// Dataset returns the dataset the sampler reads.
func (s *Sampler) Dataset() *Dataset { return s.ds }

// Index returns the global sequence index visited at position p ≥ 0.
func (s *Sampler) Index(p int64) int {
	if s.order == Sequential {
		return int(p % s.n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.indexLocked(p)
}

func (s *Sampler) indexLocked(p int64) int {
	e, j := p/s.n, p%s.n
	return int(s.permLocked(e)[j])
}

// permLocked returns the permutation of epoch e, computing it into the
// least recently used cache slot if needed (allocating only the first two
// times).
func (s *Sampler) permLocked(e int64) []uint32 {
	if s.cache[0].epoch == e {
		return s.cache[0].perm
	}
	if s.cache[1].epoch != e {
		c := &s.cache[1]
		if c.perm == nil {
			c.perm = make([]uint32, s.n)
		}
		Permutation(c.perm, s.seed, uint64(e))
		c.epoch = e
	}
	s.cache[0], s.cache[1] = s.cache[1], s.cache[0]
	return s.cache[0].perm
}

// Fill writes the n sequences at positions p … p+n−1 into x and y, each
// holding at least n·T int32 (row k is the sequence at position p+k). It
// does not allocate (beyond the first two epoch permutations of a Shuffled
// sampler).
func (s *Sampler) Fill(x, y []int32, p int64, n int) {
	t := s.ds.t
	_, _ = x[:n*t], y[:n*t]
	if s.order == Shuffled {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	for k := range n {
		var i int
		if s.order == Sequential {
			i = int((p + int64(k)) % s.n)
		} else {
			i = s.indexLocked(p + int64(k))
		}
		s.ds.Sequence(i, x[k*t:(k+1)*t], y[k*t:(k+1)*t])
	}
}

// FillMicro fills x and y with micro-batch `micro` of rank `rank` among
// `world` for step `step` of global batch globalBatch (see MicroRange) and
// returns the number of sequences written; x and y must hold at least
// microSize·T int32.
func (s *Sampler) FillMicro(x, y []int32, step int64, globalBatch, rank, world, micro, microSize int) (int, error) {
	p, n, err := MicroRange(step, globalBatch, rank, world, micro, microSize)
	if err != nil {
		return 0, err
	}
	if t := s.ds.t; len(x) < n*t || len(y) < n*t {
		return 0, fmt.Errorf("micro-batch buffers hold %d and %d int32, need %d·%d = %d", len(x), len(y), n, t, n*t)
	}
	s.Fill(x, y, p, n)
	return n, nil
}

// StepPosition returns the data position at the start of step s with
// global batch G: s·G. A checkpoint taken after step s stores
// StepPosition(s+1, G).
func StepPosition(step int64, globalBatch int) int64 { return step * int64(globalBatch) }

// RankRange returns the first position and the count of rank r's slice of
// step s: positions s·G + ⌊r·G/W⌋ … s·G + ⌊(r+1)·G/W⌋ − 1 (any W ≤ G; the
// slices differ in size by at most one sequence; see docs/data.md).
func RankRange(step int64, globalBatch, rank, world int) (p int64, n int, err error) {
	switch {
	case globalBatch < 1:
		return 0, 0, fmt.Errorf("global_batch %d: must be positive", globalBatch)
	case world < 1:
		return 0, 0, fmt.Errorf("world size %d: must be positive", world)
	case world > globalBatch:
		return 0, 0, fmt.Errorf("world size %d is larger than global_batch %d: a rank would get no sequence", world, globalBatch)
	case rank < 0 || rank >= world:
		return 0, 0, fmt.Errorf("rank %d: out of range for world size %d", rank, world)
	case step < 0:
		return 0, 0, fmt.Errorf("step %d: must not be negative", step)
	}
	lo, hi := rank*globalBatch/world, (rank+1)*globalBatch/world
	return StepPosition(step, globalBatch) + int64(lo), hi - lo, nil
}

// NumMicro returns how many micro-batches of at most microSize sequences
// rank r's slice of the global batch splits into: ⌈n_r/microSize⌉.
func NumMicro(globalBatch, rank, world, microSize int) (int, error) {
	_, local, err := RankRange(0, globalBatch, rank, world)
	if err != nil {
		return 0, err
	}
	if microSize < 1 {
		return 0, fmt.Errorf("micro_batch %d: must be positive", microSize)
	}
	return (local + microSize - 1) / microSize, nil
}

// MicroRange returns the first position and the count of micro-batch m of
// rank r's slice of step s: the slice's sequences m·microSize …
// min((m+1)·microSize, n_r) − 1. Only the last micro-batch can be shorter
// (when microSize does not divide the slice).
func MicroRange(step int64, globalBatch, rank, world, micro, microSize int) (p int64, n int, err error) {
	p, local, err := RankRange(step, globalBatch, rank, world)
	if err != nil {
		return 0, 0, err
	}
	nm, err := NumMicro(globalBatch, rank, world, microSize)
	if err != nil {
		return 0, 0, err
	}
	if micro < 0 || micro >= nm {
		return 0, 0, fmt.Errorf("micro-batch %d: out of range, rank slice of %d sequences has %d micro-batches of %d", micro, local, nm, microSize)
	}
	start := micro * microSize
	return p + int64(start), min(microSize, local-start), nil
}
