// Package kernels holds the float32 compute kernels of the model: a general
// matrix multiply (Gemm) in the three shapes training needs, and the thread
// pool they share.
//
// Gemm follows the BLIS recipe: B is packed in column panels, A in row
// blocks, and an assembly micro-kernel (generated with avo, see gen/)
// computes register tiles: 14×32 with AVX-512, 6×16 with AVX2/FMA, chosen
// at start from the CPU's features; elsewhere a pure-Go tile runs in the
// same loop nest. Transposed operands are absorbed by the packers, so
// x·Wᵀ, dy·W and dyᵀ·x need no transposed copies.
//
// Every fast kernel has a plain Go reference beside it, selected by build tags
// (`noasm` or a non-amd64 GOARCH), and tests compare the two.
//
//	kernels.Gemm(false, true, m, n, k, 1, x, k, w, k, 0, y, n) // y(m,n) = x(m,k)·w(n,k)ᵀ
//
// Threads: large calls are split over Threads() goroutines of a persistent
// pool (SetThreads changes it; the default is GOMAXPROCS); small calls run
// on the caller. Kernels do not allocate in steady state and are safe for
// concurrent use.
//
// Regenerate the assembly with `go generate ./model/kernels/`.
package kernels
