package model

import "github.com/ringtrain/ringtrain/model/kernels"

// matmulForward is a bias-free linear map y = x·Wᵀ.
//
//	out (N, OC), inp (N, C), w (OC, C)
func matmulForward(out, inp, w []float32, N, C, OC int) {
	kernels.Gemm(false, true, N, OC, C, 1, inp, C, w, C, 0, out, OC)
}

// matmulForwardAdd is matmulForward that adds to out instead of overwriting
// it (used for the residual connections).
//
//	out (N, OC), inp (N, C), w (OC, C)
func matmulForwardAdd(out, inp, w []float32, N, C, OC int) {
	kernels.Gemm(false, true, N, OC, C, 1, inp, C, w, C, 1, out, OC)
}

// matmulBackwardScaledSet is matmulBackwardSet for the gradient of alpha·L:
// dinp = alpha·dout·W (overwritten), dw += alpha·doutᵀ·inp.
//
//	dinp (N, C), dw (OC, C), dout (N, OC), inp (N, C), w (OC, C)
func matmulBackwardScaledSet(dinp, dw, dout, inp, w []float32, N, C, OC int, alpha float32) {
	kernels.Gemm(false, false, N, C, OC, alpha, dout, OC, w, C, 0, dinp, C)
	kernels.Gemm(true, false, OC, C, N, alpha, dout, OC, inp, C, 1, dw, C)
}

// matmulBackwardSet is matmulBackward that overwrites dinp (dinp = dout·W)
// instead of adding to it; dw still accumulates.
//
//	dinp (N, C), dw (OC, C), dout (N, OC), inp (N, C), w (OC, C)
func matmulBackwardSet(dinp, dw, dout, inp, w []float32, N, C, OC int) {
	kernels.Gemm(false, false, N, C, OC, 1, dout, OC, w, C, 0, dinp, C)
	kernels.Gemm(true, false, OC, C, N, 1, dout, OC, inp, C, 1, dw, C)
}

// matmulBackward accumulates dinp += dout·W (if dinp is non-nil) and
// dw += doutᵀ·inp.
//
//	dinp (N, C), dw (OC, C), dout (N, OC), inp (N, C), w (OC, C)
func matmulBackward(dinp, dw, dout, inp, w []float32, N, C, OC int) {
	if dinp != nil {
		kernels.Gemm(false, false, N, C, OC, 1, dout, OC, w, C, 1, dinp, C)
	}
	kernels.Gemm(true, false, OC, C, N, 1, dout, OC, inp, C, 1, dw, C)
}
