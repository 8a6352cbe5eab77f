package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomLogits(rng *rand.Rand, n int, scale float64) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(rng.NormFloat64() * scale)
	}
	return l
}

func mustSampler(t *testing.T, cfg SamplerConfig) *Sampler {
	t.Helper()
	s, err := NewSampler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSamplerGreedyEquivalents: temperature 0, top-k 1 and a tiny top-p all
// pick the first index of the largest logit, whatever the temperature and
// seed, including on ties.
func TestSamplerGreedyEquivalents(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][]float32{
		{0, 3, 1, 3, -2}, // tie: index 1 wins
		{-5, -5, -5},
		{7},
	}
	for range 200 {
		cases = append(cases, randomLogits(rng, 1+rng.IntN(300), 1+rng.Float64()*5))
	}
	for i, logits := range cases {
		want := int32(0)
		for j, v := range logits {
			if v > logits[want] {
				want = int32(j)
			}
		}
		for _, cfg := range []SamplerConfig{
			{Temperature: 0, TopK: 5, TopP: 0.5},
			{Temperature: 1, TopK: 1, Seed: uint64(i)},
			{Temperature: 3, TopK: 1, TopP: 0.9, Seed: uint64(i)},
			{Temperature: 1, TopP: 1e-9, Seed: uint64(i)},
			{Temperature: 0.2, TopK: 10, TopP: 1e-9, Seed: uint64(i)},
		} {
			s := mustSampler(t, cfg)
			for range 3 {
				if got := s.Sample(logits); got != want {
					t.Fatalf("case %d %+v: drew %d, want %d (logits %v)", i, cfg, got, want, logits)
				}
			}
		}
	}
}

// TestSamplerDistribution: seeded draws follow softmax(logits/T) restricted
// to the top-k / top-p set and renormalised. Each frequency must lie within
// 5 standard deviations of its probability (a false failure has odds of
// about 1e-6 per bin, and the seeds are fixed anyway); tokens outside the
// set must never appear.
func TestSamplerDistribution(t *testing.T) {
	logits := []float32{1.0, 3.0, 0.5, 2.5, -1.0, 2.0}
	softmax := func(T float64, keep []int) []float64 {
		p := make([]float64, len(logits))
		var sum float64
		for _, i := range keep {
			p[i] = math.Exp(float64(logits[i]) / T)
			sum += p[i]
		}
		for i := range p {
			p[i] /= sum
		}
		return p
	}
	all := []int{0, 1, 2, 3, 4, 5}
	// at T = 1 the sorted probabilities are 0.453, 0.274, 0.166, 0.061, ...:
	// top-p 0.7 keeps {1, 3} (0.727), top-p 0.8 keeps {1, 3, 5} (0.893)
	for _, tc := range []struct {
		cfg  SamplerConfig
		want []float64
	}{
		{SamplerConfig{Temperature: 1, Seed: 1}, softmax(1, all)},
		{SamplerConfig{Temperature: 0.5, Seed: 2}, softmax(0.5, all)},
		{SamplerConfig{Temperature: 2, Seed: 3}, softmax(2, all)},
		{SamplerConfig{Temperature: 1, TopK: 3, Seed: 4}, softmax(1, []int{1, 3, 5})},
		{SamplerConfig{Temperature: 1, TopP: 0.7, Seed: 5}, softmax(1, []int{1, 3})},
		{SamplerConfig{Temperature: 1, TopP: 0.8, Seed: 6}, softmax(1, []int{1, 3, 5})},
		{SamplerConfig{Temperature: 1, TopK: 2, TopP: 0.9, Seed: 7}, softmax(1, []int{1, 3})},
		{SamplerConfig{Temperature: 1, TopK: 6, TopP: 1, Seed: 8}, softmax(1, all)},
	} {
		s := mustSampler(t, tc.cfg)
		const n = 40000
		counts := make([]int, len(logits))
		for range n {
			counts[s.Sample(logits)]++
		}
		for i, p := range tc.want {
			f := float64(counts[i]) / n
			sd := math.Sqrt(p * (1 - p) / n)
			if p == 0 && counts[i] != 0 || math.Abs(f-p) > 5*sd {
				t.Errorf("%+v: token %d frequency %.4f, want %.4f ± %.4f", tc.cfg, i, f, p, 5*sd)
			}
		}
	}
}

// TestSamplerSeeded: the same seed draws the same tokens; another seed
// draws others.
func TestSamplerSeeded(t *testing.T) {
	logits := randomLogits(rand.New(rand.NewPCG(9, 9)), 1000, 2)
	draw := func(seed uint64) []int32 {
		s := mustSampler(t, SamplerConfig{Temperature: 1, TopK: 200, TopP: 0.95, Seed: seed})
		out := make([]int32, 100)
		for i := range out {
			out[i] = s.Sample(logits)
		}
		return out
	}
	a, b, c := draw(42), draw(42), draw(43)
	if !slices.Equal(a, b) {
		t.Errorf("seed 42 twice: %v and %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 drew the same 100 tokens")
	}
}

func TestSamplerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg SamplerConfig
		ok  bool
	}{
		{SamplerConfig{}, true},
		{SamplerConfig{Temperature: 0.8, TopK: 40, TopP: 0.95}, true},
		{SamplerConfig{Temperature: -1}, false},
		{SamplerConfig{Temperature: math.NaN()}, false},
		{SamplerConfig{Temperature: math.Inf(1)}, false},
		{SamplerConfig{TopK: -1}, false},
		{SamplerConfig{TopP: 1.5}, false},
		{SamplerConfig{TopP: -0.1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v", tc.cfg, err)
		}
	}
}

// TestSamplerAllocs: after the first call, sampling allocates nothing.
func TestSamplerAllocs(t *testing.T) {
	logits := randomLogits(rand.New(rand.NewPCG(2, 2)), 10000, 2)
	for _, cfg := range []SamplerConfig{
		{Temperature: 0},
		{Temperature: 1},
		{Temperature: 1, TopK: 50},
		{Temperature: 1, TopP: 0.9},
		{Temperature: 1, TopK: 50, TopP: 0.9},
	} {
		s := mustSampler(t, cfg)
		s.Sample(logits)
		if a := testing.AllocsPerRun(10, func() { s.Sample(logits) }); a != 0 {
			t.Errorf("%+v: %v allocations per Sample", cfg, a)
		}
	}
}

// TestTopK: the heap selection keeps exactly the k best ids.
func TestTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for range 100 {
		n := 1 + rng.IntN(200)
		k := 1 + rng.IntN(n)
		logits := randomLogits(rng, n, 1)
		for i := range logits { // plenty of ties
			logits[i] = float32(math.Round(float64(logits[i]) * 4))
		}
		better := func(a, b int32) bool {
			return logits[a] > logits[b] || (logits[a] == logits[b] && a < b)
		}
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(i)
		}
		want := slices.Clone(ids)
		sortCandidates(want, better)
		topK(ids, k, better)
		got := ids[:k]
		sortCandidates(got, better)
		if !slices.Equal(got, want[:k]) {
			t.Fatalf("n %d k %d: got %v, want %v", n, k, got, want[:k])
		}
	}
}

// refSample is Sample written plainly: sort every id, cut top-k and top-p
// on the sorted list, draw.
func refSample(logits []float32, cfg SamplerConfig, rng *rand.Rand) int32 {
	n := len(logits)
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	better := func(a, b int32) bool { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }
	if cfg.TopK > 0 && cfg.TopK < n {
		sortCandidates(ids, better)
		ids = ids[:cfg.TopK]
	}
	mx := logits[ids[0]]
	for _, c := range ids {
		mx = max(mx, logits[c])
	}
	w := make([]float64, n)
	var total float64
	for _, c := range ids { // in the order Sample sums them
		w[c] = math.Exp(float64(logits[c]-mx) / cfg.Temperature)
		total += w[c]
	}
	if cfg.TopP > 0 && cfg.TopP < 1 {
		sortCandidates(ids, better)
		var cum float64
		for i, c := range ids {
			cum += w[c]
			if cum >= cfg.TopP*total {
				ids = ids[:i+1]
				break
			}
		}
		total = cum
	}
	r := rng.Float64() * total
	for _, c := range ids {
		r -= w[c]
		if r < 0 {
			return c
		}
	}
	return ids[len(ids)-1]
}

// TestSamplerMatchesReference: on large vocabularies, where top-p sorts only
// a growing prefix, the draws are exactly those of sorting everything.
func TestSamplerMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, scale := range []float64{0.1, 1, 4, 20} {
		logits := randomLogits(rng, 5000, scale)
		for _, cfg := range []SamplerConfig{
			{Temperature: 1, TopP: 0.5, Seed: 1},
			{Temperature: 0.7, TopP: 0.95, Seed: 2},
			{Temperature: 1.3, TopP: 0.999, Seed: 3},
			{Temperature: 1, TopK: 300, TopP: 0.8, Seed: 4},
			{Temperature: 1, TopK: 40, Seed: 5},
			{Temperature: 0.5, Seed: 6},
		} {
			s := mustSampler(t, cfg)
			ref := rand.New(rand.NewPCG(cfg.Seed, 0x5a3b1e)) // NewSampler's stream
			for i := range 20 {
				if got, want := s.Sample(logits), refSample(logits, cfg, ref); got != want {
					t.Fatalf("scale %g %+v draw %d: %d, reference %d", scale, cfg, i, got, want)
				}
			}
		}
	}
}
