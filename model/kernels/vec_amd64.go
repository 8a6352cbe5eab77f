//go:build amd64 && !noasm

package kernels

import "golang.org/x/sys/cpu"

// Vector levels of the row primitives.
const (
	vecGo = iota
	vecAVX2
	vecAVX512
)

// vecLevel selects the row primitives: AVX-512 (16 lanes, masked tails),
// AVX2/FMA (8 lanes, Go tails) or Go. Tests lower it to cover every level.
var vecLevel = maxVecLevel()

func maxVecLevel() int {
	switch {
	case cpu.X86.HasAVX512F:
		return vecAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return vecAVX2
	}
	return vecGo
}

// blocks splits n into full blocks of 16 and the lane mask of the rest.
func blocks(n int) (int, uint32) { return n / 16, 1<<(n%16) - 1 }

func vmax(x []float32) float32 {
	switch {
	case vecLevel == vecAVX512 && len(x) > 0:
		nb, tail := blocks(len(x))
		return maxAVX512(&x[0], nb, tail)
	case vecLevel == vecAVX2 && len(x) >= 8:
		n8 := len(x) &^ 7
		return max(maxAVX2(&x[0], n8/8), vmaxGo(x[n8:]))
	}
	return vmaxGo(x)
}

func expSum(dst, src []float32, sub, mul float32) float32 {
	switch {
	case vecLevel == vecAVX512 && len(src) > 0:
		_ = dst[len(src)-1]
		nb, tail := blocks(len(src))
		return expSumAVX512(&dst[0], &src[0], nb, tail, sub, mul)
	case vecLevel == vecAVX2 && len(src) >= 8:
		_ = dst[len(src)-1]
		n8 := len(src) &^ 7
		return expSumAVX2(&dst[0], &src[0], n8/8, sub, mul) + expSumGo(dst[n8:], src[n8:], sub, mul)
	}
	return expSumGo(dst, src, sub, mul)
}

func sumExp(src []float32, sub float32) float32 {
	switch {
	case vecLevel == vecAVX512 && len(src) > 0:
		nb, tail := blocks(len(src))
		return sumExpAVX512(&src[0], nb, tail, sub)
	case vecLevel == vecAVX2 && len(src) >= 8:
		n8 := len(src) &^ 7
		return sumExpAVX2(&src[0], n8/8, sub) + sumExpGo(src[n8:], sub)
	}
	return sumExpGo(src, sub)
}

func expGrad(p, dp []float32, lse, d float32) {
	switch {
	case vecLevel == vecAVX512 && len(p) > 0:
		_ = dp[len(p)-1]
		nb, tail := blocks(len(p))
		expGradAVX512(&p[0], &dp[0], nb, tail, lse, d)
		return
	case vecLevel == vecAVX2 && len(p) >= 8:
		_ = dp[len(p)-1]
		n8 := len(p) &^ 7
		expGradAVX2(&p[0], &dp[0], n8/8, lse, d)
		p, dp = p[n8:], dp[n8:]
	}
	expGradGo(p, dp, lse, d)
}

func swigluRow(out, a, b []float32) {
	switch {
	case vecLevel == vecAVX512 && len(a) > 0:
		_, _ = out[len(a)-1], b[len(a)-1]
		nb, tail := blocks(len(a))
		swigluAVX512(&out[0], &a[0], &b[0], nb, tail)
		return
	case vecLevel == vecAVX2 && len(a) >= 8:
		_, _ = out[len(a)-1], b[len(a)-1]
		n8 := len(a) &^ 7
		swigluAVX2(&out[0], &a[0], &b[0], n8/8)
		out, a, b = out[n8:], a[n8:], b[n8:]
	}
	swigluRowGo(out, a, b)
}

func swigluGradRow(da, db, d, a, b []float32) {
	n := len(a)
	switch {
	case vecLevel == vecAVX512 && n > 0:
		_, _, _, _ = da[n-1], db[n-1], d[n-1], b[n-1]
		nb, tail := blocks(n)
		swigluGradAVX512(&da[0], &db[0], &d[0], &a[0], &b[0], nb, tail)
		return
	case vecLevel == vecAVX2 && n >= 8:
		_, _, _, _ = da[n-1], db[n-1], d[n-1], b[n-1]
		n8 := n &^ 7
		swigluGradAVX2(&da[0], &db[0], &d[0], &a[0], &b[0], n8/8)
		da, db, d, a, b = da[n8:], db[n8:], d[n8:], a[n8:], b[n8:]
	}
	swigluGradRowGo(da, db, d, a, b)
}

// adamwRow runs the vector AdamW update on p, g, m, v (equal lengths).
// With AVX2 it updates the whole blocks of 8 and returns how many values
// it did not; the caller finishes those in Go.
func adamwRow(p, g, m, v []float32, k *[8]float32) (rest int) {
	n := len(p)
	switch {
	case vecLevel == vecAVX512 && n > 0:
		_, _, _ = g[n-1], m[n-1], v[n-1]
		nb, tail := blocks(n)
		adamwAVX512(&p[0], &g[0], &m[0], &v[0], nb, tail, k)
		return 0
	case vecLevel == vecAVX2 && n >= 8:
		_, _, _ = g[n-1], m[n-1], v[n-1]
		adamwAVX2(&p[0], &g[0], &m[0], &v[0], n/8, k)
		return n % 8
	}
	return n
}

// ropeRowsAsm rotates rows rows of x (stride ld, heads heads of dh values,
// dh a multiple of 32) with the consecutive table rows at cos and sin, as
// ropePart's loop does; it reports false when it cannot run.
func ropeRowsAsm(x []float32, ld, rows, heads, dh int, cos, sin []float32, sign float32) bool {
	if vecLevel != vecAVX512 || dh%32 != 0 || rows == 0 || heads == 0 {
		return false
	}
	half := dh / 2
	_ = x[(rows-1)*ld+heads*dh-1]
	_ = cos[rows*half-1]
	_ = sin[rows*half-1]
	ropeRowsAVX512(&x[0], ld, rows, heads, dh/32, &cos[0], &sin[0], half, sign)
	return true
}
