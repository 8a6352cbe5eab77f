package model

import "math"

// rmsnormEps is the ε of RMSNorm(x) = x / sqrt(mean(x²) + ε) · g.
const rmsnormEps = 1e-5

type rmsnormArgs struct {
	out, rstd, inp, g, dinp, dg, dout []float32
	N, C                              int
}

var rmsnormFwdJobs, rmsnormBwdRowJobs, rmsnormBwdColJobs rangeJobs[rmsnormArgs]

// rmsnormForward normalises every row and caches 1/sqrt(mean(x²)+ε) for
// the backward pass.
//
//	out (N, C), rstd (N), inp (N, C), g (C)
func rmsnormForward(out, rstd, inp, g []float32, N, C int) {
	rmsnormFwdJobs.run(N, rmsnormArgs{out: out, rstd: rstd, inp: inp, g: g, N: N, C: C}, rmsnormForwardRows)
}

func rmsnormForwardRows(a *rmsnormArgs, lo, hi int) {
	C := a.C
	for i := lo; i < hi; i++ {
		x := a.inp[i*C : (i+1)*C]
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		r := float32(1 / math.Sqrt(ss/float64(C)+rmsnormEps))
		a.rstd[i] = r
		o := a.out[i*C : (i+1)*C]
		g := a.g[:C]
		for j, v := range x {
			o[j] = v * r * g[j]
		}
	}
}

// rmsnormBackward accumulates the gradients of inp and g.
// With y = x·r·g and r = (mean(x²)+ε)^(-1/2):
// dx = r·(dy⊙g) − x·r³/C·Σ(dy⊙g⊙x), dg = Σ_rows dy⊙x·r.
//
//	dinp (N, C), dg (C), dout (N, C), inp (N, C), g (C), rstd (N)
func rmsnormBackward(dinp, dg, dout, inp, g, rstd []float32, N, C int) {
	args := rmsnormArgs{dinp: dinp, dg: dg, dout: dout, inp: inp, g: g, rstd: rstd, N: N, C: C}
	rmsnormBwdRowJobs.run(N, args, rmsnormBackwardRows)
	rmsnormBwdColJobs.run(C, args, rmsnormBackwardCols) // dg by column ranges: no races
}

func rmsnormBackwardRows(a *rmsnormArgs, lo, hi int) {
	C := a.C
	g := a.g[:C]
	for i := lo; i < hi; i++ {
		x := a.inp[i*C : (i+1)*C]
		dy := a.dout[i*C : (i+1)*C]
		r := a.rstd[i]
		var dot float64
		for j, v := range x {
			dot += float64(dy[j] * g[j] * v)
		}
		k := float32(dot) * r * r * r / float32(C)
		dx := a.dinp[i*C : (i+1)*C]
		for j, v := range x {
			dx[j] += r*dy[j]*g[j] - k*v
		}
	}
}

func rmsnormBackwardCols(a *rmsnormArgs, c0, c1 int) {
	C := a.C
	d := a.dg[c0:c1]
	for i := 0; i < a.N; i++ {
		r := a.rstd[i]
		x := a.inp[i*C+c0 : i*C+c1]
		dy := a.dout[i*C+c0 : i*C+c1]
		for j, v := range x {
			d[j] += dy[j] * v * r
		}
	}
}
