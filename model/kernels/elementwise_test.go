package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(rng *rand.Rand, n int, std float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64() * std)
	}
	return s
}

func close32(got, want, rel, abs float64) bool {
	return math.Abs(got-want) <= abs+rel*math.Abs(want)
}

// fdCheck compares analytic[i] with central differences of loss in x at a
// few indices (step eps, tolerance tol·(1+|fd|)).
func fdCheck(t *testing.T, name string, rng *rand.Rand, x, analytic []float32, loss func() float64, eps, tol float64) {
	t.Helper()
	for try := 0; try < 16; try++ {
		i := rng.IntN(len(x))
		x0 := x[i]
		x[i] = x0 + float32(eps)
		lp := loss()
		x[i] = x0 - float32(eps)
		lm := loss()
		x[i] = x0
		fd := (lp - lm) / (2 * eps)
		if math.Abs(float64(analytic[i])-fd) > tol*(1+math.Abs(fd)) {
			t.Fatalf("%s[%d] = %v, finite difference %v", name, i, analytic[i], fd)
		}
	}
}

var elementwiseShapes = [][2]int{{1, 1}, {3, 5}, {7, 64}, {33, 130}, {256, 512}}

func TestRMSNorm(t *testing.T) {
	for si, s := range elementwiseShapes {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("N%d_C%d/t%d", s[0], s[1], threads), func(t *testing.T) {
				defer SetThreads(0)
				SetThreads(threads)
				N, C := s[0], s[1]
				rng := rand.New(rand.NewPCG(uint64(si), 11))
				inp, g, dout := randSlice(rng, N*C, 1), randSlice(rng, C, 1), randSlice(rng, N*C, 1)
				out, rstd := make([]float32, N*C), make([]float32, N)
				wantOut, wantRstd := make([]float32, N*C), make([]float32, N)
				RMSNormForward(out, rstd, inp, g, N, C, 1e-5)
				rmsnormRef(wantOut, wantRstd, inp, g, N, C, 1e-5)
				for i := range out {
					if !close32(float64(out[i]), float64(wantOut[i]), 1e-5, 1e-6) {
						t.Fatalf("out[%d] = %v, want %v", i, out[i], wantOut[i])
					}
				}
				for i := range rstd {
					if !close32(float64(rstd[i]), float64(wantRstd[i]), 1e-5, 0) {
						t.Fatalf("rstd[%d] = %v, want %v", i, rstd[i], wantRstd[i])
					}
				}
				// Backward accumulates: start from 0.5 and subtract it.
				dinp, dg := make([]float32, N*C), make([]float32, C)
				for i := range dinp {
					dinp[i] = 0.5
				}
				for i := range dg {
					dg[i] = 0.5
				}
				RMSNormBackward(dinp, dg, dout, inp, g, rstd, N, C)
				for i := range dinp {
					dinp[i] -= 0.5
				}
				for i := range dg {
					dg[i] -= 0.5
				}
				loss := func() float64 {
					o, r := make([]float32, N*C), make([]float32, N)
					// float64 forward: Σ out·dout
					var l float64
					for row := 0; row < N; row++ {
						var ss float64
						for _, v := range inp[row*C : (row+1)*C] {
							ss += float64(v) * float64(v)
						}
						sc := 1 / math.Sqrt(ss/float64(C)+1e-5)
						for j := 0; j < C; j++ {
							l += float64(inp[row*C+j]) * sc * float64(g[j]) * float64(dout[row*C+j])
						}
					}
					_, _ = o, r
					return l
				}
				fdCheck(t, "dinp", rng, inp, dinp, loss, 1e-3, 2e-3)
				fdCheck(t, "dg", rng, g, dg, loss, 1e-3, 2e-3)
			})
		}
	}
}

func TestSwiGLU(t *testing.T) {
	for si, s := range elementwiseShapes {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("N%d_F%d/t%d", s[0], s[1], threads), func(t *testing.T) {
				defer SetThreads(0)
				SetThreads(threads)
				N, F := s[0], s[1]
				rng := rand.New(rand.NewPCG(uint64(si), 12))
				h, dout := randSlice(rng, 2*N*F, 2), randSlice(rng, N*F, 1)
				out := make([]float32, N*F)
				SwiGLUForward(out, h, N, F)
				silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }
				for r := 0; r < N; r++ {
					for j := 0; j < F; j++ {
						want := silu(float64(h[2*r*F+j])) * float64(h[2*r*F+F+j])
						if !close32(float64(out[r*F+j]), want, 1e-5, 1e-6) {
							t.Fatalf("out[%d,%d] = %v, want %v", r, j, out[r*F+j], want)
						}
					}
				}
				dh := make([]float32, 2*N*F)
				for i := range dh {
					dh[i] = sentinel // overwritten, not accumulated
				}
				SwiGLUBackward(dh, dout, h, N, F)
				loss := func() float64 {
					var l float64
					for r := 0; r < N; r++ {
						for j := 0; j < F; j++ {
							l += silu(float64(h[2*r*F+j])) * float64(h[2*r*F+F+j]) * float64(dout[r*F+j])
						}
					}
					return l
				}
				fdCheck(t, "dh", rng, h, dh, loss, 1e-3, 2e-3)
			})
		}
	}
}

