package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowPrimitives compares the dispatched row primitives (AVX-512 where
// the CPU has it) with their Go versions, and Expf with math.Exp, over
// lengths around the 16-lane blocks, with guard values after each slice.
func TestRowPrimitives(t *testing.T) {
	defer setVecLevel(maxVecLevel())
	for level := maxVecLevel(); level >= 0; level-- {
		setVecLevel(level)
		t.Run(fmt.Sprintf("level%d", level), testRowPrimitives)
	}
}

func testRowPrimitives(t *testing.T) {
	const guard = 5
	rel := func(got, want float32) float64 {
		return math.Abs(float64(got-want)) / (math.Abs(float64(want)) + 1e-30)
	}
	for _, n := range []int{0, 1, 3, 15, 16, 17, 31, 32, 33, 100, 1000} {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(n), 21))
			mk := func(std float64) []float32 {
				s := randSlice(rng, n+guard, std)
				for i := n; i < len(s); i++ {
					s[i] = sentinel
				}
				return s
			}
			checkGuard := func(name string, s []float32) {
				for i := n; i < len(s); i++ {
					if s[i] != sentinel {
						t.Fatalf("%s: guard %d written", name, i-n)
					}
				}
			}
			x := mk(20)
			if got, want := vmax(x[:n]), vmaxGo(x[:n]); got != want {
				t.Fatalf("vmax = %v, want %v", got, want)
			}
			sub := vmaxGo(x[:n])
			if n == 0 {
				sub = 0
			}
			d1, d2 := mk(1), mk(1)
			s1 := expSum(d1[:n], x[:n], sub, 0.5)
			s2 := expSumGo(d2[:n], x[:n], sub, 0.5)
			if rel(s1, s2) > 1e-5 {
				t.Fatalf("expSum = %v, Go %v", s1, s2)
			}
			if s3 := sumExp(x[:n], sub); rel(s3, s2) > 1e-5 {
				t.Fatalf("sumExp = %v, Go %v", s3, s2)
			}
			for i := 0; i < n; i++ {
				want := 0.5 * math.Exp(float64(x[i]-sub))
				if math.Abs(float64(d1[i])-want) > 4e-7*want+1e-37 || rel(d1[i], d2[i]) > 1e-6 && d2[i] > 1e-30 {
					t.Fatalf("expSum dst[%d] = %v, Go %v, exact %v", i, d1[i], d2[i], want)
				}
			}
			checkGuard("expSum", d1)

			p1, dp1 := mk(3), mk(1)
			p2, dp2 := append([]float32(nil), p1...), append([]float32(nil), dp1...)
			expGrad(p1[:n], dp1[:n], 0.3, -0.2)
			expGradGo(p2[:n], dp2[:n], 0.3, -0.2)
			for i := 0; i < n; i++ {
				if rel(p1[i], p2[i]) > 1e-6 || math.Abs(float64(dp1[i]-dp2[i])) > 1e-6*(1+math.Abs(float64(dp2[i]))) {
					t.Fatalf("expGrad [%d] = %v %v, Go %v %v", i, p1[i], dp1[i], p2[i], dp2[i])
				}
			}
			checkGuard("expGrad p", p1)
			checkGuard("expGrad dp", dp1)

			a, b, dd := mk(4), mk(1), mk(1)
			o1, o2 := mk(1), mk(1)
			swigluRow(o1[:n], a[:n], b[:n])
			swigluRowGo(o2[:n], a[:n], b[:n])
			ga1, gb1, ga2, gb2 := mk(1), mk(1), mk(1), mk(1)
			swigluGradRow(ga1[:n], gb1[:n], dd[:n], a[:n], b[:n])
			swigluGradRowGo(ga2[:n], gb2[:n], dd[:n], a[:n], b[:n])
			for i := 0; i < n; i++ {
				for _, pr := range [][2]float32{{o1[i], o2[i]}, {ga1[i], ga2[i]}, {gb1[i], gb2[i]}} {
					if math.Abs(float64(pr[0]-pr[1])) > 1e-6*(1+math.Abs(float64(pr[1]))) {
						t.Fatalf("swiglu [%d]: %v, Go %v", i, pr[0], pr[1])
					}
				}
			}
			for _, s := range [][]float32{o1, ga1, gb1} {
				checkGuard("swiglu", s)
			}
		})
	}
}

func TestExpSpecialValues(t *testing.T) {
	defer setVecLevel(maxVecLevel())
	for level := maxVecLevel(); level >= 0; level-- {
		setVecLevel(level)
		t.Run(fmt.Sprintf("level%d", level), testExpSpecialValues)
	}
}

func testExpSpecialValues(t *testing.T) {
	inf := float32(math.Inf(1))
	in := []float32{0, 1, -1, 88, 89, -87, -88, -104, -1000, inf, -inf, 1e-8, 2, 3, 4, 5}
	got := make([]float32, len(in))
	expSum(got, in, 0, 1)
	for i, x := range in {
		want := float32(math.Exp(float64(x)))
		g := got[i]
		ok := g == want || (!math.IsInf(float64(want), 0) && math.Abs(float64(g-want)) <= 4e-7*float64(want)) || (want < 1e-37 && g < 1e-37)
		if !ok {
			t.Errorf("exp(%v) = %v, want %v", x, g, want)
		}
	}
	nan := float32(math.NaN())
	nans := make([]float32, 16)
	for i := range nans {
		nans[i] = nan
	}
	expSum(got[:16], nans, 0, 1)
	if !math.IsNaN(float64(got[0])) {
		t.Errorf("exp(NaN) = %v", got[0])
	}
}

// BenchmarkExpSum times one softmax-style pass over a 10000-value row at
// each vector level.
func BenchmarkExpSum(b *testing.B) {
	defer setVecLevel(maxVecLevel())
	x := randSlice(rand.New(rand.NewPCG(1, 1)), 10000, 3)
	dst := make([]float32, len(x))
	for level := maxVecLevel(); level >= 0; level-- {
		b.Run(fmt.Sprintf("level%d", level), func(b *testing.B) {
			setVecLevel(level)
			for b.Loop() {
				expSum(dst, x, 1, 0.5)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x)), "ns/value")
		})
	}
}
