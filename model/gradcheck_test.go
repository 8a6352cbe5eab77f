package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// Finite-difference gradient checks. Every check perturbs single float32
// inputs by ±eps (central differences, eps = 1e-2 on inputs of order 1) and
// compares (L(x+eps) − L(x−eps)) / 2eps, accumulated in float64, with the
// analytic gradient: |numeric − analytic| ≤ 2e-3 + 1e-2·|analytic|.
// The truncation error is O(eps²) ≈ 1e-4 and the float32 rounding of the
// forward pass about 1e-7·|L|/eps, so a wrong formula fails by far more.
const (
	gcEps  = 1e-2
	gcAtol = 2e-3
	gcRtol = 1e-2
)

func randSlice(rng *rand.Rand, n int, std float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64() * std)
	}
	return s
}

// dot64 is Σ a·b in float64: the scalar loss of a layer output projected on
// fixed random weights, whose gradient with respect to the output is r.
func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// checkGrad compares analytic[i] with the central difference of loss in
// x[i] for up to maxN indices spread over x.
func checkGrad(t *testing.T, name string, x, analytic []float32, loss func() float64, maxN int) {
	checkGradEps(t, name, x, analytic, loss, maxN, gcEps)
}

func checkGradEps(t *testing.T, name string, x, analytic []float32, loss func() float64, maxN int, eps float32) {
	t.Helper()
	if len(x) != len(analytic) {
		t.Fatalf("%s: %d values, %d gradients", name, len(x), len(analytic))
	}
	step := max(1, len(x)/maxN)
	worst := 0.0
	for i := 0; i < len(x); i += step {
		orig := x[i]
		x[i] = orig + eps
		lp := loss()
		x[i] = orig - eps
		lm := loss()
		x[i] = orig
		num := (lp - lm) / float64((orig+eps)-(orig-eps))
		ana := float64(analytic[i])
		d := math.Abs(num - ana)
		worst = max(worst, d)
		if d > gcAtol+gcRtol*math.Abs(ana) {
			t.Errorf("%s[%d]: numeric %.6g, analytic %.6g", name, i, num, ana)
			return
		}
	}
	t.Logf("%s: max |numeric − analytic| = %.3g", name, worst)
}

func TestGradRMSNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const N, C = 5, 16
	x := randSlice(rng, N*C, 1)
	g := randSlice(rng, C, 1)
	r := randSlice(rng, N*C, 1)
	out, rstd := make([]float32, N*C), make([]float32, N)
	loss := func() float64 { rmsnormForward(out, rstd, x, g, N, C); return dot64(out, r) }
	loss()
	dx, dg := make([]float32, N*C), make([]float32, C)
	rmsnormBackward(dx, dg, r, x, g, rstd, N, C)
	checkGrad(t, "dx", x, dx, loss, 100)
	checkGrad(t, "dg", g, dg, loss, 100)
}

func TestGradMatmul(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const N, C, OC = 6, 8, 5
	x, w := randSlice(rng, N*C, 1), randSlice(rng, OC*C, 1)
	r := randSlice(rng, N*OC, 1)
	out := make([]float32, N*OC)
	loss := func() float64 { matmulForward(kernels.FP32, out, x, w, N, C, OC); return dot64(out, r) }
	dx, dw := make([]float32, N*C), make([]float32, OC*C)
	matmulBackward(kernels.FP32, dx, dw, r, x, w, N, C, OC)
	checkGrad(t, "dx", x, dx, loss, 100)
	checkGrad(t, "dw", w, dw, loss, 100)
}

func TestGradEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const V, N, C = 7, 9, 4
	wte := randSlice(rng, V*C, 1)
	inp := []int32{0, 3, 3, 6, 1, 3, 0, 2, 5} // repeated tokens accumulate
	r := randSlice(rng, N*C, 1)
	out := make([]float32, N*C)
	loss := func() float64 { encoderForward(out, inp, wte, N, C); return dot64(out, r) }
	dwte := make([]float32, V*C)
	encoderBackward(dwte, r, inp, N, C)
	checkGrad(t, "dwte", wte, dwte, loss, 100)
}

func TestGradRoPE(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const T, HS, stride = 5, 8, 12
	x := randSlice(rng, T*stride, 1)
	r := randSlice(rng, T*stride, 1)
	cos, sin := make([]float32, T*HS/2), make([]float32, T*HS/2)
	ropeTable(cos, sin, T, HS, 100)
	y := make([]float32, len(x))
	loss := func() float64 {
		copy(y, x)
		ropeForward(y, stride, T, HS, 0, cos, sin)
		return dot64(y, r)
	}
	dx := slices.Clone(r)
	ropeBackward(dx, stride, T, HS, 0, cos, sin)
	for t0 := 0; t0 < T; t0++ { // columns past HS are not rotated: gradient is r itself
		copy(dx[t0*stride+HS:(t0+1)*stride], r[t0*stride+HS:(t0+1)*stride])
	}
	checkGrad(t, "dx", x, dx, loss, 100)
}

func TestGradSwiGLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const N, F = 4, 6
	h := randSlice(rng, N*2*F, 2)
	r := randSlice(rng, N*F, 1)
	out := make([]float32, N*F)
	loss := func() float64 { swigluForward(out, h, N, F); return dot64(out, r) }
	dh := make([]float32, N*2*F)
	swigluBackward(dh, r, h, N, F)
	checkGrad(t, "dh13", h, dh, loss, 100)
}

func TestGradCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const N, V = 4, 7
	logits := randSlice(rng, N*V, 2)
	targets := []int32{0, 6, 3, 3}
	probs, losses := make([]float32, N*V), make([]float32, N)
	loss := func() float64 {
		copy(probs, logits)
		crossEntropyForward(losses, probs, targets, N, V)
		var s float64
		for _, l := range losses {
			s += float64(l)
		}
		return s
	}
	loss()
	dl := slices.Clone(probs)
	crossEntropyBackward(dl, targets, 1, N, V)
	checkGrad(t, "dlogits", logits, dl, loss, 100)
}

func TestGradAttention(t *testing.T) {
	for _, tc := range []struct{ B, T, C, NH int }{
		{1, 3, 8, 2},
		{2, 5, 12, 3},
		{1, attnBlock + 3, 4, 1}, // crosses a row block
	} {
		t.Run(fmt.Sprintf("B%dT%dC%dNH%d", tc.B, tc.T, tc.C, tc.NH), func(t *testing.T) {
			B, T, C, NH := tc.B, tc.T, tc.C, tc.NH
			HS := C / NH
			rng := rand.New(rand.NewPCG(13, uint64(T)))
			qkv := randSlice(rng, B*T*3*C, 1)
			r := randSlice(rng, B*T*C, 1)
			cos, sin := make([]float32, T*HS/2), make([]float32, T*HS/2)
			ropeTable(cos, sin, T, HS, 10000)
			work := make([]float32, len(qkv))
			out, att := make([]float32, B*T*C), make([]float32, B*NH*T*T)
			loss := func() float64 {
				copy(work, qkv)
				attentionForward(out, att, work, cos, sin, B, T, C, NH)
				return dot64(out, r)
			}
			loss()
			dqkv := randSlice(rng, len(qkv), 1) // garbage: backward must overwrite
			datt := make([]float32, len(att))
			attentionBackward(dqkv, datt, r, work, att, cos, sin, B, T, C, NH)
			checkGrad(t, "dqkv", qkv, dqkv, loss, 300)
		})
	}
}

// tinyConfig is a model small enough for finite differences under -race.
var tinyConfig = Config{VocabSize: 11, ContextLength: 8, DModel: 8, NumLayers: 2, NumHeads: 2, DFF: 12, RopeTheta: 10000}

func TestGradModel(t *testing.T) {
	const B, T = 2, 5
	m, err := New(tinyConfig, B, T)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(42)
	rng := rand.New(rand.NewPCG(15, 16))
	// make the gains non-trivial so their gradients are tested too
	for _, p := range m.Layout() {
		if !p.Decay {
			for i := p.Offset; i < p.Offset+p.Size; i++ {
				m.Params[i] = float32(1 + 0.3*rng.NormFloat64())
			}
		}
	}
	in := make([]int32, B*T)
	tg := make([]int32, B*T)
	for i := range in {
		in[i], tg[i] = int32(rng.IntN(11)), int32(rng.IntN(11))
	}
	const scale = 3 // Backward(scale) is the gradient of scale·loss
	loss := func() float64 { return scale * m.Forward(in, tg, B, T) }
	loss()
	m.ZeroGrad()
	m.Backward(scale)
	grads := slices.Clone(m.Grads)
	for _, p := range m.Layout() {
		s := p.Offset
		e := s + p.Size
		checkGradEps(t, p.Name, m.Params[s:e], grads[s:e], loss, 40, 3e-3)
	}
	// accumulation: a second Backward adds the same gradient again
	loss()
	m.Backward(scale)
	for i, g := range m.Grads {
		if d := math.Abs(float64(g - 2*grads[i])); d > 1e-5+1e-5*math.Abs(float64(g)) {
			t.Fatalf("grad %d after two backward passes: %g, want %g", i, g, 2*grads[i])
		}
	}
}
