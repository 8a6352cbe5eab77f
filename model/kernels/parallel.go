package kernels

import "sync"

// minParallelWork is the amount of work (roughly, elements touched) below
// which the element-wise kernels run on the calling goroutine.
const minParallelWork = 1 << 15

// rowsJob is the common part of a kernel call split over rows: part i of n
// takes rows splitRange(rows, 1, i, n).
type rowsJob struct {
	rows int
	wg   sync.WaitGroup
}

// partsFor is the number of parts for work units of work, at most rows.
func partsFor(rows int, work float64) int {
	if work < minParallelWork {
		return 1
	}
	return max(1, min(Threads(), rows))
}
