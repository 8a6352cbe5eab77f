package model

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSample times one draw from 10000 logits (cs336-17m's
// vocabulary) for each kind of sampling.
func BenchmarkSample(b *testing.B) {
	logits := randomLogits(rand.New(rand.NewPCG(3, 3)), 10000, 3)
	for _, cfg := range []SamplerConfig{
		{Temperature: 0},
		{Temperature: 1},
		{Temperature: 1, TopK: 50},
		{Temperature: 1, TopP: 0.9},
		{Temperature: 1, TopK: 50, TopP: 0.9},
	} {
		b.Run(fmt.Sprintf("T=%g/k=%d/p=%g", cfg.Temperature, cfg.TopK, cfg.TopP), func(b *testing.B) {
			s, _ := NewSampler(cfg)
			b.ReportAllocs()
			for range b.N {
				s.Sample(logits)
			}
		})
	}
}
