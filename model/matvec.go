package model

import (
	"sync"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// matvec is matvecRows split by rows over kernels.Threads() threads (the
// caller and parked workers of a persistent pool) when the matrix is large
// enough; jobs is the caller's scratch, so the call does not allocate.
//
//	out (OC), x (C), w (OC, C)
func matvec(jobs *matvecJobs, out, x, w []float32, C, OC int, add bool) {
	n := min(kernels.Threads(), len(jobs.parts), OC/matvecMinRows)
	if n <= 1 || OC*C < matvecMinWork {
		matvecRows(out, x, w, C, C, OC, add)
		return
	}
	startMatvecWorkers(n - 1)
	jobs.wg.Add(n - 1)
	for i := range n {
		lo, hi := i*OC/n/4*4, (i+1)*OC/n/4*4 // parts start at multiples of 4 rows
		if i == n-1 {
			hi = OC
		}
		jobs.parts[i] = matvecJob{out: out[lo:hi], x: x, w: w[lo*C : hi*C], C: C, OC: hi - lo, add: add, wg: &jobs.wg}
		if i > 0 {
			matvecTasks <- &jobs.parts[i]
		}
	}
	p := &jobs.parts[0]
	matvecRows(p.out, p.x, p.w, p.C, p.C, p.OC, p.add)
	jobs.wg.Wait()
	for i := range n {
		jobs.parts[i] = matvecJob{} // drop references
	}
}

const (
	matvecMinWork = 1 << 16 // multiply-adds below which one thread is faster
	matvecMinRows = 16      // rows per part at least
	matvecMaxPart = 16      // threads at most
)

// matvecJobs is the scratch of one caller of matvec.
type matvecJobs struct {
	parts [matvecMaxPart]matvecJob
	wg    sync.WaitGroup
}

// matvecJob is one part of a matvec call.
type matvecJob struct {
	out, x, w []float32
	C, OC     int
	add       bool
	wg        *sync.WaitGroup
}

// The matvec worker pool: parked goroutines, started on first use.
var (
	matvecTasks   = make(chan *matvecJob, matvecMaxPart)
	matvecMu      sync.Mutex
	matvecWorkers int
)

func startMatvecWorkers(n int) {
	matvecMu.Lock()
	defer matvecMu.Unlock()
	for ; matvecWorkers < n; matvecWorkers++ {
		go func() {
			for j := range matvecTasks {
				matvecRows(j.out, j.x, j.w, j.C, j.C, j.OC, j.add)
				j.wg.Done()
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
