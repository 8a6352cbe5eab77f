package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The worker pool: persistent goroutines that run parts of a parallel
// kernel call. The calling goroutine always runs part 0 itself, so a call
// split n ways wakes n−1 workers. Workers are started on first use and stay
// parked on the task channel.

var (
	threads     atomic.Int32 // 0: runtime.GOMAXPROCS(0)
	workersMu   sync.Mutex
	workersUp   atomic.Int32
	workerTasks = make(chan task, 64)
)

// SetThreads sets the number of threads kernel calls may use (n ≤ 0
// restores the default, runtime.GOMAXPROCS(0)). Safe to call at any time;
// calls in flight keep the count they started with.
func SetThreads(n int) {
	if n < 0 {
		n = 0
	}
	threads.Store(int32(n))
}

// Threads reports the number of threads kernel calls may use.
func Threads() int {
	if n := threads.Load(); n > 0 {
		return int(n)
	}
	return runtime.GOMAXPROCS(0)
}

// runner is one parallel kernel call; part i of n must be independent of
// the other parts.
type runner interface {
	runPart(i, n int)
}

type task struct {
	r     runner
	i, n  int
	group *sync.WaitGroup
}

// parallel runs r split into n parts on the pool and returns when all are
// done. wg must be idle; it is owned by the caller (usually a field of r, so
// that the call does not allocate).
func parallel(r runner, n int, wg *sync.WaitGroup) {
	if n <= 1 {
		r.runPart(0, 1)
		return
	}
	startWorkers(n - 1)
	wg.Add(n - 1)
	for i := 1; i < n; i++ {
		workerTasks <- task{r: r, i: i, n: n, group: wg}
	}
	r.runPart(0, n)
	wg.Wait()
}

func startWorkers(n int) {
	if int(workersUp.Load()) >= n {
		return
	}
	workersMu.Lock()
	defer workersMu.Unlock()
	for int(workersUp.Load()) < n {
		go worker()
		workersUp.Add(1)
	}
}

func worker() {
	for t := range workerTasks {
		t.r.runPart(t.i, t.n)
		t.group.Done()
	}
}

// freeList recycles scratch objects without letting the garbage collector
// drop them (unlike sync.Pool), so steady-state calls do not allocate.
type freeList[T any] struct {
	ch chan *T
}

func newFreeList[T any](n int) freeList[T] { return freeList[T]{ch: make(chan *T, n)} }

func (f freeList[T]) get() *T {
	select {
	case x := <-f.ch:
		return x
	default:
		return new(T)
	}
}

func (f freeList[T]) put(x *T) {
	select {
	case f.ch <- x:
	default:
	}
}
