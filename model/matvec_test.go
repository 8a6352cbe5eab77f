package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// TestMatvec compares matvecRows (row strides ldw ≥ C), with the assembly kernel and with the Go loop,
// against a float64 reference, with guard elements around out that must
// stay untouched. Tolerance: 1e-6 · Σ_p |x_p·w_op| per output (float32
// rounding of a sum of C products, C ≤ 600).
func TestMatvec(t *testing.T) {
	defer func(v bool) { haveMatvec4 = v }(haveMatvec4)
	rng := rand.New(rand.NewPCG(1, 1))
	kernels := []bool{false}
	if haveMatvec4 {
		kernels = append(kernels, true)
	}
	for _, asm := range kernels {
		haveMatvec4 = asm
		for _, C := range []int{1, 7, 15, 16, 17, 33, 512, 600} {
			for _, OC := range []int{1, 3, 4, 5, 9, 64} {
				for _, tc := range []struct {
					add bool
					pad int
				}{{false, 0}, {true, 0}, {false, 5}, {true, 16}} {
					add, ldw := tc.add, C+tc.pad
					name := fmt.Sprintf("asm=%v C=%d ldw=%d OC=%d add=%v", asm, C, ldw, OC, add)
					x, w := randomLogits(rng, C, 1), randomLogits(rng, (OC-1)*ldw+C, 1)
					const guard = 4
					buf := randomLogits(rng, OC+2*guard, 1)
					before := append([]float32(nil), buf...)
					out := buf[guard : guard+OC]
					matvecRows(out, x, w, C, ldw, OC, add)
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

// TestMatvecParallel: split over threads, matvec gives the bits of the
// one-thread matvecRows, for row counts that do not divide evenly.
func TestMatvecParallel(t *testing.T) {
	defer kernels.SetThreads(0)
	rng := rand.New(rand.NewPCG(2, 1))
	var jobs matvecJob
	for _, threads := range []int{1, 2, 3, 7} {
		kernels.SetThreads(threads)
		for _, shape := range [][2]int{{512, 1000}, {256, 1030}, {100, 2000}, {16, 4097}} {
			C, OC := shape[0], shape[1]
			x, w := randomLogits(rng, C, 1), randomLogits(rng, OC*C, 1)
			for _, add := range []bool{false, true} {
				init := randomLogits(rng, OC, 1)
				want := append([]float32(nil), init...)
				matvecRows(want, x, w, C, C, OC, add)
				got := append([]float32(nil), init...)
				matvec(&jobs, got, x, w, C, OC, add)
				if !slices.Equal(got, want) {
					t.Errorf("threads %d C %d OC %d add %v: parallel result differs", threads, C, OC, add)
				}
			}
		}
	}
}
