package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ringtrain/ringtrain/internal/bf16"
)

type attnCase struct {
	B, T, H, dh int
	packed      bool // q, k, v interleaved in one (B, T, 3d) buffer, as the model stores them
	pad         int  // extra columns per row
}

func attnCases() []attnCase {
	return []attnCase{
		{1, 1, 1, 4, false, 0},
		{2, 5, 2, 4, false, 1},
		{1, 70, 3, 8, true, 0},
		{2, 130, 2, 32, true, 3},
		{1, 64, 2, 16, false, 0},
		{1, 400, 1, 8, true, 1}, // T > kc: k and v are not prepacked
	}
}

func (c attnCase) String() string {
	return fmt.Sprintf("B%d_T%d_H%d_dh%d_packed%v_pad%d", c.B, c.T, c.H, c.dh, c.packed, c.pad)
}

// attnData holds q, k, v (and their gradients) in the layout of c.
type attnData struct {
	c            attnCase
	ld, ldo      int
	qkv, dqkv    []float32 // packed: one buffer; else q | k | v blocks
	q, k, v      []float32
	dq, dk, dv   []float32
	out, dout    []float32
	lse          []float32
	offK, offV   int
	bufRows, dim int
}

func newAttnData(rng *rand.Rand, c attnCase) *attnData {
	d := c.H * c.dh
	a := &attnData{c: c, dim: d, bufRows: c.B * c.T}
	n := c.B * c.T
	if c.packed {
		a.ld = 3*d + c.pad
		a.qkv = make([]float32, n*a.ld)
		a.dqkv = make([]float32, n*a.ld)
		a.offK, a.offV = d, 2*d
	} else {
		a.ld = d + c.pad
		a.qkv = make([]float32, 3*n*a.ld)
		a.dqkv = make([]float32, 3*n*a.ld)
		a.offK, a.offV = n*a.ld, 2*n*a.ld
	}
	for i := range a.qkv {
		a.qkv[i] = float32(rng.NormFloat64())
		a.dqkv[i] = sentinel
	}
	// Gradients start at a known value inside the heads (backward accumulates).
	for _, off := range []int{0, a.offK, a.offV} {
		for r := 0; r < n; r++ {
			for col := 0; col < d; col++ {
				a.dqkv[off+r*a.ld+col] = 0.25
			}
		}
	}
	a.q, a.k, a.v = a.qkv, a.qkv[a.offK:], a.qkv[a.offV:]
	a.dq, a.dk, a.dv = a.dqkv, a.dqkv[a.offK:], a.dqkv[a.offV:]
	a.ldo = d + c.pad
	a.out = make([]float32, n*a.ldo)
	a.dout = make([]float32, n*a.ldo)
	for i := range a.out {
		a.out[i] = sentinel
		a.dout[i] = float32(rng.NormFloat64())
	}
	a.lse = make([]float32, c.B*c.H*c.T)
	return a
}

func TestCausalAttentionForward(t *testing.T) {
	for i, c := range attnCases() {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/t%d", c, threads), func(t *testing.T) {
				defer SetThreads(0)
				SetThreads(threads)
				a := newAttnData(rand.New(rand.NewPCG(uint64(i), 7)), c)
				CausalAttentionForward(FP32, a.out, a.lse, a.q, a.k, a.v, c.B, c.T, c.H, c.dh, a.ld, a.ldo)
				want, wantLSE := causalAttentionRef64(a.q, a.k, a.v, c.B, c.T, c.H, c.dh, a.ld)
				for r := 0; r < c.B*c.T; r++ {
					for col := 0; col < a.ldo; col++ {
						got := a.out[r*a.ldo+col]
						if col >= a.dim {
							if got != sentinel {
								t.Fatalf("padding out[%d,%d] written", r, col)
							}
							continue
						}
						if e := want[r*a.dim+col]; math.Abs(float64(got)-e) > 2e-5*(1+math.Abs(e)) {
							t.Fatalf("out[%d,%d] = %v, want %v", r, col, got, e)
						}
					}
				}
				for i, e := range wantLSE {
					if math.Abs(float64(a.lse[i])-e) > 2e-5*(1+math.Abs(e)) {
						t.Fatalf("lse[%d] = %v, want %v", i, a.lse[i], e)
					}
				}
			})
		}
	}
}

