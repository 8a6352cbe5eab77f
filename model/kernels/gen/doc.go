// Command gen writes the assembly of package kernels with avo: run it with
// `go generate ./model/kernels/` (the go:generate line is in
// gemm_amd64.go), which writes gemm_kernel_amd64.s and its Go stubs,
// gemm_kernel_stub_amd64.go; both are checked in.
//
//	go run ./gen -out gemm_kernel_amd64.s -stubs gemm_kernel_stub_amd64.go -pkg kernels
//
// The GEMM micro-kernels (main.go) compute one MR×NR tile of C from a
// packed sliver of A (k steps of MR values) and of B (k steps of NR
// values), 14×32 with AVX-512 (28 ZMM accumulators) and 6×16 with
// AVX2/FMA:
//
//	acc[i][j] = Σ_p a[p·MR+i]·b[p·NR+j]
//	c[i·ldc+j] = acc[i][j] + beta·c[i·ldc+j]   (beta == 0: c = acc)
//
// The packers (main.go) are 16×16 (AVX-512) and 8×8 (AVX2) in-register
// transposes, gathers and masked row copies. The row primitives (vec.go)
// are max, Σ exp, softmax rows, the attention gradient row, SwiGLU and
// AdamW, built on a Cephes-style vector exp, in AVX-512 (16 lanes, masked
// tails) and AVX2 (8 lanes) versions. matvec4AVX2 (matvec.go) is the
// matrix-vector kernel of MatVec: four rows at a time, eight lanes each.
//
// bf16.go holds the kernels of GemmBF16: the AMX strip kernel (TDPBF16PS
// on four accumulator tiles), the VDPBF16PS strip kernel, the packers that
// convert float32 into the bfloat16 layout (VCVTNE2PS2BF16, VPERMW and
// 16×16 transposes of 32-bit pairs) and the rounding of the fp32 emulation.
// Neither the Go assembler nor avo knows AMX or AVX512_BF16: those
// instructions are emitted as bytes, each after a comment that spells it,
// in functions that use physical registers only. peak.go holds the peak
// loops of PeakGFLOPS (FMA, VDPBF16PS, TDPBF16PS on registers or tiles).
package main
