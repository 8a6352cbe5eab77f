//go:build amd64 && !noasm

package kernels

import "golang.org/x/sys/cpu"

// useVecAsm selects the AVX-512 row primitives; tests switch it off to
// cover the Go versions.
var useVecAsm = cpu.X86.HasAVX512F

// blocks splits n into full blocks of 16 and the lane mask of the rest.
func blocks(n int) (int, uint32) { return n / 16, 1<<(n%16) - 1 }

func vmax(x []float32) float32 {
	if !useVecAsm || len(x) == 0 {
		return vmaxGo(x)
	}
	nb, tail := blocks(len(x))
	return maxAVX512(&x[0], nb, tail)
}

func expSum(dst, src []float32, sub, mul float32) float32 {
	if !useVecAsm || len(src) == 0 {
		return expSumGo(dst, src, sub, mul)
	}
	_ = dst[len(src)-1]
	nb, tail := blocks(len(src))
	return expSumAVX512(&dst[0], &src[0], nb, tail, sub, mul)
}

func sumExp(src []float32, sub float32) float32 {
	if !useVecAsm || len(src) == 0 {
		return sumExpGo(src, sub)
	}
	nb, tail := blocks(len(src))
	return sumExpAVX512(&src[0], nb, tail, sub)
}

func expGrad(p, dp []float32, lse, d float32) {
	if !useVecAsm || len(p) == 0 {
		expGradGo(p, dp, lse, d)
		return
	}
	_ = dp[len(p)-1]
	nb, tail := blocks(len(p))
	expGradAVX512(&p[0], &dp[0], nb, tail, lse, d)
}

func swigluRow(out, a, b []float32) {
	if !useVecAsm || len(a) == 0 {
		swigluRowGo(out, a, b)
		return
	}
	_, _ = out[len(a)-1], b[len(a)-1]
	nb, tail := blocks(len(a))
	swigluAVX512(&out[0], &a[0], &b[0], nb, tail)
}

func swigluGradRow(da, db, d, a, b []float32) {
	if !useVecAsm || len(a) == 0 {
		swigluGradRowGo(da, db, d, a, b)
		return
	}
	n := len(a) - 1
	_, _, _, _ = da[n], db[n], d[n], b[n]
	nb, tail := blocks(len(a))
	swigluGradAVX512(&da[0], &db[0], &d[0], &a[0], &b[0], nb, tail)
}