func TestRoPE(t *testing.T) {
	for _, c := range []struct{ B, T, H, dh, pad, pos0 int }{
		{1, 1, 1, 2, 0, 0}, {2, 5, 3, 4, 1, 0}, {2, 17, 4, 32, 0, 3}, {1, 300, 2, 8, 5, 0},
	} {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/t%d", c, threads), func(t *testing.T) {
				defer SetThreads(0)
				SetThreads(threads)
				rng := rand.New(rand.NewPCG(uint64(c.T), 13))
				ld := c.H*c.dh + c.pad
				x := randSlice(rng, c.B*c.T*ld, 1)
				for bt := 0; bt < c.B*c.T; bt++ {
					for j := c.H * c.dh; j < ld; j++ {
						x[bt*ld+j] = sentinel
					}
				}
				x0 := append([]float32(nil), x...)
				half := c.dh / 2
				cos, sin := make([]float32, (c.pos0+c.T)*half), make([]float32, (c.pos0+c.T)*half)
				RoPETable(cos, sin, c.pos0+c.T, c.dh, 10000)
				RoPEForward(x, cos, sin, c.B, c.T, c.H, c.dh, ld, c.pos0)
				for bt := 0; bt < c.B*c.T; bt++ {
					pos := c.pos0 + bt%c.T
					for h := 0; h < c.H; h++ {
						for i := 0; i < half; i++ {
							ang := float64(pos) * math.Pow(10000, -2*float64(i)/float64(c.dh))
							a, b := float64(x0[bt*ld+h*c.dh+2*i]), float64(x0[bt*ld+h*c.dh+2*i+1])
							w0 := a*math.Cos(ang) - b*math.Sin(ang)
							w1 := a*math.Sin(ang) + b*math.Cos(ang)
							g0, g1 := float64(x[bt*ld+h*c.dh+2*i]), float64(x[bt*ld+h*c.dh+2*i+1])
							if !close32(g0, w0, 1e-5, 1e-5) || !close32(g1, w1, 1e-5, 1e-5) {
								t.Fatalf("row %d head %d pair %d = %v %v, want %v %v", bt, h, i, g0, g1, w0, w1)
							}
						}
					}
					for j := c.H * c.dh; j < ld; j++ {
						if x[bt*ld+j] != sentinel {
							t.Fatalf("padding of row %d written", bt)
						}
					}
				}
				// The backward is the inverse rotation (rotations are orthogonal).
				RoPEBackward(x, cos, sin, c.B, c.T, c.H, c.dh, ld, c.pos0)
				for i := range x {
					if !close32(float64(x[i]), float64(x0[i]), 1e-5, 1e-5) {
						t.Fatalf("backward∘forward changed x[%d]: %v → %v", i, x0[i], x[i])
					}
				}
			})
		}
	}
}

func TestAdamW(t *testing.T) {
	defer setVecLevel(maxVecLevel())
	for level := maxVecLevel(); level >= 0; level-- {
		setVecLevel(level)
		t.Run(fmt.Sprintf("level%d", level), testAdamW)
	}
}

func testAdamW(t *testing.T) {
	for _, n := range []int{1, 7, 17, 1000, 70000} {
		for _, step := range []int{0, 9} {
			t.Run(fmt.Sprintf("n%d/step%d", n, step), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(n), uint64(step)))
				p, g := randSlice(rng, n, 1), randSlice(rng, n, 0.1)
				m, v := randSlice(rng, n, 0.01), randSlice(rng, n, 0.001)
				for i := range v {
					v[i] = float32(math.Abs(float64(v[i])))
				}
				pr, mr, vr := append([]float32(nil), p...), append([]float32(nil), m...), append([]float32(nil), v...)
				AdamW(p, g, m, v, 1e-3, 0.9, 0.95, 1e-8, 0.1, step)
				adamWRef(pr, g, mr, vr, 1e-3, 0.9, 0.95, 1e-8, 0.1, step)
				for i := range p {
					if !close32(float64(p[i]), float64(pr[i]), 1e-6, 1e-7) || !close32(float64(m[i]), float64(mr[i]), 1e-6, 1e-8) ||
						!close32(float64(v[i]), float64(vr[i]), 1e-6, 1e-12) {
						t.Fatalf("element %d: p %v m %v v %v, want %v %v %v", i, p[i], m[i], v[i], pr[i], mr[i], vr[i])
					}
				}
			})
		}
	}
}

