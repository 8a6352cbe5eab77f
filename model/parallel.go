package model

import (
	"runtime"
	"sync"
)

// parallelFor splits [0,n) into GOMAXPROCS contiguous chunks and runs fn on
// each, the first on the calling goroutine. Each index belongs to exactly one
// chunk, so fn may write per-index outputs without locks.
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
