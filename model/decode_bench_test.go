package model

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkDecode times producing the logits of n successive positions of
// cs336-17m (random init) from a 1-token prompt, the way generation does:
//
//	cache:        Prefill(1 token), then n−1 Steps against the KV cache
//	no-cache:     Prefill of the whole sequence so far, for every position
//	full-forward: the training Forward (targets nil, all positions' logits)
//	              on the whole sequence so far, for every position (n = 64 only)
//
// and reports tokens/s = n / time. Without the cache the work per token
// grows with the position, so the speed-up grows with n. One op is a whole
// sequence; run with -benchtime=1x or a few x:
//
//	go test ./model/ -run '^$' -bench 'Decode' -benchtime 2x
func BenchmarkDecode(b *testing.B) {
	cfg, _ := Preset("cs336-17m")
	T := cfg.ContextLength
	m, err := New(cfg, 1, T)
	if err != nil {
		b.Fatal(err)
	}
	m.Init(1)
	d, err := NewDecoder(cfg, m.Params, T)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	toks := randomTokens(rng, T, cfg.VocabSize)
	modes := []struct {
		name  string
		short bool // only for n = 64: slow
		run   func(n int)
	}{
		{"cache", false, func(n int) {
			d.Prefill(toks[:1])
			for i := 1; i < n; i++ {
				d.Step(toks[i])
			}
		}},
		{"no-cache", false, func(n int) {
			for i := 1; i <= n; i++ {
				d.Prefill(toks[:i])
			}
		}},
		{"full-forward", true, func(n int) {
			for i := 1; i <= n; i++ {
				m.Forward(toks[:i], nil, 1, i)
			}
		}},
	}
	for _, n := range []int{64, 256} {
		for _, mode := range modes {
			if mode.short && n > 64 {
				continue
			}
			b.Run(fmt.Sprintf("n=%d/%s", n, mode.name), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					mode.run(n)
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}

// BenchmarkPrefill times one Prefill of a full context of cs336-17m.
func BenchmarkPrefill(b *testing.B) {
	cfg, _ := Preset("cs336-17m")
	T := cfg.ContextLength
	m, _ := New(cfg, 1, 1)
	m.Init(1)
	d, err := NewDecoder(cfg, m.Params, T)
	if err != nil {
		b.Fatal(err)
	}
	toks := randomTokens(rand.New(rand.NewPCG(2, 2)), T, cfg.VocabSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d.Prefill(toks)
	}
	b.ReportMetric(float64(T*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
