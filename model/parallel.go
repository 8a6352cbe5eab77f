package model

import (
	"runtime"
	"sync"
)

// parallelFor splits [0,n) into GOMAXPROCS contiguous chunks and runs fn on
// each, the first on the calling goroutine. Each index belongs to exactly one
// chunk, so fn may write per-index outputs without locks. It allocates the
// closure and goroutines per call; the training step uses jobPool instead.
func parallelFor(n int, fn func(lo, hi int)) {
	w := runtime.GOMAXPROCS(0)
	if w > n {
		w = n
	}
	if w <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	for i := 1; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, n/w)
	wg.Wait()
}

// jobPool runs a function of plain arguments over [0,n) split into
// GOMAXPROCS contiguous chunks, on persistent worker goroutines, without
// allocating in steady state: the arguments travel in a pooled job struct and
// fn is a top-level function, not a closure.
//
//	var rowsJobs jobPool[rowsArgs]
//	rowsJobs.run(N, rowsArgs{out, inp, C}, rowsPart) // rowsPart(a *rowsArgs, lo, hi int)
type jobPool[A any] struct{ p sync.Pool }

type job[A any] struct {
	args A
	fn   func(a *A, lo, hi int)
	wg   sync.WaitGroup
}

func (j *job[A]) runRange(lo, hi int) { j.fn(&j.args, lo, hi) }

// rangeRunner is the part of a job a worker sees.
type rangeRunner interface{ runRange(lo, hi int) }

type task struct {
	r      rangeRunner
	lo, hi int
	wg     *sync.WaitGroup
}

var (
	tasks     = make(chan task, 64)
	workersMu sync.Mutex
	workersUp int
)

// ensureWorkers starts persistent workers until n are running.
func ensureWorkers(n int) {
	workersMu.Lock()
	defer workersMu.Unlock()
	for ; workersUp < n; workersUp++ {
		go func() {
			for t := range tasks {
				t.r.runRange(t.lo, t.hi)
				t.wg.Done()
			}
		}()
	}
}

// run calls fn(&args, lo, hi) over chunks covering [0,n) and returns when
// all are done.
func (p *jobPool[A]) run(n int, args A, fn func(a *A, lo, hi int)) {
	if n <= 0 {
		return
	}
	j, _ := p.p.Get().(*job[A])
	if j == nil {
		j = new(job[A])
	}
	j.args, j.fn = args, fn
	w := min(runtime.GOMAXPROCS(0), n)
	if w > 1 {
		ensureWorkers(w - 1)
		j.wg.Add(w - 1)
		for i := 1; i < w; i++ {
			tasks <- task{r: j, lo: i * n / w, hi: (i + 1) * n / w, wg: &j.wg}
		}
	}
	fn(&j.args, 0, n/w)
	j.wg.Wait()
	var zero A
	j.args, j.fn = zero, nil // do not keep buffers alive from the pool
	p.p.Put(j)
}
