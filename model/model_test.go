package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestInit(t *testing.T) {
	cfg := Config{VocabSize: 512, ContextLength: 4, DModel: 64, NumLayers: 1, NumHeads: 4, DFF: 160, RopeTheta: 10000}
	a, _ := New(cfg, 1, 1)
	b, _ := New(cfg, 1, 1)
	a.Init(3)
	b.Init(3)
	if !slices.Equal(a.Params, b.Params) {
		t.Fatal("Init is not deterministic in the seed")
	}
	b.Init(4)
	if slices.Equal(a.Params, b.Params) {
		t.Fatal("different seeds give the same parameters")
	}
	for _, p := range a.Layout() {
		w := a.Params[p.Offset : p.Offset+p.Size]
		if len(p.Shape) == 1 {
			for _, v := range w {
				if v != 1 {
					t.Fatalf("%s: gain %g, want 1", p.Name, v)
				}
			}
			continue
		}
		std := 1.0
		if p.Name != "token_embeddings.weight" {
			std = math.Sqrt(2 / float64(p.Shape[0]+p.Shape[1]))
		}
		var ss float64
		for _, v := range w {
			if math.Abs(float64(v)) > 3*std*(1+1e-6) {
				t.Fatalf("%s: %g beyond 3 std (%g)", p.Name, v, std)
			}
			ss += float64(v) * float64(v)
		}
		// a normal truncated at ±3σ has std 0.9866σ; allow 3% sampling error
		got := math.Sqrt(ss / float64(len(w)))
		if math.Abs(got/(0.9866*std)-1) > 0.03 {
			t.Errorf("%s: std %.4g, want ≈ %.4g", p.Name, got, 0.9866*std)
		}
	}
}

func randTokens(rng *rand.Rand, n, V int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(rng.IntN(V))
	}
	return s
}

// Logits of a forward without targets give, by hand, the loss of a forward
// with targets; a batch smaller than the model's maximum gives the same as a
// model sized exactly for it.
func TestForwardLogitsAndSizes(t *testing.T) {
	cfg := tinyConfig
	rng := rand.New(rand.NewPCG(21, 22))
	const B, T = 2, 5
	x, y := randTokens(rng, B*T, cfg.VocabSize), randTokens(rng, B*T, cfg.VocabSize)
	big, _ := New(cfg, 3, 8)
	exact, _ := New(cfg, B, T)
	big.Init(9)
	copy(exact.Params, big.Params)

	big.Forward(x, nil, B, T)
	logits := slices.Clone(big.Logits())
	if len(logits) != B*T*cfg.VocabSize {
		t.Fatalf("logits len %d", len(logits))
	}
	var byHand float64
	for i := 0; i < B*T; i++ {
		row := logits[i*cfg.VocabSize : (i+1)*cfg.VocabSize]
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v))
		}
		byHand += math.Log(s) - float64(row[y[i]])
	}
	byHand /= B * T
	l1 := big.Forward(x, y, B, T)
	l2 := exact.Forward(x, y, B, T)
	if math.Abs(l1-byHand) > 1e-6 || l1 != l2 {
		t.Fatalf("loss %v (big model), %v (exact model), %v (from logits)", l1, l2, byHand)
	}
	big.ZeroGrad()
	exact.ZeroGrad()
	big.Backward(1)
	exact.Backward(1)
	if !slices.Equal(big.Grads, exact.Grads) {
		t.Fatal("gradients depend on the allocated maximum (B, T)")
	}
}

// Training on one fixed batch must drive the loss down: 60 AdamW steps on a
// tiny model memorise 2 sequences of 8 tokens.
func TestOverfitTinyBatch(t *testing.T) {
	cfg := Config{VocabSize: 16, ContextLength: 8, DModel: 16, NumLayers: 2, NumHeads: 2, DFF: 32, RopeTheta: 10000}
	const B, T = 2, 8
	m, _ := New(cfg, B, T)
	m.Init(5)
	rng := rand.New(rand.NewPCG(23, 24))
	toks := randTokens(rng, B*T+1, cfg.VocabSize)
	x, y := toks[:B*T], toks[1:]
	opt := NewAdamW(m.Layout(), AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.01})
	var first, last float64
	for s := 0; s < 60; s++ {
		m.ZeroGrad()
		last = m.Forward(x, y, B, T)
		if s == 0 {
			first = last
		}
		m.Backward(1)
		ClipGradNorm(m.Grads, 1)
		opt.Step(m.Params, m.Grads, LR(s, 3e-2, 3e-3, 5, 60), s)
	}
	if !(last < 0.1) || first < 2 {
		t.Fatalf("loss %.4g → %.4g after 60 steps, want from > 2 to < 0.1", first, last)
	}
	t.Logf("loss %.4g → %.4g", first, last)
}

