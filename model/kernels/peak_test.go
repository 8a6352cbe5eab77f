package kernels

import "testing"

func TestPeakGFLOPS(t *testing.T) {
	for _, p := range []Precision{FP32, BF16} {
		g, how := PeakGFLOPS(p)
		if !(g > 0) || how == "" {
			t.Fatalf("%v: PeakGFLOPS = %v, %q", p, g, how)
		}
		if g2, _ := PeakGFLOPS(p); g2 != g {
			t.Fatalf("%v: second call measured again (%v, then %v)", p, g, g2)
		}
		t.Logf("%v: %.1f GFLOP/s per core (%s)", p, g, how)
	}
}
