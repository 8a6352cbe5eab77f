package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkFused runs the fused kernels at the sizes of one cs336-17m
// micro-batch (8 × 256 tokens, d 512, 16 heads, d_ff 1344, V 10000):
//
//	go test -run '^$' -bench Fused ./model/kernels/
func BenchmarkFused(b *testing.B) {
	const B, T, H, dh, F, V = 8, 256, 16, 32, 1344, 10000
	const d, N = H * dh, B * T
	rng := rand.New(rand.NewPCG(1, 1))
	qkv := randSlice(rng, N*3*d, 1)
	dqkv := make([]float32, N*3*d)
	out, dout, lse := make([]float32, N*d), randSlice(rng, N*d, 1), make([]float32, B*H*T)
	logits, losses := randSlice(rng, N*V, 2), make([]float32, N)
	targets := make([]int32, N)
	for i := range targets {
		targets[i] = int32(rng.IntN(V))
	}
	x, g, y, rstd := randSlice(rng, N*d, 1), randSlice(rng, d, 1), make([]float32, N*d), make([]float32, N)
	dg := make([]float32, d)
	h, hh, sw := randSlice(rng, N*2*F, 1), make([]float32, N*2*F), randSlice(rng, N*F, 1)
	cos, sin := make([]float32, T*dh/2), make([]float32, T*dh/2)
	RoPETable(cos, sin, T, dh, 10000)
	const P = 17_000_000
	p, pg, pm, pv := randSlice(rng, P, 1), randSlice(rng, P, 1), make([]float32, P), make([]float32, P)
	// attention flops: 2 matmuls of B·H·T²/2·dh multiply-adds forward, 4 backward (causal half)
	attnFlops := 2 * float64(B*H) * float64(T*T) / 2 * dh * 2
	cases := []struct {
		name  string
		flops float64
		fn    func()
	}{
		{"attention_fwd", attnFlops, func() { CausalAttentionForward(FP32, out, lse, qkv, qkv[d:], qkv[2*d:], B, T, H, dh, 3*d, d) }},
		{"attention_bwd", 2 * attnFlops, func() {
			CausalAttentionBackward(FP32, dqkv, dqkv[d:], dqkv[2*d:], dout, qkv, qkv[d:], qkv[2*d:], out, lse, B, T, H, dh, 3*d, d)
		}},
		{"attention_fwd_bf16", attnFlops, func() { CausalAttentionForward(BF16, out, lse, qkv, qkv[d:], qkv[2*d:], B, T, H, dh, 3*d, d) }},
		{"attention_bwd_bf16", 2 * attnFlops, func() {
			CausalAttentionBackward(BF16, dqkv, dqkv[d:], dqkv[2*d:], dout, qkv, qkv[d:], qkv[2*d:], out, lse, B, T, H, dh, 3*d, d)
		}},
		{"softmax_xent", 0, func() {
			copy(logits[:V], logits[V:2*V]) // keep the logits from degenerating
			SoftmaxCrossEntropy(losses, logits, targets, N, V, 1.0/N)
		}},
		{"rmsnorm_fwd", 0, func() { RMSNormForward(y, rstd, x, g, N, d, 1e-5) }},
		{"rmsnorm_bwd", 0, func() { RMSNormBackward(y, dg, x, x, g, rstd, N, d) }},
		{"swiglu_fwd", 0, func() { SwiGLUForward(sw, h, N, F) }},
		{"swiglu_bwd", 0, func() { SwiGLUBackward(hh, sw, h, N, F) }},
		{"rope_qk", 0, func() { RoPEForward(qkv, cos, sin, B, T, 2*H, dh, 3*d, 0) }},
		{"adamw_17M", 0, func() { AdamW(p, pg, pm, pv, 1e-3, 0.9, 0.95, 1e-8, 0.1, 5) }},
	}
	for _, c := range cases {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", c.name, threads), func(b *testing.B) {
				defer SetThreads(0)
				SetThreads(threads)
				c.fn()
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for b.Loop() {
					c.fn()
				}
				if c.flops > 0 {
					reportFlops(b, c.flops, cpu0)
				}
			})
		}
	}
}
