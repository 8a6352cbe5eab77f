package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ringtrain/ringtrain/internal/bf16"
)

// roundedArgs returns copies of g's a and b as GemmBF16 sees them:
// bf16(alpha·a) and bf16(b), with alpha 1.
func roundedArgs(g *gemmArgs) *gemmArgs {
	r := *g
	r.a = make([]float32, len(g.a))
	for i, v := range g.a {
		r.a[i] = bf16.Round(g.alpha * v)
	}
	r.b = make([]float32, len(g.b))
	for i, v := range g.b {
		r.b[i] = bf16.Round(v)
	}
	r.alpha = 1
	return &r
}

// bf16Want is the float64 product of the rounded inputs and its error scale.
func bf16Want(g *gemmArgs) ([]float64, []float64) {
	r := roundedArgs(g)
	return gemmNaive64(r.transA, r.transB, r.m, r.n, r.k, 1, r.a, r.lda, r.b, r.ldb, r.beta, r.c, r.ldc),
		gemmBound(r.transA, r.transB, r.m, r.n, r.k, 1, r.a, r.lda, r.b, r.ldb, r.beta, r.c, r.ldc)
}

// bf16Paths are the ways this build and CPU compute GemmBF16: every
// bfloat16 kernel (AMX, AVX512_BF16) and the Go strip kernel on the packed
// layout, and the fp32 emulation (rounded packing) on every fp32 kernel.
func bf16Paths() map[string]func(threads int, g *gemmArgs) {
	paths := map[string]func(int, *gemmArgs){}
	for _, kern := range append(availableBF16Kernels(), bf16KernelGo) {
		paths[kern.name] = func(threads int, g *gemmArgs) { gemmBF16With(kern, threads, g) }
	}
	// The emulation on the active fp32 kernel and on the Go one (the other
	// fp32 kernels round the same packed blocks).
	for _, kern := range []*microKernel{activeKernel, kernelGo} {
		paths["emulated-"+kern.name] = func(threads int, g *gemmArgs) {
			r := *g
			r.round = true
			gemmWith(kern, threads, &r)
		}
	}
	return paths
}

// TestGemmBF16Paths checks every path against the float64 product of the
// bf16-rounded inputs. The tolerance is that of float32 accumulation,
// (k+4)·2.4e-7·Σ|a||b| per element: the paths differ from it, and from each
// other, only by the order of the float32 sums.
func TestGemmBF16Paths(t *testing.T) {
	for name, run := range bf16Paths() {
		for _, threads := range []int{1, 3} { // 2: TestGemmBF16Threads
			for i, tc := range gemmCases() {
				big := tc.m*tc.n*tc.k > 1.2e7
				if (big && (testing.Short() || threads != 3)) || (name == bf16KernelGo.name && tc.m*tc.n*tc.k > 2e6) {
					continue
				}
				t.Run(fmt.Sprintf("%s/t%d/%s", name, threads, tc), func(t *testing.T) {
					runGemmCase(t, tc, uint64(i), func(g *gemmArgs) { run(threads, g) }, bf16Want)
				})
			}
		}
	}
}

// TestGemmBF16Threads checks that the packed paths give the same bits on
// any number of threads (each element is one sum in one order).
func TestGemmBF16Threads(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	m, n, k := 300, 530, 200
	a, b := randSlice(rng, m*k, 1), randSlice(rng, k*n, 1)
	for _, kern := range append(availableBF16Kernels(), bf16KernelGo) {
		var first []float32
		for _, threads := range []int{1, 2, 3, 5} {
			c := make([]float32, m*n)
			gemmBF16With(kern, threads, &gemmArgs{transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: k, c: c, ldc: n})
			if first == nil {
				first = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%s: %d threads: c[%d] = %v, 1 thread %v", kern.name, threads, i, c[i], first[i])
				}
			}
		}
	}
}

// specialValues are float32 values whose rounding to bfloat16 is a corner
// case: ties both ways, subnormals, signed zeros, overflow, NaNs.
var specialValues = []float32{
	math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), math.Float32frombits(0x3f807fff),
	math.Float32frombits(0x00012345), math.Float32frombits(0x80000001), math.Float32frombits(0x80000000),
	math.Float32frombits(0x7f7fffff), float32(math.Inf(-1)), math.Float32frombits(0x7f800001),
	math.Float32frombits(0xffd12345), 0, 1,
}

// specialSlice is random values with corner cases sprinkled in.
func specialSlice(rng *rand.Rand, n int) []float32 {
	s := randSlice(rng, n, 1)
	for i := range s {
		if rng.IntN(7) == 0 {
			s[i] = specialValues[rng.IntN(len(specialValues))]
		}
	}
	return s
}

func sameBits(t *testing.T, what string, got, want []uint16) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: word %d = %#04x, want %#04x", what, i, got[i], want[i])
		}
	}
}

