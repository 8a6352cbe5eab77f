package kernels

import (
	"sync"
	"sync/atomic"
	"testing"
)

// countRunner counts how often each part runs.
type countRunner struct {
	counts []atomic.Int32
	bad    atomic.Int32
}

func (r *countRunner) RunPart(i, n int) {
	if n != len(r.counts) {
		r.bad.Add(1)
		return
	}
	r.counts[i].Add(1)
}

// TestParallelRunsEveryPartOnce runs many calls from concurrent goroutines
// (more than the pool has workers) and checks that every part of every call
// runs exactly once, on any number of threads.
func TestParallelRunsEveryPartOnce(t *testing.T) {
	defer SetThreads(0)
	for _, threads := range []int{1, 2, 5} {
		SetThreads(threads)
		var wg sync.WaitGroup
		for g := 0; g < 6; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for call := 0; call < 300; call++ {
					n := 1 + (call*7+g)%40
					r := &countRunner{counts: make([]atomic.Int32, n)}
					parallel(r, n)
					if r.bad.Load() != 0 {
						t.Errorf("threads %d: a part saw the wrong part count", threads)
						return
					}
					for i := range r.counts {
						if c := r.counts[i].Load(); c != 1 {
							t.Errorf("threads %d, call with %d parts: part %d ran %d times", threads, n, i, c)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	}
}

// TestSplit checks that the parts of Split cover [0, size) in order, each
// once, with lengths differing by at most one.
func TestSplit(t *testing.T) {
	for _, tc := range []struct{ size, n int }{
		{0, 1}, {0, 3}, {1, 1}, {1, 4}, {7, 2}, {8, 2}, {10, 3}, {100, 7}, {5, 5}, {3, 8},
	} {
		prev, minLen, maxLen := 0, tc.size, 0
		for i := 0; i < tc.n; i++ {
			lo, hi := Split(tc.size, i, tc.n)
			if lo != prev || hi < lo {
				t.Fatalf("Split(%d, %d, %d) = [%d, %d), want it to start at %d", tc.size, i, tc.n, lo, hi, prev)
			}
			prev = hi
			minLen, maxLen = min(minLen, hi-lo), max(maxLen, hi-lo)
		}
		if prev != tc.size {
			t.Errorf("Split(%d, ·, %d): parts end at %d", tc.size, tc.n, prev)
		}
		if maxLen-minLen > 1 {
			t.Errorf("Split(%d, ·, %d): part lengths %d..%d", tc.size, tc.n, minLen, maxLen)
		}
	}
}

// sumParts writes, per part, the sum of its range of x.
type sumParts struct {
	x, sums []float64
}

func (p *sumParts) RunPart(i, n int) {
	lo, hi := Split(len(p.x), i, n)
	var s float64
	for _, v := range p.x[lo:hi] {
		s += v
	}
	p.sums[i] = s
}

// TestParallelExported checks Parallel's results on 1, 2 and 3 threads,
// and that it does not allocate in steady state.
func TestParallelExported(t *testing.T) {
	defer SetThreads(0)
	x := make([]float64, 1000)
	for i := range x {
		x[i] = float64(i)
	}
	for _, threads := range []int{1, 2, 3} {
		SetThreads(threads)
		for _, n := range []int{1, 2, 5, 16} {
			p := &sumParts{x: x, sums: make([]float64, n)}
			Parallel(p, n)
			var total float64
			for _, s := range p.sums {
				total += s
			}
			if total != 999*1000/2 {
				t.Errorf("threads %d, %d parts: sum %v, want %v", threads, n, total, 999*1000/2)
			}
		}
		p := &sumParts{x: x, sums: make([]float64, 8)}
		if a := testing.AllocsPerRun(50, func() { Parallel(p, 8) }); a != 0 {
			t.Errorf("threads %d: Parallel allocates %v times per call", threads, a)
		}
	}
}
