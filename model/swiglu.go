package model

import "github.com/ringtrain/ringtrain/model/kernels"

type swigluArgs struct {
	out, h13, dh13, dout []float32
	F                    int
}

var swigluFwdJobs, swigluBwdJobs rangeJobs[swigluArgs]

// swigluForward computes the gated unit of the feed-forward block:
// out = SiLU(a) ⊙ b, SiLU(a) = a·σ(a), where each row of h13 holds
// a = W1·x (F values) then b = W3·x (F values).
//
//	out (N, F), h13 (N, 2F)
func swigluForward(out, h13 []float32, N, F int) {
	swigluFwdJobs.run(N, swigluArgs{out: out, h13: h13, F: F}, swigluForwardRows)
}

func swigluForwardRows(s *swigluArgs, lo, hi int) {
	F := s.F
	for i := lo; i < hi; i++ {
		a := s.h13[i*2*F : i*2*F+F]
		b := s.h13[i*2*F+F : (i+1)*2*F]
		o := s.out[i*F : (i+1)*F]
		for j, x := range a {
			o[j] = x / (1 + kernels.Expf(-x)) * b[j]
		}
	}
}

// swigluBackward writes (overwrites) the gradient of h13:
// da = dout ⊙ b ⊙ σ(a)(1 + a(1−σ(a))), db = dout ⊙ SiLU(a).
//
//	dh13 (N, 2F), dout (N, F), h13 (N, 2F)
func swigluBackward(dh13, dout, h13 []float32, N, F int) {
	swigluBwdJobs.run(N, swigluArgs{dh13: dh13, dout: dout, h13: h13, F: F}, swigluBackwardRows)
}

func swigluBackwardRows(s *swigluArgs, lo, hi int) {
	F := s.F
	for i := lo; i < hi; i++ {
		a := s.h13[i*2*F : i*2*F+F]
		b := s.h13[i*2*F+F : (i+1)*2*F]
		da := s.dh13[i*2*F : i*2*F+F]
		db := s.dh13[i*2*F+F : (i+1)*2*F]
		d := s.dout[i*F : (i+1)*F]
		for j, x := range a {
			sg := 1 / (1 + kernels.Expf(-x))
			da[j] = d[j] * b[j] * sg * (1 + x*(1-sg))
			db[j] = d[j] * x * sg
		}
	}
}