// TestPackBF16 checks the assembly packers bit for bit against their Go
// versions, on edges of every kind and values that round in corner cases
// (the hardware conversion and internal/bf16 must agree exactly).
func TestPackBF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, trans := range []bool{false, true} {
		for _, rows := range []int{1, 15, 16, 17, 32} {
			for _, k := range []int{1, 2, 31, 32, 33, 64, 100} {
				for _, p0 := range []int{0, 32} {
					if p0 >= k {
						continue
					}
					name := fmt.Sprintf("trans=%v/rows=%d/k=%d/p0=%d", trans, rows, k, p0)
					m := rows + 3
					ld := k + 5
					if trans {
						ld = m + 5
					}
					src := specialSlice(rng, ld*max(m, k))
					g := &gemmArgs{transA: trans, m: m, k: k, alpha: 0.75, a: src, lda: ld}
					ks := ceilDiv(k-p0, bfStep)
					got, want := make([]uint16, ks*bfBlock), make([]uint16, ks*bfBlock)
					for i := range got {
						got[i] = 0xdead // every word must be written
					}
					packStripBF16(got, g, 2, rows, p0, ks)
					packStripGo(want, g, 2, rows, p0, ks)
					sameBits(t, "strip "+name, got, want)
				}
			}
		}
		for _, n := range []int{1, 16, 17, 32, 33, 70} {
			for _, k := range []int{1, 2, 3, 31, 32, 33, 64, 99, 130, 257} {
				name := fmt.Sprintf("trans=%v/n=%d/k=%d", trans, n, k)
				ld := n + 3
				if trans {
					ld = k + 3
				}
				src := specialSlice(rng, ld*max(n, k))
				g := &gemmArgs{transB: trans, n: n, k: k, b: src, ldb: ld}
				ks, np := ceilDiv(k, bfStep), ceilDiv(n, bfCols)
				stride := ks * bfBlock
				want := make([]uint16, np*stride)
				for q := range np {
					packPanelGo(want[q*stride:(q+1)*stride], g, q*bfCols, ks)
				}
				// all panels at once, and the panels from the second on
				for q0 := range min(np, 2) {
					got := make([]uint16, (np-q0)*stride)
					for i := range got {
						got[i] = 0xdead
					}
					packPanelsBF16(got, stride, g, q0, np, ks)
					sameBits(t, fmt.Sprintf("panels %s/from=%d", name, q0), got, want[q0*stride:])
				}
			}
		}
	}
}

// TestBF16StripKernels checks each strip kernel (and so the encodings of
// its instructions) exactly against stripGo on small integers, whose
// products and sums are exact in float32 in any order.
func TestBF16StripKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	small := func(n int) []uint16 {
		s := make([]uint16, n)
		for i := range s {
			s[i] = bf16.FromFloat32(float32(rng.IntN(9) - 4))
		}
		return s
	}
	for _, kern := range availableBF16Kernels() {
		for _, ks := range []int{1, 2, 4, 5, 9} {
			for _, panels := range []int{1, 3} {
				for _, acc := range []bool{false, true} {
					pstride := ks*bfBlock + 64
					a, b := small(ks*bfBlock), small((panels-1)*pstride+ks*bfBlock)
					ldc := panels*bfCols + 7
					c0 := make([]float32, bfRows*ldc)
					for i := range c0 {
						c0[i] = float32(rng.IntN(100))
					}
					got, want := append([]float32(nil), c0...), append([]float32(nil), c0...)
					kern.strip(ks, a, b, panels, pstride, got, ldc, acc)
					stripGo(ks, a, b, panels, pstride, want, ldc, acc)
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s ks=%d panels=%d acc=%v: c[%d] = %v, want %v", kern.name, ks, panels, acc, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestRoundBF16Slice checks the vector rounding of the emulation against
// internal/bf16, on every length up to 40 (the vector body and the tail).
func TestRoundBF16Slice(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for n := range 41 {
		x := specialSlice(rng, n)
		want := make([]float32, n)
		for i, v := range x {
			want[i] = bf16.Round(v)
		}
		roundBF16Slice(x)
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: x[%d] = %#08x, want %#08x", n, i, math.Float32bits(x[i]), math.Float32bits(want[i]))
			}
		}
	}
}

func TestGemmBF16Public(t *testing.T) {
	// 1 + 2^-9 rounds to 1 in bfloat16: the product sees 1.
	x := []float32{1 + 1.0/512, 2}
	w := []float32{3, 1}
	y := []float32{float32(math.NaN())}
	GemmBF16(false, true, 1, 1, 2, 1, x, 2, w, 2, 0, y, 1)
	if y[0] != 5 {
		t.Fatalf("y = %v, want 5 (= 1·3 + 2·1 after rounding)", y[0])
	}
	GemmBF16(false, true, 1, 1, 2, 0, x, 2, w, 2, 0.5, y, 1)
	if y[0] != 2.5 {
		t.Fatalf("alpha 0: y = %v, want 2.5", y[0])
	}
	for _, s := range []string{"fp32", "bf16"} {
		p, err := ParsePrecision(s)
		if err != nil || p.String() != s {
			t.Fatalf("ParsePrecision(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParsePrecision("fp16"); err == nil {
		t.Fatal("ParsePrecision(fp16): no error")
	}
	t.Logf("GemmBF16 runs on %s", KernelName(BF16))
}

func TestGemmBF16Allocs(t *testing.T) {
	defer SetThreads(0)
	for _, threads := range []int{1, 2} {
		SetThreads(threads)
		n := 256
		a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		GemmBF16(false, true, n, n, n, 1, a, n, b, n, 0, c, n)
		GemmBF16(true, false, n, n, n, 1, a, n, b, n, 1, c, n)
		allocs := testing.AllocsPerRun(5, func() {
			GemmBF16(false, true, n, n, n, 1, a, n, b, n, 0, c, n)
			GemmBF16(true, false, n, n, n, 1, a, n, b, n, 1, c, n)
		})
		if allocs != 0 {
			t.Errorf("threads=%d: %v allocations per call", threads, allocs)
		}
	}
}
