package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gemmNaive64 is Gemm in float64 with no blocking, to check gemmRef.
func gemmNaive64(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			s *= float64(alpha)
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
			}
			out[i*n+j] = s
		}
	}
	return out
}

// gemmBound is alpha·Σ|a||b| + |beta·c| per element (to float32 precision):
// the scale of the rounding error of any summation order.
func gemmBound(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	abs := func(s []float32) []float32 {
		r := make([]float32, len(s))
		for i, v := range s {
			r[i] = float32(math.Abs(float64(v)))
		}
		return r
	}
	cb := abs(c)
	gemmRef(transA, transB, m, n, k, float32(math.Abs(float64(alpha))), abs(a), lda, abs(b), ldb, float32(math.Abs(float64(beta))), cb, ldc)
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			out[i*n+j] = float64(cb[i*ldc+j])
		}
	}
	return out
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	pad            int // extra leading-dimension columns of a, b and c
	alpha, beta    float32
}

func (tc gemmCase) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s_m%d_n%d_k%d_pad%d_a%g_b%g", t(tc.transA), t(tc.transB), tc.m, tc.n, tc.k, tc.pad, tc.alpha, tc.beta)
}

// operands builds a, b, c for tc inside guarded buffers: each slice is a
// window of a larger array whose outside holds a sentinel.
type guarded struct {
	all      []float32
	lo, hi   int
	rows, ld int
}

const sentinel = float32(-12345.678)

func newGuarded(rng *rand.Rand, rows, cols, ld int) *guarded {
	const guard = 37
	size := 0
	if rows > 0 {
		size = (rows-1)*ld + cols
	}
	g := &guarded{all: make([]float32, size+2*guard), lo: guard, hi: guard + size, rows: rows, ld: ld}
	for i := range g.all {
		g.all[i] = sentinel
	}
	for r := 0; r < rows; r++ {
		for j := 0; j < cols; j++ {
			g.all[guard+r*ld+j] = rng.Float32()*2 - 1
		}
	}
	return g
}

func (g *guarded) s() []float32 { return g.all[g.lo:g.hi] }

// checkOutside reports any element outside rows × cols that is not the sentinel.
func (g *guarded) checkOutside(t *testing.T, name string, cols int) {
	t.Helper()
	for i, v := range g.all {
		in := false
		if off := i - g.lo; i >= g.lo && i < g.hi && off%g.ld < cols {
			in = true
		}
		if !in && v != sentinel {
			t.Fatalf("%s: element %d outside the matrix was written: %v", name, i-g.lo, v)
		}
	}
}

func gemmCases() []gemmCase {
	var cases []gemmCase
	shapes := [][3]int{
		{1, 1, 1}, {1, 17, 3}, {5, 1, 9}, {6, 16, 4}, {7, 17, 5}, {13, 31, 33},
		{14, 32, 256}, {15, 33, 257}, {29, 47, 300}, {64, 64, 64}, {100, 37, 513},
		{37, 100, 129}, {128, 200, 96}, {161, 129, 270}, {300, 70, 20}, {3, 500, 40},
	}
	for i, s := range shapes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				ab := [][2]float32{{1, 0}, {1, 1}, {0.5, -1.5}, {-2, 0.25}}[(i+boolInt(ta)+2*boolInt(tb))%4]
				cases = append(cases, gemmCase{ta, tb, s[0], s[1], s[2], (i * 3) % 5, ab[0], ab[1]})
			}
		}
	}
	// Larger than one cache block in every direction.
	cases = append(cases,
		gemmCase{false, true, 30, 4200, 300, 3, 1, 0},
		gemmCase{true, false, 330, 70, 520, 0, 1, 1},
		gemmCase{false, false, 200, 150, 600, 1, -1, 0.5},
		// m and n ≥ minGridSide: parallel calls cut C in both directions.
		gemmCase{false, true, 515, 530, 40, 2, 1, 0},
		gemmCase{true, false, 600, 520, 30, 0, 0.5, 1},
	)
	return cases
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runGemmCase runs tc through fn and compares it with want, checking guards.
func runGemmCase(t *testing.T, tc gemmCase, seed uint64, fn func(g *gemmArgs), want func(g *gemmArgs) ([]float64, []float64)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	ga := newGuarded(rng, ar, ac, ac+tc.pad)
	gb := newGuarded(rng, br, bc, bc+tc.pad)
	gc := newGuarded(rng, tc.m, tc.n, tc.n+tc.pad)
	aCopy := append([]float32(nil), ga.all...)
	bCopy := append([]float32(nil), gb.all...)
	g := &gemmArgs{transA: tc.transA, transB: tc.transB, m: tc.m, n: tc.n, k: tc.k, alpha: tc.alpha, a: ga.s(), lda: ga.ld, b: gb.s(), ldb: gb.ld, beta: tc.beta, c: gc.s(), ldc: gc.ld}
	exp, bound := want(g) // before fn: reads c
	fn(g)
	for i := range aCopy {
		if ga.all[i] != aCopy[i] || (i < len(bCopy) && gb.all[i] != bCopy[i]) {
			t.Fatalf("inputs modified at %d", i)
		}
	}
	gc.checkOutside(t, "c", tc.n)
	c := gc.s()
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			got := float64(c[i*gc.ld+j])
			e := exp[i*tc.n+j]
			tol := float64(tc.k+4) * 2.4e-7 * bound[i*tc.n+j]
			if math.Abs(got-e) > tol || math.IsNaN(got) {
				t.Fatalf("C[%d,%d] = %v, want %v (tol %.3g)", i, j, got, e, tol)
			}
		}
	}
}

