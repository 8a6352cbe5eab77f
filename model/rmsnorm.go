package model

import "math"

// rmsnormEps is the ε of RMSNorm(x) = x / sqrt(mean(x²) + ε) · g.
const rmsnormEps = 1e-5

// rmsnormForward normalises every row and caches 1/sqrt(mean(x²)+ε) for
// the backward pass.
//
//	out (N, C), rstd (N), inp (N, C), g (C)
func rmsnormForward(out, rstd, inp, g []float32, N, C int) {
	parallelFor(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := inp[i*C : (i+1)*C]
			var ss float64
			for _, v := range x {
				ss += float64(v) * float64(v)
			}
			r := float32(1 / math.Sqrt(ss/float64(C)+rmsnormEps))
			rstd[i] = r
			o := out[i*C : (i+1)*C]
			for j, v := range x {
				o[j] = v * r * g[j]
			}
		}
	})
}

// rmsnormBackward accumulates the gradients of inp and g.
// With y = x·r·g and r = (mean(x²)+ε)^(-1/2):
// dx = r·(dy⊙g) − x·r³/C·Σ(dy⊙g⊙x), dg = Σ_rows dy⊙x·r.
//
//	dinp (N, C), dg (C), dout (N, C), inp (N, C), g (C), rstd (N)
func rmsnormBackward(dinp, dg, dout, inp, g, rstd []float32, N, C int) {
	parallelFor(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := inp[i*C : (i+1)*C]
			dy := dout[i*C : (i+1)*C]
			r := rstd[i]
			var dot float64
			for j, v := range x {
				dot += float64(dy[j] * g[j] * v)
			}
			k := float32(dot) * r * r * r / float32(C)
			dx := dinp[i*C : (i+1)*C]
			for j, v := range x {
				dx[j] += r*dy[j]*g[j] - k*v
			}
		}
	})
	parallelFor(C, func(c0, c1 int) {
		for i := 0; i < N; i++ {
			r := rstd[i]
			x := inp[i*C+c0 : i*C+c1]
			dy := dout[i*C+c0 : i*C+c1]
			d := dg[c0:c1]
			for j, v := range x {
				d[j] += dy[j] * v * r
			}
		}
	})
}
