package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
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
				CausalAttentionForward(a.out, a.lse, a.q, a.k, a.v, c.B, c.T, c.H, c.dh, a.ld, a.ldo)
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
				CausalAttentionForward(a.out, a.lse, a.q, a.k, a.v, c.B, c.T, c.H, c.dh, a.ld, a.ldo)
				CausalAttentionBackward(a.dq, a.dk, a.dv, a.dout, a.q, a.k, a.v, a.out, a.lse, c.B, c.T, c.H, c.dh, a.ld, a.ldo)
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