func TestForwardPanics(t *testing.T) {
	m, _ := New(tinyConfig, 1, 4)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"too long", func() { m.Forward(make([]int32, 8), nil, 1, 8) }},
		{"token out of vocabulary", func() { m.Forward([]int32{0, 1, 11, 2}, nil, 1, 4) }},
		{"backward without targets", func() { m.Forward([]int32{0, 1, 2, 3}, nil, 1, 4); m.Backward(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.f()
		})
	}
	if _, err := New(tinyConfig, 1, 9); err == nil {
		t.Fatal("New with T > context_length succeeded")
	}
}

// A training step (forward, backward, clipping, AdamW) allocates nothing once
// warm: activations are preallocated and parallel work goes through pooled
// jobs on persistent workers.
func TestTrainStepAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	cfg := Config{VocabSize: 64, ContextLength: 16, DModel: 32, NumLayers: 2, NumHeads: 4, DFF: 48, RopeTheta: 10000}
	const B, T = 2, 16
	m, _ := New(cfg, B, T)
	m.Init(1)
	opt := NewAdamW(m.Layout(), AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
	rng := rand.New(rand.NewPCG(41, 42))
	x, y := randTokens(rng, B*T, cfg.VocabSize), randTokens(rng, B*T, cfg.VocabSize)
	s := 0
	step := func() {
		m.ZeroGrad()
		m.Forward(x, y, B, T)
		m.Backward(1)
		ClipGradNorm(m.Grads, 1)
		opt.Step(m.Params, m.Grads, 1e-3, s)
		s++
	}
	for range 3 {
		step() // warm the pools
	}
	if n := testing.AllocsPerRun(20, step); n > 0 {
		t.Fatalf("%.1f allocations per training step", n)
	}
}

// GradsReady reports shrinking offsets at parameter boundaries, and every
// suffix it reports is final: a snapshot taken in the callback equals the
// gradients after Backward returns (with accumulation from an earlier pass).
func TestGradsReady(t *testing.T) {
	cfg := Config{VocabSize: 16, ContextLength: 8, DModel: 16, NumLayers: 3, NumHeads: 2, DFF: 32, RopeTheta: 10000}
	const B, T = 2, 8
	m, _ := New(cfg, B, T)
	m.Init(3)
	rng := rand.New(rand.NewPCG(5, 6))
	toks := randTokens(rng, B*T+1, cfg.VocabSize)
	m.ZeroGrad()
	m.Forward(toks[:B*T], toks[1:], B, T)
	m.Backward(0.5)

	var offs []int
	var snaps [][]float32
	m.GradsReady = func(off int) {
		offs = append(offs, off)
		snaps = append(snaps, slices.Clone(m.Grads[off:]))
	}
	m.Forward(toks[:B*T], toks[1:], B, T)
	m.Backward(0.5)

	starts := map[int]bool{}
	for _, p := range m.Layout() {
		starts[p.Offset] = true
	}
	if len(offs) != cfg.NumLayers+2 || offs[len(offs)-1] != 0 {
		t.Fatalf("offsets %v: want %d of them ending with 0", offs, cfg.NumLayers+2)
	}
	for i, off := range offs {
		if !starts[off] || (i > 0 && off >= offs[i-1]) {
			t.Errorf("offset %d (%v) is not a decreasing parameter boundary", off, offs)
		}
		if !slices.Equal(snaps[i], m.Grads[off:]) {
			t.Errorf("Grads[%d:] changed after GradsReady reported it final", off)
		}
	}
}
