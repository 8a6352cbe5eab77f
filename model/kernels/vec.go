package kernels

// Row primitives of the fused kernels. Each has an AVX-512 version (see
// vec_amd64.go) and this Go version, which is also its reference.

// vmaxGo returns max_i x[i] (−Inf for an empty x).
func vmaxGo(x []float32) float32 {
	m := float32(negInf)
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

// expSumGo is
//
//	for i: dst[i] = e^(src[i]−sub)·mul;  return Σ_i e^(src[i]−sub)
func expSumGo(dst, src []float32, sub, mul float32) float32 {
	dst = dst[:len(src)]
	var s float32
	for i, v := range src {
		e := Expf(v - sub)
		s += e
		dst[i] = e * mul
	}
	return s
}

// sumExpGo is
//
//	return Σ_i e^(src[i]−sub)
func sumExpGo(src []float32, sub float32) float32 {
	var s float32
	for _, v := range src {
		s += Expf(v - sub)
	}
	return s
}

// expGradGo is
//
//	for i: p[i] = e^(p[i]−lse);  dp[i] = p[i]·(dp[i]−d)
func expGradGo(p, dp []float32, lse, d float32) {
	dp = dp[:len(p)]
	for i, v := range p {
		e := Expf(v - lse)
		p[i] = e
		dp[i] = e * (dp[i] - d)
	}
}

// swigluRowGo is
//
//	for i: out[i] = a[i]·σ(a[i])·b[i]
func swigluRowGo(out, a, b []float32) {
	out, b = out[:len(a)], b[:len(a)]
	for i, x := range a {
		out[i] = x / (1 + Expf(-x)) * b[i]
	}
}

// swigluGradRowGo is
//
//	for i: da[i] = d[i]·b[i]·σ(a[i])·(1 + a[i]·(1−σ(a[i])));  db[i] = d[i]·a[i]·σ(a[i])
func swigluGradRowGo(da, db, d, a, b []float32) {
	da, db, d, b = da[:len(a)], db[:len(a)], d[:len(a)], b[:len(a)]
	for i, x := range a {
		s := 1 / (1 + Expf(-x))
		g := d[i] * s
		da[i] = g * b[i] * (1 + x*(1-s))
		db[i] = g * x
	}
}
