package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The worker pool: persistent goroutines that help with the parts of a
// parallel kernel call. A call wakes up to Threads()−1 workers and works on
// its parts itself; every participant claims the next unclaimed part until
// none is left. So a worker that is slow to wake up (another process holds
// its core) costs nothing: the caller does its parts, and the late worker
// finds nothing to claim. Workers are started on first use and stay parked
// on the wake-up channel.

var (
	threads   atomic.Int32 // 0: runtime.GOMAXPROCS(0)
	workersMu sync.Mutex
	workersUp atomic.Int32
	wakeups   = make(chan wakeup, 64)
	calls     = newFreeList[call](16)
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

// Parts is one parallel call: RunPart(i, n) does part i of n, which must be
// independent of the other parts (typically the range Split(size, i, n) of
// rows or columns). Kernels implement it on recycled job objects.
type Parts interface {
	RunPart(i, n int)
}

// maxParts bounds the parts of one call (they are counted in 16 bits).
const maxParts = 1 << 12

// call is a parallel kernel call in flight. Call objects are recycled as
// soon as their call returns; a wake-up that arrives late carries the old
// generation and finds nothing to claim.
type call struct {
	r       Parts
	state   atomic.Uint64 // generation<<32 | parts<<16 | next part to claim
	pending atomic.Int32  // parts not finished
	done    chan struct{} // receives once per call, from whoever finishes the last part
}

type wakeup struct {
	c   *call
	gen uint32
}

// Parallel runs p split into n parts (at most 4096; more are capped, and
// RunPart sees the capped n) on the caller and up to Threads()−1 goroutines
// of the kernels' pool, and returns when all parts are done. With n ≤ 1 it
// calls p.RunPart(0, 1) on the caller. Parts are claimed dynamically, so
// which goroutine runs which part varies; results must not depend on it.
// Parallel does not allocate in steady state (p should be a pointer that
// the caller recycles) and is safe for concurrent and nested use.
func Parallel(p Parts, n int) { parallel(p, n) }

// Split returns part i of n of [0, size): contiguous ranges that cover it
// in order, their lengths differing by at most one.
func Split(size, i, n int) (lo, hi int) { return splitRange(size, 1, i, n) }

// parallel runs r split into n parts (at most maxParts) on the caller and
// up to Threads()−1 workers, and returns when all parts are done.
func parallel(r Parts, n int) {
	if n <= 1 {
		r.RunPart(0, 1)
		return
	}
	n = min(n, maxParts)
	helpers := min(n, Threads()) - 1
	startWorkers(helpers)
	c := calls.get()
	if c.done == nil {
		c.done = make(chan struct{}, 1)
	}
	c.r = r
	gen := uint32(c.state.Load()>>32) + 1
	c.pending.Store(int32(n))
	c.state.Store(uint64(gen)<<32 | uint64(n)<<16) // publishes r
	for i := 0; i < helpers; i++ {
		select {
		case wakeups <- wakeup{c, gen}:
		default: // the pool is saturated: do the work here
		}
	}
	c.work(gen)
	<-c.done
	c.r = nil
	calls.put(c)
}

// work claims and runs parts of generation gen until none is left.
func (c *call) work(gen uint32) {
	for {
		s := c.state.Load()
		if uint32(s>>32) != gen {
			return
		}
		n, i := int(s>>16&0xffff), int(s&0xffff)
		if i >= n {
			return
		}
		if !c.state.CompareAndSwap(s, s+1) {
			continue
		}
		c.r.RunPart(i, n)
		if c.pending.Add(-1) == 0 {
			c.done <- struct{}{}
		}
	}
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
	for w := range wakeups {
		w.c.work(w.gen)
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
