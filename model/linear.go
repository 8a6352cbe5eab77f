package model

import "github.com/ringtrain/ringtrain/model/kernels"

// The linear maps run their products in precision p: kernels.Gemm, or
// kernels.GemmBF16 (inputs rounded to bfloat16, float32 accumulation and
// outputs) for BF16; see docs/precision.md.

func gemm(p kernels.Precision, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if p == kernels.BF16 {
		kernels.GemmBF16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	kernels.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// matmulForward is a bias-free linear map y = x·Wᵀ.
//
//	out (N, OC), inp (N, C), w (OC, C)
func matmulForward(p kernels.Precision, out, inp, w []float32, N, C, OC int) {
	gemm(p, false, true, N, OC, C, 1, inp, C, w, C, 0, out, OC)
}

// matmulForwardAdd is matmulForward that adds to out instead of overwriting
// it (used for the residual connections).
//
//	out (N, OC), inp (N, C), w (OC, C)
func matmulForwardAdd(p kernels.Precision, out, inp, w []float32, N, C, OC int) {
	gemm(p, false, true, N, OC, C, 1, inp, C, w, C, 1, out, OC)
}

// matmulBackwardScaledSet is matmulBackwardSet for the gradient of alpha·L:
// dinp = alpha·dout·W (overwritten), dw += alpha·doutᵀ·inp.
//
//	dinp (N, C), dw (OC, C), dout (N, OC), inp (N, C), w (OC, C)
func matmulBackwardScaledSet(p kernels.Precision, dinp, dw, dout, inp, w []float32, N, C, OC int, alpha float32) {
	gemm(p, false, false, N, C, OC, alpha, dout, OC, w, C, 0, dinp, C)
	gemm(p, true, false, OC, C, N, alpha, dout, OC, inp, C, 1, dw, C)
}

// matmulBackwardSet is matmulBackward that overwrites dinp (dinp = dout·W)
// instead of adding to it; dw still accumulates.
//
//	dinp (N, C), dw (OC, C), dout (N, OC), inp (N, C), w (OC, C)
func matmulBackwardSet(p kernels.Precision, dinp, dw, dout, inp, w []float32, N, C, OC int) {
	gemm(p, false, false, N, C, OC, 1, dout, OC, w, C, 0, dinp, C)
	gemm(p, true, false, OC, C, N, 1, dout, OC, inp, C, 1, dw, C)
}

// matmulBackward accumulates dinp += dout·W (if dinp is non-nil) and
// dw += doutᵀ·inp.
//
//	dinp (N, C), dw (OC, C), dout (N, OC), inp (N, C), w (OC, C)
func matmulBackward(p kernels.Precision, dinp, dw, dout, inp, w []float32, N, C, OC int) {
	if dinp != nil {
		gemm(p, false, false, N, C, OC, 1, dout, OC, w, C, 1, dinp, C)
	}
	gemm(p, true, false, OC, C, N, 1, dout, OC, inp, C, 1, dw, C)
}