// TestCausalAttentionBackward checks the gradients of L = Σ out ⊙ dout
// against central differences of the float64 reference (step 1e-3, tolerance
// 1e-3 relative to the gradient scale) and that padding is untouched.
func TestCausalAttentionBackward(t *testing.T) {
	for i, c := range attnCases() {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/t%d", c, threads), func(t *testing.T) {
				defer SetThreads(0)
				SetThreads(threads)
				rng := rand.New(rand.NewPCG(uint64(i), 8))
				a := newAttnData(rng, c)
				CausalAttentionForward(FP32, a.out, a.lse, a.q, a.k, a.v, c.B, c.T, c.H, c.dh, a.ld, a.ldo)
				CausalAttentionBackward(FP32, a.dq, a.dk, a.dv, a.dout, a.q, a.k, a.v, a.out, a.lse, c.B, c.T, c.H, c.dh, a.ld, a.ldo)
				loss := func() float64 {
					o, _ := causalAttentionRef64(a.q, a.k, a.v, c.B, c.T, c.H, c.dh, a.ld)
					var l float64
					for r := 0; r < c.B*c.T; r++ {
						for col := 0; col < a.dim; col++ {
							l += o[r*a.dim+col] * float64(a.dout[r*a.ldo+col])
						}
					}
					return l
				}
				n := c.B * c.T
				for _, part := range []struct {
					name string
					x, g []float32
				}{{"q", a.q, a.dq}, {"k", a.k, a.dk}, {"v", a.v, a.dv}} {
					for try := 0; try < 12; try++ {
						r, col := rng.IntN(n), rng.IntN(a.dim)
						idx := r*a.ld + col
						x0 := part.x[idx]
						const eps = 1e-3
						part.x[idx] = x0 + eps
						lp := loss()
						part.x[idx] = x0 - eps
						lm := loss()
						part.x[idx] = x0
						fd := (lp - lm) / (2 * eps)
						got := float64(part.g[idx]) - 0.25
						if math.Abs(got-fd) > 1e-3*(1+math.Abs(fd)) {
							t.Fatalf("d%s[%d,%d] = %v, finite difference %v", part.name, r, col, got, fd)
						}
					}
				}
				// Nothing outside the heads of dq, dk, dv was written.
				for i, x := range a.dqkv {
					inHead := false
					for _, off := range []int{0, a.offK, a.offV} {
						if j := i - off; j >= 0 && j < n*a.ld && j%a.ld < a.dim {
							inHead = true
						}
					}
					if !inHead && x != sentinel {
						t.Fatalf("gradient buffer written outside the heads at %d", i)
					}
				}
			})
		}
	}
}

// attentionBF16Ref64 is CausalAttentionForward(BF16) in float64: the
// products see bf16(scale·q), bf16(k), bf16(p) and bf16(v), where p are the
// unnormalised probabilities exp(s − max), normalised after the product.
func attentionBF16Ref64(q, k, v []float32, B, T, H, dh, ld int) []float64 {
	d := H * dh
	out := make([]float64, B*T*d)
	scale := float32(1 / math.Sqrt(float64(dh)))
	r := func(x float32) float64 { return float64(bf16.Round(x)) }
	s := make([]float64, T)
	for b := range B {
		for h := range H {
			for t := range T {
				qt := q[(b*T+t)*ld+h*dh:][:dh]
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					kj := k[(b*T+j)*ld+h*dh:][:dh]
					var dot float64
					for c := range qt {
						dot += r(scale*qt[c]) * r(kj[c])
					}
					s[j] = dot
					mx = math.Max(mx, dot)
				}
				var sum float64
				o := out[(b*T+t)*d+h*dh:][:dh]
				for j := 0; j <= t; j++ {
					p := math.Exp(s[j] - mx)
					sum += p
					vj := v[(b*T+j)*ld+h*dh:][:dh]
					for c := range o {
						o[c] += r(float32(p)) * r(vj[c])
					}
				}
				for c := range o {
					o[c] /= sum
				}
			}
		}
	}
	return out
}

// TestCausalAttentionBF16 checks that BF16 rounds the inputs of the
// forward products where attentionBF16Ref64 does: the BF16 kernel is within
// 1e-3 of that reference (float32 rounding, and a probability that lands on
// the other side of a bfloat16 rounding boundary), while the FP32 kernel is
// at least 4× further from it. Backward in BF16 stays within 2% of FP32's
// gradients (relative to their largest magnitude).
func TestCausalAttentionBF16(t *testing.T) {
	for i, c := range attnCases() {
		t.Run(c.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			a32 := newAttnData(rng, c)
			a16 := newAttnData(rand.New(rand.NewPCG(uint64(i), 9)), c)
			CausalAttentionForward(FP32, a32.out, a32.lse, a32.q, a32.k, a32.v, c.B, c.T, c.H, c.dh, a32.ld, a32.ldo)
			CausalAttentionForward(BF16, a16.out, a16.lse, a16.q, a16.k, a16.v, c.B, c.T, c.H, c.dh, a16.ld, a16.ldo)
			want := attentionBF16Ref64(a16.q, a16.k, a16.v, c.B, c.T, c.H, c.dh, a16.ld)
			var err16, err32 float64
			for r := range c.B * c.T {
				for col := range a16.dim {
					e := want[r*a16.dim+col]
					err16 = max(err16, math.Abs(float64(a16.out[r*a16.ldo+col])-e))
					err32 = max(err32, math.Abs(float64(a32.out[r*a32.ldo+col])-e))
				}
			}
			if err16 > 1e-3 || (c.T > 1 && err16*4 > err32) {
				t.Fatalf("largest error to the bf16 reference: BF16 kernel %.3g, FP32 kernel %.3g", err16, err32)
			}
			CausalAttentionBackward(FP32, a32.dq, a32.dk, a32.dv, a32.dout, a32.q, a32.k, a32.v, a32.out, a32.lse, c.B, c.T, c.H, c.dh, a32.ld, a32.ldo)
			CausalAttentionBackward(BF16, a16.dq, a16.dk, a16.dv, a16.dout, a16.q, a16.k, a16.v, a16.out, a16.lse, c.B, c.T, c.H, c.dh, a16.ld, a16.ldo)
			var scale, diff float64
			for j, g := range a32.dqkv {
				if g == sentinel {
					continue
				}
				scale = max(scale, math.Abs(float64(g)-0.25))
				diff = max(diff, math.Abs(float64(a16.dqkv[j])-float64(g)))
			}
			if diff > 0.02*scale || (c.T > 1 && diff == 0) {
				t.Fatalf("BF16 gradients differ from FP32 by %.3g (scale %.3g)", diff, scale)
			}
		})
	}
}
