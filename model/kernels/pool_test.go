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

func (r *countRunner) runPart(i, n int) {
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
