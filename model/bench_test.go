package model

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainStep times one full training step of the small preset
// (batch 8 × 128 tokens): forward, backward, clipping and AdamW.
func BenchmarkTrainStep(b *testing.B) {
	cfg, _ := Preset("small")
	const B, T = 8, 128
	m, err := New(cfg, B, T)
	if err != nil {
		b.Fatal(err)
	}
	m.Init(1)
	opt := NewAdamW(m.Layout(), AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
	rng := rand.New(rand.NewPCG(1, 2))
	x, y := make([]int32, B*T), make([]int32, B*T)
	for i := range x {
		x[i], y[i] = int32(rng.IntN(cfg.VocabSize)), int32(rng.IntN(cfg.VocabSize))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.ZeroGrad()
		m.Forward(x, y, B, T)
		m.Backward(1)
		ClipGradNorm(m.Grads, 1)
		opt.Step(m.Params, m.Grads, 1e-4, i)
	}
	b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
