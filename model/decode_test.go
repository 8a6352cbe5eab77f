package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// decodeConfigs are small shapes for the cache tests: one with a head size
// and widths that are not multiples of the Gemm register tiles.
// "wide" has the widths of cs336-17m (1 layer, a short context) so that
// Gemm takes its multi-threaded, blocked paths.
var decodeConfigs = []struct {
	name    string
	cfg     Config
	prompts []int // prompt lengths tried
	long    bool  // skipped with -short
}{
	{"tiny", Config{VocabSize: 50, ContextLength: 24, DModel: 32, NumLayers: 2, NumHeads: 4, DFF: 72, RopeTheta: 10000}, []int{1, 5, 23, 24}, false},
	{"odd", Config{VocabSize: 77, ContextLength: 40, DModel: 60, NumLayers: 3, NumHeads: 5, DFF: 100, RopeTheta: 500}, []int{1, 5, 39, 40}, false},
	{"wide", Config{VocabSize: 10000, ContextLength: 40, DModel: 512, NumLayers: 1, NumHeads: 16, DFF: 1344, RopeTheta: 10000}, []int{27}, true},
}

// logitTol is the largest difference allowed between the logits of a cached
// Step and those of the full training Forward on the same sequence, relative
// to max(1, |logit|). Both run the same float32 kernels in the same order;
// only Gemm's tiling of a 1-row product versus a T-row one could differ.
const logitTol = 1e-5

// maxRelDiff returns max |a−b| / max(1, |b|).
func maxRelDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		d := math.Abs(float64(a[i])-float64(b[i])) / max(1, math.Abs(float64(b[i])))
		if d > m || math.IsNaN(d) {
			m = d
		}
	}
	return m
}

func randomTokens(rng *rand.Rand, n, V int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(rng.IntN(V))
	}
	return t
}

// lastLogits runs the training forward (targets nil) on seq and returns the
// logits of its last position.
func lastLogits(m *Model, seq []int32) []float32 {
	m.Forward(seq, nil, 1, len(seq))
	V := m.Config.VocabSize
	return m.Logits()[(len(seq)-1)*V : len(seq)*V]
}

// TestDecoderMatchesForward: for several prompt lengths, greedy decoding
// with the cache (Prefill, then Step) picks exactly the tokens that greedy
// decoding by full recomputation (Model.Forward on the growing sequence)
// picks, up to the context length, and every step's logits equal the full
// forward's last row within logitTol.
func TestDecoderMatchesForward(t *testing.T) {
	for _, tc := range decodeConfigs {
		if tc.long && testing.Short() {
			continue
		}
		cfg := tc.cfg
		T := cfg.ContextLength
		m, err := New(cfg, 1, T)
		if err != nil {
			t.Fatal(err)
		}
		m.Init(7)
		d, err := NewDecoder(cfg, m.Params, T)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for _, plen := range tc.prompts {
			prompt := randomTokens(rng, plen, cfg.VocabSize)
			cached := slices.Clone(prompt) // greedy with the cache
			full := slices.Clone(prompt)   // greedy by recomputation
			var worst float64
			logits := d.Prefill(prompt)
			for {
				ref := lastLogits(m, full)
				worst = max(worst, maxRelDiff(logits, ref))
				cached = append(cached, argmax(logits))
				full = append(full, argmax(ref))
				if len(full) > T {
					break
				}
				logits = d.Step(cached[len(cached)-1])
			}
			if !slices.Equal(cached, full) {
				t.Errorf("%s prompt %d: cached greedy %v, full recomputation %v", tc.name, plen, cached[plen:], full[plen:])
			}
			if worst > logitTol {
				t.Errorf("%s prompt %d: logits differ by %.3g relative, want ≤ %g", tc.name, plen, worst, logitTol)
			}
			if d.Len() != T {
				t.Errorf("%s prompt %d: Len %d after filling, want %d", tc.name, plen, d.Len(), T)
			}
			t.Logf("%s prompt %d: %d tokens, max relative logit difference %.3g", tc.name, plen, len(cached)-plen, worst)
		}
	}
}

