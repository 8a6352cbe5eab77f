package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplerConfig chooses how the next token is drawn from the logits.
type SamplerConfig struct {
	// Temperature divides the logits before the softmax; 0 is greedy
	// (the first index of the largest logit; TopK and TopP are then unused).
	Temperature float64
	// TopK keeps only the K largest logits; 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most likely tokens (after TopK) whose
	// probability reaches P (nucleus sampling); 0 or 1 keeps all.
	TopP float64
	// Seed makes the draws deterministic: the same seed, logits and
	// config give the same tokens.
	Seed uint64
}

// Validate reports the first impossible value, naming its key.
func (c SamplerConfig) Validate() error {
	switch {
	case !(c.Temperature >= 0) || math.IsInf(c.Temperature, 0):
		return fmt.Errorf("model: temperature must be a finite number ≥ 0, got %v", c.Temperature)
	case c.TopK < 0:
		return fmt.Errorf("model: top_k must be ≥ 0, got %d", c.TopK)
	case !(c.TopP >= 0 && c.TopP <= 1):
		return fmt.Errorf("model: top_p must be in [0, 1], got %v", c.TopP)
	}
	return nil
}

// Sampler draws token ids from logits as its SamplerConfig says. Its scratch
// buffers grow to the vocabulary size on the first call; later calls with
// no more logits allocate nothing. Not safe for concurrent use.
type Sampler struct {
	cfg SamplerConfig
	rng *rand.Rand
	idx []int32   // candidate ids
	w   []float64 // unnormalised probabilities, by id
}

// NewSampler validates cfg and seeds the sampler's random stream.
func NewSampler(cfg SamplerConfig) (*Sampler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sampler{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5a3b1e))}, nil
}

// Config returns the sampler's configuration.
func (s *Sampler) Config() SamplerConfig { return s.cfg }

// Sample returns the id drawn from logits (one per token id, at least one).
//
// Candidates are ordered by logit, largest first, ties by smaller id; TopK
// keeps the first K, TopP the shortest prefix whose softmax mass (at the
// temperature, renormalised over the kept tokens) reaches P, always at least
// one. So TopK 1 and a tiny TopP both give the greedy token.
func (s *Sampler) Sample(logits []float32) int32 {
	n := len(logits)
	if n == 0 {
		panic("model: Sample with no logits")
	}
	if s.cfg.Temperature == 0 {
		return argmax(logits)
	}
	if cap(s.idx) < n {
		s.idx = make([]int32, n)
		s.w = make([]float64, n)
	}
	cand := s.idx[:n]
	for i := range cand {
		cand[i] = int32(i)
	}
	better := func(a, b int32) bool { // a ranks before b
		la, lb := logits[a], logits[b]
		return la > lb || (la == lb && a < b)
	}
	topP := s.cfg.TopP > 0 && s.cfg.TopP < 1
	sorted := false
	if k := s.cfg.TopK; k > 0 && k < n {
		topK(cand, k, better)
		cand = cand[:k]
		sortCandidates(cand, better)
		sorted = true
	}
	mx := logits[cand[0]]
	for _, c := range cand {
		mx = max(mx, logits[c])
	}
	w := s.w[:n] // w[id]: unnormalised probability of id
	invT := 1 / s.cfg.Temperature
	var total float64
	for _, c := range cand {
		w[c] = math.Exp(float64(logits[c]-mx) * invT)
		total += w[c]
	}
	if topP {
		// The nucleus is a prefix of the sorted candidates. Without top-k,
		// sort only the best m (m = 64, 256, …) until their mass reaches P:
		// the best m in sorted order are exactly the first m of the full
		// sort, so the cut is the same as sorting everything.
		m := len(cand)
		if !sorted {
			m = min(m, 64)
		}
		for {
			if !sorted {
				if m < len(cand) {
					topK(cand, m, better)
				}
				sortCandidates(cand[:m], better)
			}
			var cum float64
			cut := 0
			for i, c := range cand[:m] {
				cum += w[c]
				if cum >= s.cfg.TopP*total {
					cut = i + 1
					break
				}
			}
			if cut > 0 || m == len(cand) {
				if cut == 0 { // rounding: the whole mass fell short of P·total
					cut = m
				}
				cand, total = cand[:cut], cum
				break
			}
			m = min(len(cand), 4*m)
		}
	}
	r := s.rng.Float64() * total
	for _, c := range cand {
		r -= w[c]
		if r < 0 {
			return c
		}
	}
	return cand[len(cand)-1] // r ran past the end by rounding
}

// argmax is the first index of the largest value (NaNs never win).
func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] || x[best] != x[best] {
			best = i
		}
	}
	return int32(best)
}

// sortCandidates orders ids so that better ones come first.
func sortCandidates(ids []int32, better func(a, b int32) bool) {
	slices.SortFunc(ids, func(a, b int32) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
}

// topK moves the k best ids (in any order) to ids[:k]: a min-heap of the k
// best seen so far, its worst at the root, O(n log k), in place.
func topK(ids []int32, k int, better func(a, b int32) bool) {
	h := ids[:k]
	// heap order: h[parent] is worse than (or as bad as) its children
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= k {
				return
			}
			if c+1 < k && better(h[c], h[c+1]) {
				c++ // the worse child
			}
			if !better(h[i], h[c]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for j := k; j < len(ids); j++ {
		if better(ids[j], h[0]) {
			h[0], ids[j] = ids[j], h[0]
			down(0)
		}
	}
}
