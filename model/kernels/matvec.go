package kernels

// MatVec is MatVecRows over Threads() threads when the matrix is large
// enough (the one-token decode step, where Gemm's packing of w would copy
// the whole matrix for every token):
//
//	for o < OC: out[o] = Σ_p x[p]·w[o·C+p]             (add false)
//	            out[o] += Σ_p x[p]·w[o·C+p]            (add true)
//
//	out (OC), x (C), w (OC, C)
//
// The rows are cut into up to four parts per thread, each starting at a
// multiple of four rows, so every row is computed exactly as by
// MatVecRows: the result has the same bits for any number of threads.
// Steady-state calls do not allocate.
func MatVec(out, x, w []float32, C, OC int, add bool) {
	threads := Threads()
	parts := min(partsPerThread*threads, OC/matvecMinRows, maxParts)
	if threads <= 1 || parts <= 1 || OC*C < matvecMinWork {
		MatVecRows(out, x, w, C, C, OC, add)
		return
	}
	run(matvecJobs, matvecArgs{out, x, w, C, OC, add}, parts, matvecPart)
}

const (
	matvecMinWork = 1 << 16 // multiply-adds below which one thread is faster
	matvecMinRows = 16      // rows per part at least
)

type matvecArgs struct {
	out, x, w []float32
	C, OC     int
	add       bool
}

var matvecJobs = newFreeList[job[matvecArgs]](16)

// matvecPart computes rows [lo, hi) of part i of n; parts start at
// multiples of 4 rows, the last one ends at OC.
func matvecPart(a *matvecArgs, i, n int) {
	OC, C := a.OC, a.C
	lo, hi := i*OC/n/4*4, (i+1)*OC/n/4*4
	if i == n-1 {
		hi = OC
	}
	MatVecRows(a.out[lo:hi], a.x, a.w[lo*C:hi*C], C, C, hi-lo, a.add)
}

// MatVecRows is a matrix-vector product on the calling goroutine that
// reads each weight once and packs nothing:
//
//	for o < OC: out[o] = Σ_p x[p]·w[o·ldw+p]           (add false)
//	            out[o] += Σ_p x[p]·w[o·ldw+p]          (add true)
//
//	out (OC), x (C), w (OC rows of C, row stride ldw ≥ C)
//
// With AVX2 and FMA, groups of four rows go through matvec4AVX2 (eight
// lanes per row, summed pairwise); otherwise, and for the last OC mod 4
// rows, a Go loop with eight accumulators (dotGo).
func MatVecRows(out, x, w []float32, C, ldw, OC int, add bool) {
	if OC == 0 {
		return
	}
	x = x[:C]
	w = w[:(OC-1)*ldw+C]
	out = out[:OC]
	o := 0
	if haveMatvec4() && C >= 16 {
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
