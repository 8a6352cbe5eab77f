package model

import (
	"sync"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// partsPerThread is how many parts a call of rangeJobs has per thread:
// the kernels' pool hands parts out dynamically, so a thread whose core is
// busy with another process simply takes fewer of them.
const partsPerThread = 4

// rangeJobs runs a function of plain arguments over [0,size) split into
// contiguous ranges (kernels.Split) on the kernels' thread pool
// (kernels.Parallel, kernels.Threads), without allocating in steady state:
// the arguments travel in a recycled job and fn is a top-level function,
// not a closure. Every index belongs to exactly one range, so fn may write
// per-index outputs without locks; how [0,size) is cut must not change
// any result (no sum runs across a range boundary).
//
//	var rowsJobs rangeJobs[rowsArgs]
//	rowsJobs.run(N, rowsArgs{out, inp, C}, rowsPart) // rowsPart(a *rowsArgs, lo, hi int)
type rangeJobs[A any] struct{ p sync.Pool }

type rangeJob[A any] struct {
	args A
	fn   func(a *A, lo, hi int)
	size int
}

// RunPart implements kernels.Parts.
func (j *rangeJob[A]) RunPart(i, n int) {
	if lo, hi := kernels.Split(j.size, i, n); lo < hi {
		j.fn(&j.args, lo, hi)
	}
}

// run calls fn(&args, lo, hi) over ranges covering [0,size) and returns
// when all are done.
func (p *rangeJobs[A]) run(size int, args A, fn func(a *A, lo, hi int)) {
	if size <= 0 {
		return
	}
	j, _ := p.p.Get().(*rangeJob[A])
	if j == nil {
		j = new(rangeJob[A])
	}
	j.args, j.fn, j.size = args, fn, size
	kernels.Parallel(j, min(size, partsPerThread*kernels.Threads()))
	var zero A
	j.args, j.fn = zero, nil // do not keep buffers alive from the pool
	p.p.Put(j)
}
