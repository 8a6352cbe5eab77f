package model

import (
	"testing"

	"github.com/ringtrain/ringtrain/model/kernels"
)

type countArgs struct{ hits []int32 }

func countRange(a *countArgs, lo, hi int) {
	for i := lo; i < hi; i++ {
		a.hits[i]++
	}
}

var countJobs rangeJobs[countArgs]

// TestRangeJobs checks that run covers [0,size) with every index exactly
// once on 1, 2 and 3 threads, for sizes below and above the part count.
func TestRangeJobs(t *testing.T) {
	defer kernels.SetThreads(0)
	for _, threads := range []int{1, 2, 3} {
		kernels.SetThreads(threads)
		for _, size := range []int{0, 1, 2, 5, 12, 13, 100} {
			a := countArgs{hits: make([]int32, size)}
			countJobs.run(size, a, countRange)
			for i, h := range a.hits {
				if h != 1 {
					t.Fatalf("threads %d, size %d: index %d ran %d times", threads, size, i, h)
				}
			}
		}
	}
}
