package kernels_test

import (
	"fmt"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// Example_attentionBlock runs the attention part of a transformer block on
// a packed qkv buffer (per token q | k | v, heads side by side), as the
// model stores it: RoPE on q and k, causal attention, and the backward
// pass in reverse order.
func Example_attentionBlock() {
	const B, T, H, dh = 2, 16, 4, 8
	const d = H * dh
	qkv := make([]float32, B*T*3*d) // (B, T, 3d): q | k | v
	for i := range qkv {
		qkv[i] = float32(i%7) / 7
	}
	cos, sin := make([]float32, T*dh/2), make([]float32, T*dh/2)
	kernels.RoPETable(cos, sin, T, dh, 10000)
	out, lse := make([]float32, B*T*d), make([]float32, B*H*T)

	// Forward: q and k are 2H consecutive heads of each row.
	kernels.RoPEForward(qkv, cos, sin, B, T, 2*H, dh, 3*d, 0)
	kernels.CausalAttentionForward(kernels.FP32, out, lse, qkv, qkv[d:], qkv[2*d:], B, T, H, dh, 3*d, d)

	// Backward, given dout: gradients accumulate into dqkv, then go back
	// through the rotation.
	dout := make([]float32, B*T*d)
	for i := range dout {
		dout[i] = 1
	}
	dqkv := make([]float32, len(qkv))
	kernels.CausalAttentionBackward(kernels.FP32, dqkv, dqkv[d:], dqkv[2*d:], dout, qkv, qkv[d:], qkv[2*d:], out, lse, B, T, H, dh, 3*d, d)
	kernels.RoPEBackward(dqkv, cos, sin, B, T, 2*H, dh, 3*d, 0)
	fmt.Println(len(out), len(dqkv))
	// Output: 1024 3072
}

// ExampleGemm shows the three products of a linear layer y = x·Wᵀ.
func ExampleGemm() {
	const m, in, outDim = 4, 3, 2
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} // (m, in)
	w := []float32{1, 0, 0, 0, 1, 0}                      // (out, in)
	y := make([]float32, m*outDim)
	kernels.Gemm(false, true, m, outDim, in, 1, x, in, w, in, 0, y, outDim) // y = x·Wᵀ
	dy := []float32{1, 1, 1, 1, 1, 1, 1, 1}
	dx := make([]float32, m*in)
	kernels.Gemm(false, false, m, in, outDim, 1, dy, outDim, w, in, 0, dx, in) // dx = dy·W
	dw := make([]float32, outDim*in)
	kernels.Gemm(true, false, outDim, in, m, 1, dy, outDim, x, in, 1, dw, in) // dW += dyᵀ·x
	fmt.Println(y)
	fmt.Println(dx)
	fmt.Println(dw)
	// Output:
	// [1 2 4 5 7 8 10 11]
	// [1 1 0 1 1 0 1 1 0 1 1 0]
	// [22 26 30 22 26 30]
}
