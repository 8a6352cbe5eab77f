package model

import (
	"math"
	"slices"
	"testing"
)

// The CS336 assignment-1 snapshots: in_embeddings (4, 12, 64) and the gain
// layers_1_ln1_weight (64) are reconstructed inputs (testdata README in
// /work/shared/cs336-fixtures); test_rmsnorm.npz and test_rope.npz are the
// reference outputs of RMSNorm(64, eps 1e-5) and RoPE(d_k 64, θ 10000,
// positions 0..11). Tolerance: 1e-5 absolute + 1e-5 relative.
func TestCS336Fixtures(t *testing.T) {
	in, shapes := readNPZ(t, "testdata/reconstructed_inputs.npz")
	x, g := in["in_embeddings"], in["layers_1_ln1_weight"]
	if !slices.Equal(shapes["in_embeddings"], []int{4, 12, 64}) || len(g) != 64 {
		t.Fatalf("input shapes %v", shapes)
	}
	const B, T, C = 4, 12, 64
	rms, _ := readNPZ(t, "testdata/test_rmsnorm.npz")
	rope, _ := readNPZ(t, "testdata/test_rope.npz")

	gotRMS := make([]float32, B*T*C)
	rstd := make([]float32, B*T)
	rmsnormForward(gotRMS, rstd, x, g, B*T, C)

	gotRope := slices.Clone(x)
	cos, sin := make([]float32, T*C/2), make([]float32, T*C/2)
	ropeTable(cos, sin, T, C, 10000)
	for b := 0; b < B; b++ {
		ropeForward(gotRope[b*T*C:], C, T, C, 0, cos, sin)
	}
	for _, tc := range []struct {
		name      string
		got, want []float32
	}{
		{"rmsnorm", gotRMS, rms["array"]},
		{"rope", gotRope, rope["array"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.got) != len(tc.want) {
				t.Fatalf("len %d, want %d", len(tc.got), len(tc.want))
			}
			worst := 0.0
			for i := range tc.got {
				d := math.Abs(float64(tc.got[i] - tc.want[i]))
				worst = max(worst, d)
				if d > 1e-5+1e-5*math.Abs(float64(tc.want[i])) {
					t.Fatalf("element %d: got %g, want %g", i, tc.got[i], tc.want[i])
				}
			}
			t.Logf("max abs diff %.3g", worst)
		})
	}
}
