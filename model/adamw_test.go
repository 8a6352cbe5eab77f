package model

import (
	"math"
	"testing"
)

// The worked example of docs/model.md: max_lr 1, min_lr 0.1, warmup 7,
// max_steps 21, steps 0..24.
func TestLRSpecExample(t *testing.T) {
	want := []float64{
		0, 1.0 / 7, 2.0 / 7, 3.0 / 7, 4.0 / 7, 5.0 / 7, 6.0 / 7,
		1, 0.9887175604818206, 0.9554359905560885, 0.9018241671106134, 0.8305704108364301,
		0.7452476826029011, 0.6501344202803414, 0.55, 0.44986557971965857, 0.3547523173970989,
		0.26942958916356996, 0.1981758328893866, 0.14456400944391146, 0.11128243951817937,
		0.1, 0.1, 0.1, 0.1,
	}
	for s, w := range want {
		if got := LR(s, 1, 0.1, 7, 21); math.Abs(got-w) > 1e-12 {
			t.Errorf("LR(%d) = %.16g, want %.16g", s, got, w)
		}
	}
	if got := LR(5, 1e-3, 1e-4, 0, 5); got != 1e-4 {
		t.Errorf("no warmup, last step: %g", got)
	}
	if got := LR(3, 1e-3, 1e-4, 3, 3); got != 1e-3 {
		t.Errorf("warmup == max_steps: %g", got)
	}
}

func TestClipGradNorm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		g       []float32
		max     float64
		norm    float64
		clipped []float32
	}{
		{"clipped", []float32{3, 4}, 1, 5, []float32{float32(3 / (5 + 1e-6)), float32(4 / (5 + 1e-6))}},
		{"below", []float32{0.3, 0.4}, 1, 0.5, []float32{0.3, 0.4}},
		{"disabled", []float32{3, 4}, 0, 5, []float32{3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := ClipGradNorm(tc.g, tc.max)
			if math.Abs(n-tc.norm) > 1e-6 {
				t.Errorf("norm %g, want %g", n, tc.norm)
			}
			for i := range tc.g {
				if tc.g[i] != tc.clipped[i] {
					t.Errorf("g[%d] = %.9g, want %.9g", i, tc.g[i], tc.clipped[i])
				}
			}
		})
	}
}

// AdamW against the formula of docs/model.md computed by hand in float64, on a layout
// with a 2-D tensor (decayed) and a 1-D gain (not decayed), for 3 steps.
func TestAdamWFormula(t *testing.T) {
	layout := []ParamSpec{
		{Name: "w", Shape: []int{2, 2}, Offset: 0, Size: 4, Decay: true},
		{Name: "g", Shape: []int{2}, Offset: 4, Size: 2, Decay: false},
	}
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	o := NewAdamW(layout, cfg)
	p := []float32{1, -2, 0.5, 3, 1, -1}
	grads := [][]float32{
		{0.1, -0.2, 0.3, 0, 0.5, -0.5},
		{-0.1, 0.4, 0.3, 1, 0.5, 0.25},
		{0.2, 0.2, -0.3, -1, 0, 2},
	}
	lrs := []float64{0.1, 0.05, 0.01}
	ref := make([]float64, len(p))
	m, v := make([]float64, len(p)), make([]float64, len(p))
	for i := range p {
		ref[i] = float64(p[i])
	}
	for s := range grads {
		o.Step(p, grads[s], lrs[s], s)
		for i := range ref {
			g := float64(grads[s][i])
			if i < 4 {
				ref[i] *= 1 - lrs[s]*cfg.WeightDecay
			}
			m[i] = cfg.Beta1*m[i] + (1-cfg.Beta1)*g
			v[i] = cfg.Beta2*v[i] + (1-cfg.Beta2)*g*g
			mh := m[i] / (1 - math.Pow(cfg.Beta1, float64(s+1)))
			vh := v[i] / (1 - math.Pow(cfg.Beta2, float64(s+1)))
			ref[i] -= lrs[s] * mh / (math.Sqrt(vh) + cfg.Eps)
		}
		for i := range p {
			if d := math.Abs(float64(p[i]) - ref[i]); d > 1e-6 {
				t.Fatalf("step %d p[%d] = %.8g, want %.8g", s, i, p[i], ref[i])
			}
		}
	}
	// Decay on matrices only: a zero-gradient step from fresh moments moves
	// only the 2-D tensor, by the factor 1 − lr·wd.
	o2 := NewAdamW(layout, cfg)
	q := []float32{1, 1, 1, 1, 1, 1}
	o2.Step(q, make([]float32, 6), 0.5, 0)
	for i, x := range q {
		want := float32(1)
		if i < 4 {
			want = float32(1 - 0.5*0.1)
		}
		if x != want {
			t.Errorf("zero gradient, q[%d] = %g, want %g (decay only on 2-D)", i, x, want)
		}
	}
}

func TestAdamWStepRange(t *testing.T) {
	layout := tinyConfig.Layout()
	n := tinyConfig.NumParams()
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	a, b := NewAdamW(layout, cfg), NewAdamW(layout, cfg)
	pa, pb, g := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range pa {
		pa[i] = float32(i%7) - 3
		pb[i] = pa[i]
		g[i] = float32(i%5) - 2
	}
	a.Step(pa, g, 0.01, 4)
	for _, r := range [][2]int{{0, 100}, {100, 333}, {333, n}} { // cuts through tensors
		b.StepRange(pb, g, r[0], r[1], 0.01, 4)
	}
	for i := range pa {
		if pa[i] != pb[i] || a.M[i] != b.M[i] || a.V[i] != b.V[i] {
			t.Fatalf("index %d differs between Step and StepRange pieces", i)
		}
	}
}
