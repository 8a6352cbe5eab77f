package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// The training path (kernels.RoPE* + kernels.CausalAttention*) against the plain
// reference attentionForward/attentionBackward (itself checked by finite
// differences), at sizes that cross the kernels' query blocks:
// outputs and gradients to 2e-6 + 1e-4·|x|.
func TestKernelAttentionMatchesReference(t *testing.T) {
	for _, tc := range []struct{ B, T, C, NH int }{
		{1, 1, 8, 2},
		{2, 70, 16, 2},
		{1, 130, 32, 4},
	} {
		t.Run(fmt.Sprintf("B%dT%dC%dNH%d", tc.B, tc.T, tc.C, tc.NH), func(t *testing.T) {
			B, T, C, NH := tc.B, tc.T, tc.C, tc.NH
			HS := C / NH
			rng := rand.New(rand.NewPCG(31, uint64(T)))
			qkv := randSlice(rng, B*T*3*C, 1)
			dout := randSlice(rng, B*T*C, 1)
			cos, sin := make([]float32, T*HS/2), make([]float32, T*HS/2)
			ropeTable(cos, sin, T, HS, 10000)

			ref := slices.Clone(qkv)
			outR, att := make([]float32, B*T*C), make([]float32, B*NH*T*T)
			attentionForward(outR, att, ref, cos, sin, B, T, C, NH)
			dR, datt := make([]float32, len(qkv)), make([]float32, len(att))
			attentionBackward(dR, datt, dout, ref, att, cos, sin, B, T, C, NH)

			ker := slices.Clone(qkv)
			outK, lse := make([]float32, B*T*C), make([]float32, B*NH*T)
			kernels.RoPEForward(ker, cos, sin, B, T, NH, HS, 3*C, 0)
			kernels.RoPEForward(ker[C:], cos, sin, B, T, NH, HS, 3*C, 0)
			kernels.CausalAttentionForward(kernels.FP32, outK, lse, ker, ker[C:], ker[2*C:], B, T, NH, HS, 3*C, C)
			dK := make([]float32, len(qkv))
			kernels.CausalAttentionBackward(kernels.FP32, dK, dK[C:], dK[2*C:], dout, ker, ker[C:], ker[2*C:], outK, lse, B, T, NH, HS, 3*C, C)
			kernels.RoPEBackward(dK, cos, sin, B, T, NH, HS, 3*C, 0)
			kernels.RoPEBackward(dK[C:], cos, sin, B, T, NH, HS, 3*C, 0)

			for _, c := range []struct {
				name      string
				got, want []float32
			}{{"out", outK, outR}, {"dqkv", dK, dR}} {
				for i := range c.want {
					if d := math.Abs(float64(c.got[i] - c.want[i])); d > 2e-6+1e-4*math.Abs(float64(c.want[i])) {
						t.Fatalf("%s[%d] = %g, reference %g", c.name, i, c.got[i], c.want[i])
					}
				}
			}
		})
	}
}