// TestDecoderStepPanicsWhenFull: a full cache is an error, not a silent
// overwrite; Reset empties it.
func TestDecoderStepPanicsWhenFull(t *testing.T) {
	cfg := decodeConfigs[0].cfg
	m, _ := New(cfg, 1, 4)
	m.Init(1)
	d, err := NewDecoder(cfg, m.Params, 4)
	if err != nil {
		t.Fatal(err)
	}
	d.Prefill([]int32{1, 2, 3})
	d.Step(4)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Step on a full cache did not panic")
			}
		}()
		d.Step(5)
	}()
	d.Reset()
	if d.Len() != 0 {
		t.Errorf("Len %d after Reset", d.Len())
	}
}

func TestNewDecoderErrors(t *testing.T) {
	cfg := decodeConfigs[0].cfg
	params := make([]float32, cfg.NumParams())
	for _, tc := range []struct {
		name   string
		params []float32
		maxT   int
	}{
		{"zero cache", params, 0},
		{"cache beyond context", params, cfg.ContextLength + 1},
		{"short params", params[:10], 4},
	} {
		if _, err := NewDecoder(cfg, tc.params, tc.maxT); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestDecoderStepAllocs: a decode step allocates nothing.
func TestDecoderStepAllocs(t *testing.T) {
	cfg := decodeConfigs[1].cfg
	m, _ := New(cfg, 1, 1)
	m.Init(1)
	d, err := NewDecoder(cfg, m.Params, cfg.ContextLength)
	if err != nil {
		t.Fatal(err)
	}
	d.Prefill([]int32{1, 2})
	d.Step(3) // warm up Gemm's buffers
	if a := testing.AllocsPerRun(20, func() { d.Step(4) }); a != 0 {
		t.Errorf("Step allocates %v times per call", a)
	}
}

// TestRowLayersMatch: the one-row layers of Step agree with the training
// layers on one row within 1e-6 relative (max(1, |y|)). Today they do the
// same arithmetic and give the same bits; the tolerance leaves the training
// layers free to move to other kernels.
func TestRowLayersMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const C, F = 37, 53
	x, g := make([]float32, C), make([]float32, C)
	h13 := make([]float32, 2*F)
	for _, s := range [][]float32{x, g, h13} {
		for i := range s {
			s[i] = float32(rng.NormFloat64() * 3)
		}
	}
	want, got, rstd := make([]float32, C), make([]float32, C), make([]float32, 1)
	rmsnormForward(want, rstd, x, g, 1, C)
	rmsnormRow(got, x, g)
	if d := maxRelDiff(got, want); d > 1e-6 {
		t.Errorf("rmsnormRow differs from rmsnormForward by %.3g: %v, %v", d, got, want)
	}
	wantS, gotS := make([]float32, F), make([]float32, F)
	swigluForward(wantS, h13, 1, F)
	swigluRow(gotS, h13)
	if d := maxRelDiff(gotS, wantS); d > 1e-6 {
		t.Errorf("swigluRow differs from swigluForward by %.3g: %v, %v", d, gotS, wantS)
	}
}

// referenceGenerate is greedy generation by full recomputation with the
// training forward, following Generate's window policy: the window holds
// at most T tokens; when a new token does not fit, it restarts with the
// last T/2 tokens.
func referenceGenerate(m *Model, prompt []int32, T, n int) []int32 {
	win := slices.Clone(prompt[max(0, len(prompt)-T):])
	var out []int32
	for len(out) < n {
		tok := argmax(lastLogits(m, win))
		out = append(out, tok)
		if len(win) == T {
			win = slices.Clone(win[len(win)-(T/2-1):])
		}
		win = append(win, tok)
	}
	return out
}

// TestGenerate: greedy Generate, with the cache and without, emits the
// tokens of full recomputation, also past the context length where the
// window slides, and counts the slides; the stop token ends it unemitted.
func TestGenerate(t *testing.T) {
	cfg := decodeConfigs[0].cfg
	T := cfg.ContextLength
	m, _ := New(cfg, 1, T)
	m.Init(11)
	d, err := NewDecoder(cfg, m.Params, T)
	if err != nil {
		t.Fatal(err)
	}
	greedy, _ := NewSampler(SamplerConfig{})
	rng := rand.New(rand.NewPCG(8, 9))
	for _, tc := range []struct {
		name    string
		plen, n int
	}{
		{"short", 3, 10},
		{"fills context", 3, T - 3},
		{"slides", 3, 3 * T},
		{"long prompt", T + 5, T}, // 5 dropped, the window full at once
	} {
		prompt := randomTokens(rng, tc.plen, cfg.VocabSize)
		want := referenceGenerate(m, prompt, T, tc.n)
		for _, noCache := range []bool{false, true} {
			var got []int32
			st, err := d.Generate(prompt, GenerateConfig{MaxTokens: tc.n, NoCache: noCache}, greedy,
				func(tok int32) error { got = append(got, tok); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s noCache=%v: got %v, want %v", tc.name, noCache, got, want)
			}
			// tokens in the window: p, then +1 per fed token (n−1 fed);
			// every slide at T takes it back to T/2
			slides, w := 0, min(tc.plen, T)
			for range tc.n - 1 {
				if w == T {
					w = T / 2
					slides++
				} else {
					w++
				}
			}
			if st.Slides != slides || st.NewTokens != tc.n || st.PromptTokens != min(tc.plen, T) || st.Dropped != max(0, tc.plen-T) {
				t.Errorf("%s noCache=%v: stats %+v, want %d slides", tc.name, noCache, st, slides)
			}
		}
	}

	// stop at the 4th greedy token
	prompt := []int32{1, 2, 3}
	want := referenceGenerate(m, prompt, T, 6)
	stop := want[3]
	k := slices.Index(want, stop)
	var got []int32
	st, err := d.Generate(prompt, GenerateConfig{MaxTokens: 6, Stop: []int32{stop}}, greedy,
		func(tok int32) error { got = append(got, tok); return nil })
	if err != nil || !st.Stopped || !slices.Equal(got, want[:k]) {
		t.Errorf("stop %d: got %v, stats %+v, err %v; want %v", stop, got, st, err, want[:k])
	}
	// Vocab restricts the draw
	_, err = d.Generate(prompt, GenerateConfig{MaxTokens: 20, Vocab: 3}, greedy,
		func(tok int32) error {
			if tok >= 3 {
				t.Errorf("Vocab 3: drew %d", tok)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGenerateAllocs: the allocations of Generate do not grow with the
// number of tokens (none per token; the prompt's prefill and set-up do
// allocate, a number that varies by a few with goroutine reuse).
func TestGenerateAllocs(t *testing.T) {
	cfg := decodeConfigs[1].cfg
	m, _ := New(cfg, 1, 1)
	m.Init(2)
	d, err := NewDecoder(cfg, m.Params, cfg.ContextLength)
	if err != nil {
		t.Fatal(err)
	}
	s := mustSampler(t, SamplerConfig{Temperature: 1, TopK: 10, TopP: 0.9, Seed: 1})
	prompt := []int32{1, 2, 3}
	emit := func(int32) error { return nil }
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(5, func() {
			if _, err := d.Generate(prompt, GenerateConfig{MaxTokens: n}, s, emit); err != nil {
				t.Fatal(err)
			}
		})
	}
	// 28 more tokens: even one allocation per token would add 28; the
	// prefill's goroutines allocate a varying handful, hence the slack
	if few, many := allocs(2), allocs(30); many > few+3 {
		t.Errorf("Generate allocates %v times for 2 tokens, %v for 30", few, many)
	}
}
