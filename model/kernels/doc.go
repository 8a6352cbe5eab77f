// Package kernels holds the float32 compute kernels of the model: a general
// matrix multiply (Gemm) in the three shapes training needs, and the thread
// pool they share.
//
// Every fast kernel has a plain Go reference beside it, selected by build tags
// (`noasm` or a non-amd64 GOARCH), and tests compare the two.
//
//	kernels.Gemm(false, true, m, n, k, 1, x, k, w, k, 0, y, n) // y(m,n) = x(m,k)·w(n,k)ᵀ
package kernels
