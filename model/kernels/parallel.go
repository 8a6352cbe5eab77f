package kernels

// minParallelWork is the amount of work (roughly, elements touched) below
// which the element-wise kernels run on the calling goroutine.
const minParallelWork = 1 << 15

// rowsJob is the common part of a kernel call split over rows: part i of n
// takes rows splitRange(rows, 1, i, n).
type rowsJob struct {
	rows int
}

// partsPerThread is how many parts a row-split call has per thread: parts
// are claimed dynamically, so a thread that runs slower (its core shared
// with another process) simply takes fewer of them.
const partsPerThread = 4

// partsFor is the number of parts for work units of work, at most rows.
func partsFor(rows int, work float64) int {
	t := Threads()
	if work < minParallelWork || t <= 1 {
		return 1
	}
	return max(1, min(partsPerThread*t, rows, maxParts))
}

// job is a kernel call with arguments A whose part i of n is fn(&args, i, n).
// fn is a top-level function, not a closure, so that a call does not
// allocate; jobs are recycled through a free list per kernel.
type job[A any] struct {
	args A
	fn   func(a *A, i, n int)
}

func (j *job[A]) RunPart(i, n int) { j.fn(&j.args, i, n) }

// run splits a call over parts (from partsFor) and waits for it.
func run[A any](list freeList[job[A]], args A, parts int, fn func(a *A, i, n int)) {
	j := list.get()
	j.args, j.fn = args, fn
	parallel(j, parts)
	var zero A
	j.args = zero // drop references to the caller's slices
	list.put(j)
}