func TestGemmRefMatchesFloat64(t *testing.T) {
	for i, tc := range gemmCases() {
		if tc.m*tc.n*tc.k > 5e6 {
			continue
		}
		t.Run(tc.String(), func(t *testing.T) {
			runGemmCase(t, tc, uint64(i), func(g *gemmArgs) {
				gemmRef(g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, g.c, g.ldc)
			}, func(g *gemmArgs) ([]float64, []float64) {
				return gemmNaive64(g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, g.c, g.ldc),
					gemmBound(g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, g.c, g.ldc)
			})
		})
	}
}

// TestGemmKernels runs every micro-kernel this build and CPU offer, on 1 to
// 3 threads, against gemmRef.
func TestGemmKernels(t *testing.T) {
	for _, kern := range availableKernels() {
		for _, threads := range []int{1, 2, 3} {
			for i, tc := range gemmCases() {
				if tc.m*tc.n*tc.k > 1.2e7 && (testing.Short() || threads != 2) {
					continue
				}
				t.Run(fmt.Sprintf("%s/t%d/%s", kern.name, threads, tc), func(t *testing.T) {
					runGemmCase(t, tc, uint64(i), func(g *gemmArgs) {
						gemmWith(kern, threads, g)
					}, func(g *gemmArgs) ([]float64, []float64) {
						c := append([]float32(nil), g.c...)
						gemmRef(g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, c, g.ldc)
						exp := make([]float64, g.m*g.n)
						for i := 0; i < g.m; i++ {
							for j := 0; j < g.n; j++ {
								exp[i*g.n+j] = float64(c[i*g.ldc+j])
							}
						}
						return exp, gemmBound(g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, g.c, g.ldc)
					})
				})
			}
		}
	}
}

func TestGemmPublic(t *testing.T) {
	// y(2,3) = x(2,2)·w(3,2)ᵀ
	x := []float32{1, 2, 3, 4}
	w := []float32{1, 0, 0, 1, 1, 1}
	y := []float32{math.Float32frombits(0x7fc00000), 9, 9, 9, 9, 9} // NaN must not survive beta 0
	Gemm(false, true, 2, 3, 2, 1, x, 2, w, 2, 0, y, 3)
	want := []float32{1, 2, 3, 3, 4, 7}
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("y = %v, want %v", y, want)
		}
	}
	// k = 0 and alpha = 0 scale C by beta.
	Gemm(false, false, 2, 3, 0, 1, nil, 1, nil, 3, 2, y, 3)
	Gemm(false, false, 2, 3, 2, 0, x, 2, w[:6], 3, 0.5, y, 3)
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("after scaling y = %v, want %v", y, want)
		}
	}
}

func TestGemmPanicsOnShortSlices(t *testing.T) {
	tests := []struct {
		name string
		call func()
	}{
		{"short a", func() {
			Gemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		}},
		{"short b transposed", func() {
			Gemm(false, true, 2, 3, 2, 1, make([]float32, 4), 2, make([]float32, 5), 2, 0, make([]float32, 6), 3)
		}},
		{"short c", func() {
			Gemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 4), 3)
		}},
		{"small ldc", func() {
			Gemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 4), 1)
		}},
		{"negative m", func() { Gemm(false, false, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tt.call()
		})
	}
}

func TestSetThreads(t *testing.T) {
	defer SetThreads(0)
	SetThreads(3)
	if Threads() != 3 {
		t.Fatalf("Threads() = %d after SetThreads(3)", Threads())
	}
	SetThreads(0)
	if Threads() < 1 {
		t.Fatalf("default Threads() = %d", Threads())
	}
}

func TestGemmAllocs(t *testing.T) {
	defer SetThreads(0)
	for _, n := range []int{16, 256} {
		for _, threads := range []int{1, 2} {
			SetThreads(threads)
			a := make([]float32, n*n)
			b := make([]float32, n*n)
			c := make([]float32, n*n)
			Gemm(false, true, n, n, n, 1, a, n, b, n, 0, c, n) // warm the free lists
			allocs := testing.AllocsPerRun(5, func() {
				Gemm(false, true, n, n, n, 1, a, n, b, n, 0, c, n)
				Gemm(true, false, n, n, n, 1, a, n, b, n, 1, c, n)
			})
			if allocs != 0 {
				t.Errorf("n=%d threads=%d: %v allocations per call", n, threads, allocs)
			}
		}
	}
}
