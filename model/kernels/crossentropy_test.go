package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestSoftmaxCrossEntropy(t *testing.T) {
	for i, c := range []struct {
		N, V   int
		spread float64
		scale  float32
	}{
		{1, 1, 1, 1}, {3, 7, 1, 0.5}, {5, 33, 10, 1}, {64, 1000, 3, 1.0 / 64}, {40, 10000, 30, 0.025},
	} {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("N%d_V%d/t%d", c.N, c.V, threads), func(t *testing.T) {
				defer SetThreads(0)
				SetThreads(threads)
				rng := rand.New(rand.NewPCG(uint64(i), 9))
				logits := make([]float32, c.N*c.V+3)
				for j := range logits {
					logits[j] = float32(rng.NormFloat64() * c.spread)
				}
				logits[c.N*c.V], logits[c.N*c.V+1], logits[c.N*c.V+2] = sentinel, sentinel, sentinel
				targets := make([]int32, c.N)
				for j := range targets {
					targets[j] = int32(rng.IntN(c.V))
				}
				ref := append([]float32(nil), logits...)
				losses := make([]float32, c.N)
				refLosses := make([]float32, c.N)
				SoftmaxCrossEntropy(losses, logits[:c.N*c.V], targets, c.N, c.V, c.scale)
				softmaxCrossEntropyRef(refLosses, ref, targets, c.N, c.V, c.scale)
				for j := range losses {
					if d := math.Abs(float64(losses[j] - refLosses[j])); d > 1e-5*(1+math.Abs(float64(refLosses[j]))) {
						t.Fatalf("loss[%d] = %v, want %v", j, losses[j], refLosses[j])
					}
				}
				for j := range logits {
					if d := math.Abs(float64(logits[j] - ref[j])); d > 2e-6*float64(c.scale) {
						t.Fatalf("dlogits[%d] = %v, want %v", j, logits[j], ref[j])
					}
				}
			})
		}
	}
}

// TestSoftmaxCrossEntropyRefGradient checks the reference's gradient against
// central differences of its loss (float64 arithmetic inside, step 1e-2).
func TestSoftmaxCrossEntropyRefGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const V = 9
	logits := make([]float32, V)
	for j := range logits {
		logits[j] = float32(rng.NormFloat64())
	}
	targets := []int32{4}
	grad := append([]float32(nil), logits...)
	loss := make([]float32, 1)
	softmaxCrossEntropyRef(loss, grad, targets, 1, V, 1)
	lossAt := func(x []float32) float64 {
		mx := math.Inf(-1)
		for _, v := range x {
			mx = math.Max(mx, float64(v))
		}
		var s float64
		for _, v := range x {
			s += math.Exp(float64(v) - mx)
		}
		return math.Log(s) + mx - float64(x[4])
	}
	if d := math.Abs(float64(loss[0]) - lossAt(logits)); d > 1e-6 {
		t.Fatalf("loss %v, want %v", loss[0], lossAt(logits))
	}
	for j := range logits {
		x := append([]float32(nil), logits...)
		x[j] += 1e-2
		lp := lossAt(x)
		x[j] -= 2e-2
		lm := lossAt(x)
		if fd := (lp - lm) / 2e-2; math.Abs(fd-float64(grad[j])) > 1e-3 {
			t.Fatalf("grad[%d] = %v, finite difference %v", j, grad[j], fd)
		}
	}
}
