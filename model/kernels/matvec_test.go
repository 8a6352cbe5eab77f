package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMatVecRows compares MatVecRows (row strides ldw ≥ C), at every vector
// level (the assembly kernel and the Go loop), against a float64
// reference, with guard elements around out that must stay untouched.
// Tolerance: 1e-6 · Σ_p |x_p·w_op| per output (float32 rounding of a sum
// of C products, C ≤ 600).
func TestMatVecRows(t *testing.T) {
	defer setVecLevel(maxVecLevel())
	rng := rand.New(rand.NewPCG(1, 1))
	for level := maxVecLevel(); level >= 0; level-- {
		setVecLevel(level)
		for _, C := range []int{1, 7, 15, 16, 17, 33, 512, 600} {
			for _, OC := range []int{1, 3, 4, 5, 9, 64} {
				for _, tc := range []struct {
					add bool
					pad int
				}{{false, 0}, {true, 0}, {false, 5}, {true, 16}} {
					add, ldw := tc.add, C+tc.pad
					name := fmt.Sprintf("level=%d C=%d ldw=%d OC=%d add=%v", level, C, ldw, OC, add)
					x, w := randSlice(rng, C, 1), randSlice(rng, (OC-1)*ldw+C, 1)
					const guard = 4
					buf := randSlice(rng, OC+2*guard, 1)
					before := slices.Clone(buf)
					out := buf[guard : guard+OC]
					MatVecRows(out, x, w, C, ldw, OC, add)
					for i := range guard {
						if buf[i] != before[i] || buf[guard+OC+i] != before[guard+OC+i] {
							t.Fatalf("%s: wrote outside out", name)
						}
					}
					for o := range OC {
						var want, mag float64
						for p := range C {
							v := float64(x[p]) * float64(w[o*ldw+p])
							want += v
							mag += math.Abs(v)
						}
						if add {
							want += float64(before[guard+o])
							mag += math.Abs(float64(before[guard+o]))
						}
						if d := math.Abs(float64(out[o]) - want); d > 1e-6*mag+1e-30 {
							t.Errorf("%s: out[%d] = %v, want %v (diff %.3g, bound %.3g)", name, o, out[o], want, d, 1e-6*mag)
						}
					}
				}
			}
		}
	}
}

// TestMatVecThreads: split over threads, MatVec gives the bits of the
// one-thread MatVecRows, for row counts that do not divide evenly.
func TestMatVecThreads(t *testing.T) {
	defer SetThreads(0)
	rng := rand.New(rand.NewPCG(2, 1))
	for _, threads := range []int{1, 2, 3, 7} {
		SetThreads(threads)
		for _, shape := range [][2]int{{512, 1000}, {256, 1030}, {100, 2000}, {16, 4097}} {
			C, OC := shape[0], shape[1]
			x, w := randSlice(rng, C, 1), randSlice(rng, OC*C, 1)
			for _, add := range []bool{false, true} {
				init := randSlice(rng, OC, 1)
				want := slices.Clone(init)
				MatVecRows(want, x, w, C, C, OC, add)
				got := slices.Clone(init)
				MatVec(got, x, w, C, OC, add)
				if !slices.Equal(got, want) {
					t.Errorf("threads %d C %d OC %d add %v: parallel result differs", threads, C, OC, add)
				}
			}
		}
	}
}

// TestMatVecAllocs: a parallel MatVec call allocates nothing once warm.
func TestMatVecAllocs(t *testing.T) {
	defer SetThreads(0)
	SetThreads(2)
	const C, OC = 256, 1024
	rng := rand.New(rand.NewPCG(3, 1))
	x, w, out := randSlice(rng, C, 1), randSlice(rng, OC*C, 1), make([]float32, OC)
	MatVec(out, x, w, C, OC, false)
	if a := testing.AllocsPerRun(20, func() { MatVec(out, x, w, C, OC, false) }); a != 0 {
		t.Errorf("MatVec allocates %v times per call", a)
	}
}
