package kernels

import (
	"math"
	"testing"
)

// Expf against math.Exp over the range the model uses (softmax and SiLU
// arguments): relative error at most 4 float32 ulp (4·2⁻²³ ≈ 4.8e-7).
func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 88; x += 0.0137 {
		want := math.Exp(float64(x))
		got := float64(Expf(x))
		rel := math.Abs(got-want) / want
		worst = max(worst, rel)
		if rel > 4.8e-7 {
			t.Fatalf("Expf(%g) = %g, want %g (rel %.3g)", x, got, want, rel)
		}
	}
	t.Logf("max relative error %.3g", worst)
	for _, tc := range []struct{ x, want float32 }{
		{0, 1}, {-100, 0}, {float32(math.Inf(-1)), 0}, {100, float32(math.Inf(1))},
	} {
		if got := Expf(tc.x); got != tc.want {
			t.Errorf("Expf(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	if got := Expf(float32(math.NaN())); got == got {
		t.Errorf("Expf(NaN) = %g", got)
	}
}
