package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// TestClipGradNormThreads checks that the parallel norm gives the same bits
// on any number of threads and agrees with the sequential SumSquares to
// float64 rounding.
func TestClipGradNormThreads(t *testing.T) {
	defer kernels.SetThreads(0)
	rng := rand.New(rand.NewPCG(3, 5))
	g := make([]float32, 5*normChunk+123)
	for i := range g {
		g[i] = float32(rng.NormFloat64())
	}
	want := math.Sqrt(SumSquares(g))
	var first float64
	for _, threads := range []int{1, 2, 3} {
		kernels.SetThreads(threads)
		n := ClipGradNorm(append([]float32(nil), g...), 0)
		if threads == 1 {
			first = n
		} else if n != first {
			t.Fatalf("%d threads: norm %v, 1 thread %v", threads, n, first)
		}
		if math.Abs(n-want) > 1e-12*want {
			t.Fatalf("norm %v, sequential %v", n, want)
		}
	}
}
