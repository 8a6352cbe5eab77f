package kernels

import (
	"fmt"
	"math"
)

// RMSNormForward normalises every row, out = x / sqrt(mean(x²) + eps) · g,
// and caches rstd = 1/sqrt(mean(x²) + eps) for the backward pass.
//
//	out (N, C), rstd (N), inp (N, C), g (C)
func RMSNormForward(out, rstd, inp, g []float32, N, C int, eps float32) {
	checkLen("RMSNormForward", N*C, out, inp)
	checkLen("RMSNormForward", N, rstd)
	checkLen("RMSNormForward", C, g)
	run(rmsFwdJobs, rmsArgs{out: out, rstd: rstd, inp: inp, g: g, N: N, C: C, eps: eps}, partsFor(N, float64(N*C)), rmsnormForwardPart)
}

// RMSNormBackward accumulates the gradients of inp and g. With
// y = x·r·g and r = (mean(x²)+eps)^(-1/2):
//
//	dx += r·(dy⊙g) − x·r³/C·Σ(dy⊙g⊙x);  dg += Σ_rows dy⊙x·r
//
//	dinp (N, C), dg (C), dout (N, C), inp (N, C), g (C), rstd (N)
func RMSNormBackward(dinp, dg, dout, inp, g, rstd []float32, N, C int) {
	checkLen("RMSNormBackward", N*C, dinp, dout, inp)
	checkLen("RMSNormBackward", N, rstd)
	checkLen("RMSNormBackward", C, g, dg)
	parts := partsFor(N, float64(N*C))
	buf := scratch.get()
	// Part 0 adds into dg; the others into rows of buf, summed below.
	buf.f = grow(buf.f, (parts-1)*C)
	clear(buf.f)
	run(rmsBwdJobs, rmsArgs{out: dinp, dg: dg, dout: dout, inp: inp, g: g, rstd: rstd, partial: buf.f, N: N, C: C}, parts, rmsnormBackwardPart)
	for p := 0; p < parts-1; p++ {
		addTo(dg[:C], buf.f[p*C:(p+1)*C])
	}
	scratch.put(buf)
}

type rmsArgs struct {
	out, rstd, inp, g, dg, dout, partial []float32
	N, C                                 int
	eps                                  float32
}

var (
	rmsFwdJobs = newFreeList[job[rmsArgs]](8)
	rmsBwdJobs = newFreeList[job[rmsArgs]](8)
	scratch    = newFreeList[floatBuf](8)
)

// floatBuf is a recycled scratch slice.
type floatBuf struct{ f []float32 }

func rmsnormForwardPart(a *rmsArgs, i, n int) {
	lo, hi := splitRange(a.N, 1, i, n)
	C := a.C
	g := a.g[:C]
	for r := lo; r < hi; r++ {
		x := a.inp[r*C : (r+1)*C]
		s := float32(1 / math.Sqrt(sumSquares(x)/float64(C)+float64(a.eps)))
		a.rstd[r] = s
		o := a.out[r*C : (r+1)*C]
		o = o[:len(x)]
		g := g[:len(x)]
		for j, v := range x {
			o[j] = v * s * g[j]
		}
	}
}

func rmsnormBackwardPart(a *rmsArgs, i, n int) {
	lo, hi := splitRange(a.N, 1, i, n)
	C := a.C
	g := a.g[:C]
	dg := a.dg[:C]
	if i > 0 {
		dg = a.partial[(i-1)*C : i*C]
	}
	for r := lo; r < hi; r++ {
		x := a.inp[r*C : (r+1)*C]
		dy := a.dout[r*C : (r+1)*C]
		dx := a.out[r*C : (r+1)*C]
		dy, dx, g, dg := dy[:len(x)], dx[:len(x)], g[:len(x)], dg[:len(x)]
		s := a.rstd[r]
		var d0, d1 float32
		j := 0
		for ; j+2 <= len(x); j += 2 {
			d0 += dy[j] * g[j] * x[j]
			d1 += dy[j+1] * g[j+1] * x[j+1]
		}
		for ; j < len(x); j++ {
			d0 += dy[j] * g[j] * x[j]
		}
		k := (d0 + d1) * s * s * s / float32(C)
		for j, v := range x {
			dx[j] += s*dy[j]*g[j] - k*v
			dg[j] += dy[j] * v * s
		}
	}
}

// sumSquares is Σ x² in float64 with four independent chains.
func sumSquares(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := (*[4]float32)(x[i:])
		s0 += float64(v[0]) * float64(v[0])
		s1 += float64(v[1]) * float64(v[1])
		s2 += float64(v[2]) * float64(v[2])
		s3 += float64(v[3]) * float64(v[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i]) * float64(x[i])
	}
	return s0 + s1 + s2 + s3
}

func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

// checkLen panics unless every slice holds at least n values.
func checkLen(fn string, n int, s ...[]float32) {
	for i, x := range s {
		if len(x) < n {
			panic(fmt.Sprintf("kernels: %s: argument %d has %d values, needs %d", fn, i, len(x), n))
		}
	}
}

// rmsnormRef is the reference of RMSNormForward and RMSNormBackward, in
// float64, one row at a time.
func rmsnormRef(out, rstd, inp, g []float32, N, C int, eps float32) {
	for r := 0; r < N; r++ {
		var ss float64
		for _, v := range inp[r*C : (r+1)*C] {
			ss += float64(v) * float64(v)
		}
		s := 1 / math.Sqrt(ss/float64(C)+float64(eps))
		rstd[r] = float32(s)
		for j := 0; j < C; j++ {
			out[r*C+j] = float32(float64(inp[r*C+j]) * s * float64(g[j]))
		}
	}
}
