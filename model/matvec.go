package model

import (
	"sync"
	"sync/atomic"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// matvec is matvecRows over kernels.Threads() threads when the matrix is
// large enough: the rows are cut into up to four parts per thread, which
// the caller and the parked workers of a persistent pool claim one at a
// time. A worker that wakes late finds the parts taken and costs nothing,
// so a busy machine slows a call down by at most one part. j is the
// caller's scratch (one per goroutine that calls matvec), so the call does
// not allocate.
//
//	out (OC), x (C), w (OC, C)
func matvec(j *matvecJob, out, x, w []float32, C, OC int, add bool) {
	threads := kernels.Threads()
	parts := min(4*threads, OC/matvecMinRows, 1<<16-1)
	if threads <= 1 || parts <= 1 || OC*C < matvecMinWork {
		matvecRows(out, x, w, C, C, OC, add)
		return
	}
	startMatvecWorkers(threads - 1)
	j.out, j.x, j.w, j.C, j.OC, j.add = out, x, w, C, OC, add
	j.wg.Add(parts)
	gen := uint32(j.ctl.Load()>>32) + 1
	j.ctl.Store(uint64(gen)<<32 | uint64(parts)<<16)
	for range threads - 1 {
		select {
		case matvecTasks <- matvecTask{j, gen}:
		default: // the workers are behind: the caller does more parts
		}
	}
	j.work(gen)
	j.wg.Wait()
}

const (
	matvecMinWork = 1 << 16 // multiply-adds below which one thread is faster
	matvecMinRows = 16      // rows per part at least
)

// matvecJob is one matvec call, reused call after call by its owner.
type matvecJob struct {
	out, x, w []float32
	C, OC     int
	add       bool
	// ctl is generation (32 bits) | parts (16) | next part to claim (16).
	// A part is claimed by a compare-and-swap that checks the generation,
	// so a task of an earlier call claims nothing and reads no field.
	ctl atomic.Uint64
	wg  sync.WaitGroup // parts not done
}

// work claims and computes parts of call gen until none is left.
func (j *matvecJob) work(gen uint32) {
	for {
		s := j.ctl.Load()
		parts, next := int(s>>16&0xffff), int(s&0xffff)
		if uint32(s>>32) != gen || next >= parts {
			return
		}
		if !j.ctl.CompareAndSwap(s, s+1) {
			continue
		}
		OC, C := j.OC, j.C
		lo, hi := next*OC/parts/4*4, (next+1)*OC/parts/4*4 // parts start at multiples of 4 rows
		if next == parts-1 {
			hi = OC
		}
		matvecRows(j.out[lo:hi], j.x, j.w[lo*C:hi*C], C, C, hi-lo, j.add)
		j.wg.Done()
	}
}

type matvecTask struct {
	j   *matvecJob
	gen uint32
}

// The matvec worker pool: parked goroutines, started on first use.
var (
	matvecTasks   = make(chan matvecTask, 64)
	matvecMu      sync.Mutex
	matvecWorkers int
)

func startMatvecWorkers(n int) {
	matvecMu.Lock()
	defer matvecMu.Unlock()
	for ; matvecWorkers < n; matvecWorkers++ {
		go func() {
			for t := range matvecTasks {
				t.j.work(t.gen)
			}
		}()
	}
}

// matvecRows is matmulForward for one row, a matrix-vector product that reads
// each weight once and packs nothing (Gemm's packing of W would copy the
// whole matrix for every token):
//
//	for o < OC: out[o] = Σ_p x[p]·w[o·ldw+p]             (add false)
//	            out[o] += Σ_p x[p]·w[o·ldw+p]            (add true)
//
//	out (OC), x (C), w (OC rows of C, row stride ldw ≥ C)
//
// With AVX2 and FMA, groups of four rows go through matvec4AVX2 (eight
// lanes per row, summed pairwise); otherwise, and for the last rows, a Go
// loop with eight accumulators in the same lane order.
func matvecRows(out, x, w []float32, C, ldw, OC int, add bool) {
	if OC == 0 {
		return
	}
	x = x[:C]
	w = w[:(OC-1)*ldw+C]
	out = out[:OC]
	o := 0
	if haveMatvec4 && C >= 16 {
		k := C &^ 15 // columns done by the assembly kernel
		var sums [32]float32
		for ; o+4 <= OC; o += 4 {
			matvec4(k, &x[0], &w[o*ldw], ldw, &sums)
			for r := range 4 {
				s := &sums
				v := ((s[8*r] + s[8*r+1]) + (s[8*r+2] + s[8*r+3])) + ((s[8*r+4] + s[8*r+5]) + (s[8*r+6] + s[8*r+7]))
				row := w[(o+r)*ldw : (o+r)*ldw+C]
				for p := k; p < C; p++ {
					v += x[p] * row[p]
				}
				if add {
					out[o+r] += v
				} else {
					out[o+r] = v
				}
			}
		}
	}
	for ; o < OC; o++ {
		v := dotGo(x, w[o*ldw:o*ldw+C])
		if add {
			out[o] += v
		} else {
			out[o] = v
		}
	}
}

// dotGo is Σ x[p]·y[p] with eight accumulators (lane p mod 8), summed
// pairwise like the assembly kernel's lanes.
func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	var s [8]float32
	p := 0
	for ; p+8 <= len(x); p += 8 {
		xs, ys := (*[8]float32)(x[p:]), (*[8]float32)(y[p:])
		s[0] += xs[0] * ys[0]
		s[1] += xs[1] * ys[1]
		s[2] += xs[2] * ys[2]
		s[3] += xs[3] * ys[3]
		s[4] += xs[4] * ys[4]
		s[5] += xs[5] * ys[5]
		s[6] += xs[6] * ys[6]
		s[7] += xs[7] * ys[7]
	}
	v := ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
	for ; p < len(x); p++ {
		v += x[p] * y[p]
	}
	return v
}
