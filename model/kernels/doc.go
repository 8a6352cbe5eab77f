// Package kernels holds the compute kernels of the model: a general matrix
// multiply in float32 (Gemm) and with bfloat16 inputs (GemmBF16) in the
// three shapes training needs, fused kernels for the layers around it, and
// the thread pool they share.
//
// # Gemm
//
// Gemm follows the BLIS recipe: B is packed in column panels, A in row
// blocks, and an assembly micro-kernel (generated with avo, see gen/)
// computes register tiles: 14×32 with AVX-512, 6×16 with AVX2/FMA, chosen
// at start from the CPU's features; elsewhere a pure-Go tile runs in the
// same loop nest. Transposed operands are absorbed by the packers, so
// x·Wᵀ, dy·W and dyᵀ·x need no transposed copies.
//
//	kernels.Gemm(false, true, m, n, k, 1, x, k, w, k, 0, y, n)    // y(m,n) = x(m,k)·w(n,k)ᵀ
//	kernels.Gemm(false, false, m, k, n, 1, dy, n, w, k, 0, dx, k) // dx(m,k) = dy(m,n)·w(n,k)
//	kernels.Gemm(true, false, n, k, m, 1, dy, n, x, k, 1, dw, k)  // dw(n,k) += dy(m,n)ᵀ·x(m,k)
//
// # GemmBF16
//
// GemmBF16 has Gemm's arguments and rounds both inputs to bfloat16, with
// float32 products, sums and output (docs/precision.md). Where the CPU has
// AMX it runs 32×32 blocks of C on tiles (TDPBF16PS); with AVX512_BF16
// only, 8×32 blocks in ZMM registers (VDPBF16PS); elsewhere it is Gemm on
// packed blocks rounded to bfloat16. The two bfloat16 kernels share one
// layout (gemm_bf16.go), converted while packing: B once per call for all
// threads, A per thread. The AMX and VDPBF16PS instructions are emitted as
// bytes (gen/bf16.go). Precision (FP32, BF16) selects the arithmetic where
// a kernel takes it (the attention pair); PeakGFLOPS measures what one core
// can do in each, for an honest MFU.
//
// # Fused kernels
//
// Each is a forward/backward pair over flat slices with the shapes in its
// doc comment; backward passes accumulate (+=) unless they say otherwise.
//
//   - CausalAttentionForward / CausalAttentionBackward: causal softmax
//     attention over (B, T, H·dh) rows (packed qkv works through the row
//     stride), by blocks of queries, without a T×T matrix; forward keeps the
//     log-sum-exp per row for the backward pass. Their products run in the
//     Precision they are given.
//   - SoftmaxCrossEntropy: per-row loss and, in place, its gradient.
//   - RMSNormForward / RMSNormBackward, SwiGLUForward / SwiGLUBackward,
//     RoPEForward / RoPEBackward (with RoPETable), AdamW.
//
// The exponentials and AdamW run 16 lanes at a time with AVX-512, 8 with
// AVX2/FMA, and in plain Go elsewhere; Expf is their scalar e^x, also used
// by the model's reference layers.
//
// # Matrix-vector product
//
// MatVec (parallel) and MatVecRows (on the caller, any row stride) compute
// out = w·x for one row, the decode step of generation: they read each
// weight once and pack nothing, with an AVX2/FMA kernel for four rows at a
// time. A row's result does not depend on the number of threads.
//
//	kernels.MatVec(y, x, w, k, n, false) // y(n) = w(n,k)·x(k)
//
// # References and build tags
//
// Every fast path has a plain Go version beside it whose doc comment is the
// loop it computes (gemmRef, kernelGo, stripGo and the pack*Go of the
// bfloat16 layout, the *Go row primitives in vec.go,
// the *Ref functions, dotGo); `-tags noasm` (or a non-amd64 GOARCH) builds only
// those, and the tests compare the two and check gradients against finite
// differences.
//
// # Threads
//
// Large calls are split into parts run by the caller and up to Threads()−1
// goroutines of a persistent pool (SetThreads changes it; the default is
// GOMAXPROCS); small calls run on the caller alone, so per-head or per-row
// calls cost no goroutine wake-ups. Parts are claimed dynamically, so a
// thread whose core is busy with another process simply does fewer of
// them. Kernels do not allocate in steady state and are safe for concurrent
// use. Parallel (with Parts and Split) puts other work on the same pool,
// so one thread count governs the whole process:
//
//	func (j *rowsJob) RunPart(i, n int) { lo, hi := kernels.Split(j.rows, i, n); ... }
//	kernels.Parallel(j, kernels.Threads())
//
// Regenerate the assembly with `go generate ./model/kernels/`.
package kernels
