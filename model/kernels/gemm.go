package kernels

// Gemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices, like
// BLAS sgemm: op(A) is (m,k), op(B) is (k,n), C is (m,n) with row stride ldc.
// transA means A is stored (k,m) with row stride lda, else (m,k); transB
// means B is stored (n,k) with row stride ldb, else (k,n).
// With beta == 0, C is overwritten (NaNs in C do not propagate).
//
// The three shapes of training are
//
//	forward  y = x·Wᵀ    Gemm(false, true, ...)
//	backward dx = dy·W   Gemm(false, false, ...)
//	backward dW += dyᵀ·x Gemm(true, false, ..., beta=1)
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	gemmRef(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmRef is the reference loop:
//
//	for i, j: C[i,j] = alpha·Σ_p opA[i,p]·opB[p,j] + beta·C[i,j]
func gemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(crow)
		} else if beta != 1 {
			for j := range crow {
				crow[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			av *= alpha
			if av == 0 {
				continue
			}
			if transB {
				for j := range crow {
					crow[j] += av * b[j*ldb+p]
				}
			} else {
				brow := b[p*ldb : p*ldb+n]
				for j, bv := range brow {
					crow[j] += av * bv
				}
			}
		}
	}
}
