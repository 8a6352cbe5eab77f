package allreduce

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAddKernels runs the selected kernels against the Go loops, bit for
// bit, on every length up to 100 with guard elements around the output.
func TestAddKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const guard = 8
	for n := range 100 {
		for _, scale := range []float32{0, 1 / float32(3)} {
			src := make([]float32, n)
			base := make([]float32, n+2*guard)
			for i := range src {
				src[i] = float32(rng.NormFloat64())
			}
			for i := range base {
				base[i] = float32(rng.NormFloat64())
			}
			got, want := append([]float32(nil), base...), append([]float32(nil), base...)
			if scale == 0 {
				add32(got[guard:guard+n], src)
				add32Go(want[guard:guard+n], src)
			} else {
				addScale32(got[guard:guard+n], src, scale)
				addScale32Go(want[guard:guard+n], src, scale)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d scale=%v: element %d (guard %d) = %v, want %v", n, scale, i-guard, guard, got[i], want[i])
				}
			}
		}
	}
}

func BenchmarkAdd32(b *testing.B) {
	dst, src := make([]float32, 1<<18), make([]float32, 1<<18) // 1 MiB each
	b.SetBytes(4 << 18)
	for range b.N {
		addScale32(dst, src, 0.5)
	}
}
