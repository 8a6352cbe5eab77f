package shard

import (
	"fmt"
	"testing"
)

// BenchmarkFillMicro measures batch filling (uint16 → int32 x/y rows) for a
// micro-batch of 8 sequences; tokens/s counts x tokens.
//
//	go test ./shard -run '^$' -bench FillMicro -benchtime 2s
func BenchmarkFillMicro(b *testing.B) {
	for _, T := range []int{128, 1024} {
		ds := testDataset(b, T, 1<<20, 1<<20) // 2M tokens
		for _, order := range []Order{Sequential, Shuffled} {
			b.Run(fmt.Sprintf("T=%d/%v", T, order), func(b *testing.B) {
				s, err := NewSampler(ds, order, 1)
				if err != nil {
					b.Fatal(err)
				}
				const G, W, mb = 64, 2, 8
				x, y := make([]int32, mb*T), make([]int32, mb*T)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if _, err := s.FillMicro(x, y, int64(i/8), G, i%2, W, (i/2)%4, mb); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*mb*T)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}

// BenchmarkOpen measures Open with the vocabulary check of 16M tokens.
func BenchmarkOpen(b *testing.B) {
	tok := make([]uint16, 16<<20)
	for i := range tok {
		tok[i] = uint16(i % 50257)
	}
	p := writeShard(b, b.TempDir(), "big.bin", tok)
	b.SetBytes(int64(2 * len(tok)))
	for b.Loop() {
		s, err := Open(p, 50257)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkFirstAtLeast measures the vocabulary check alone.
func BenchmarkFirstAtLeast(b *testing.B) {
	tok := make([]uint16, 16<<20)
	for i := range tok {
		tok[i] = uint16(i % 50257)
	}
	b.SetBytes(int64(2 * len(tok)))
	for b.Loop() {
		if p, _ := firstAtLeast(tok, 50257); p >= 0 {
			b.Fatal(p)
		}
	}
}