// TestKernelsDoNotAllocate checks steady-state calls of every kernel, on one
// and two threads.
func TestKernelsDoNotAllocate(t *testing.T) {
	defer SetThreads(0)
	const B, T, H, dh, N, C, V = 2, 128, 4, 32, 256, 512, 1000
	d := H * dh
	rng := rand.New(rand.NewPCG(1, 1))
	q, k, v := randSlice(rng, B*T*d, 1), randSlice(rng, B*T*d, 1), randSlice(rng, B*T*d, 1)
	out, lse, dq, dk, dv := make([]float32, B*T*d), make([]float32, B*H*T), make([]float32, B*T*d), make([]float32, B*T*d), make([]float32, B*T*d)
	x, g, y, rstd := randSlice(rng, N*C, 1), randSlice(rng, C, 1), make([]float32, N*C), make([]float32, N)
	dg := make([]float32, C)
	h, dh2 := randSlice(rng, 2*N*C, 1), make([]float32, 2*N*C)
	logits, losses, targets := randSlice(rng, N*V, 1), make([]float32, N), make([]int32, N)
	cos, sin := make([]float32, T*dh/2), make([]float32, T*dh/2)
	RoPETable(cos, sin, T, dh, 10000)
	m2, v2 := make([]float32, N*C), make([]float32, N*C)
	calls := map[string]func(){
		"gemm":      func() { Gemm(false, true, N, N, C, 1, x, C, x, C, 0, y, N) },
		"attnFwd":   func() { CausalAttentionForward(FP32, out, lse, q, k, v, B, T, H, dh, d, d) },
		"attnBwd":   func() { CausalAttentionBackward(FP32, dq, dk, dv, out, q, k, v, out, lse, B, T, H, dh, d, d) },
		"crossent":  func() { SoftmaxCrossEntropy(losses, logits, targets, N, V, 1) },
		"rmsFwd":    func() { RMSNormForward(y, rstd, x, g, N, C, 1e-5) },
		"rmsBwd":    func() { RMSNormBackward(y, dg, x, x, g, rstd, N, C) },
		"swigluFwd": func() { SwiGLUForward(y, h, N, C) },
		"swigluBwd": func() { SwiGLUBackward(dh2, y, h, N, C) },
		"rope":      func() { RoPEForward(q, cos, sin, B, T, H, dh, d, 0) },
		"ropeBwd":   func() { RoPEBackward(q, cos, sin, B, T, H, dh, d, 0) },
		"adamw":     func() { AdamW(x, y, m2, v2, 1e-3, 0.9, 0.95, 1e-8, 0.1, 3) },
	}
	for _, threads := range []int{1, 2} {
		SetThreads(threads)
		for name, call := range calls {
			call()
			if a := testing.AllocsPerRun(3, call); a != 0 {
				t.Errorf("%s on %d threads: %v allocations per call", name, threads, a)
			}
		}
	}
}

// TestRoPELevels checks RoPE forward and backward at every vector level
// against the Go loop, bit for bit (the AVX-512 rows do the same two
// products and one sum per value).
func TestRoPELevels(t *testing.T) {
	defer setVecLevel(maxVecLevel())
	for _, c := range []struct{ B, T, H, dh, pad, pos0 int }{
		{2, 17, 4, 32, 0, 3}, {3, 40, 2, 64, 7, 0}, {1, 5, 3, 8, 1, 2},
	} {
		rng := rand.New(rand.NewPCG(uint64(c.T), 17))
		ld := c.H*c.dh + c.pad
		x := randSlice(rng, c.B*c.T*ld, 1)
		half := c.dh / 2
		cos, sin := make([]float32, (c.pos0+c.T)*half), make([]float32, (c.pos0+c.T)*half)
		RoPETable(cos, sin, c.pos0+c.T, c.dh, 10000)
		var want []float32
		for level := maxVecLevel(); level >= vecGo; level-- {
			setVecLevel(level)
			got := append([]float32(nil), x...)
			RoPEForward(got, cos, sin, c.B, c.T, c.H, c.dh, ld, c.pos0)
			RoPEBackward(got[ld:], cos, sin, c.B, c.T-1, c.H, c.dh, ld, c.pos0)
			if want == nil {
				want = got
				continue
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%+v level %d: x[%d] = %v, level %d %v", c, level, i, got[i], maxVecLevel(), want[i])
				}
			}
		}
	}
}
