package model

// swigluForward computes the gated unit of the feed-forward block:
// out = SiLU(a) ⊙ b, SiLU(a) = a·σ(a), where each row of h13 holds
// a = W1·x (F values) then b = W3·x (F values).
//
//	out (N, F), h13 (N, 2F)
func swigluForward(out, h13 []float32, N, F int) {
	parallelFor(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			a := h13[i*2*F : i*2*F+F]
			b := h13[i*2*F+F : (i+1)*2*F]
			o := out[i*F : (i+1)*F]
			for j, x := range a {
				o[j] = x / (1 + expf(-x)) * b[j]
			}
		}
	})
}

// swigluBackward writes (overwrites) the gradient of h13:
// da = dout ⊙ b ⊙ σ(a)(1 + a(1−σ(a))), db = dout ⊙ SiLU(a).
//
//	dh13 (N, 2F), dout (N, F), h13 (N, 2F)
func swigluBackward(dh13, dout, h13 []float32, N, F int) {
	parallelFor(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			a := h13[i*2*F : i*2*F+F]
			b := h13[i*2*F+F : (i+1)*2*F]
			da := dh13[i*2*F : i*2*F+F]
			db := dh13[i*2*F+F : (i+1)*2*F]
			d := dout[i*F : (i+1)*F]
			for j, x := range a {
				s := 1 / (1 + expf(-x))
				da[j] = d[j] * b[j] * s * (1 + x*(1-s))
				db[j] = d[j] * x * s
			}
		}
	})
}
