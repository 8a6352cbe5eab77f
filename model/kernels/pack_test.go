package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// forPackModes runs test at every packer level this CPU supports.
func forPackModes(t *testing.T, test func(t *testing.T)) {
	defer setPackMode(maxPackMode())
	for mode := maxPackMode(); mode >= 0; mode-- {
		setPackMode(mode)
		t.Run(fmt.Sprintf("mode%d", mode), test)
	}
}

func TestPackAcross(t *testing.T) { forPackModes(t, testPackAcross) }

func testPackAcross(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, w := range []int{4, 6, 14, 16, 32} {
		for _, rows := range []int{0, 1, 5, w - 1, w} {
			if rows > w {
				continue
			}
			for _, kc := range []int{1, 3, 8, 13, 64} {
				t.Run(fmt.Sprintf("w%d/rows%d/kc%d", w, rows, kc), func(t *testing.T) {
					ld := w + 3
					src := make([]float32, kc*ld)
					for i := range src {
						src[i] = rng.Float32()
					}
					got := make([]float32, kc*w+5)
					for i := range got {
						got[i] = sentinel
					}
					packAcross(got, w, src, ld, rows, kc, 0.5)
					for p := 0; p < kc; p++ {
						for r := 0; r < w; r++ {
							want := float32(0)
							if r < rows {
								want = 0.5 * src[p*ld+r]
							}
							if g := got[p*w+r]; g != want {
								t.Fatalf("dst[%d·%d+%d] = %v, want %v", p, w, r, g, want)
							}
						}
					}
					for i := kc * w; i < len(got); i++ {
						if got[i] != sentinel {
							t.Fatalf("wrote past the panel at %d", i)
						}
					}
					ref := make([]float32, kc*w)
					packAcrossGo(ref, w, src, ld, rows, kc, 0.5)
					for i := range ref {
						if ref[i] != got[i] {
							t.Fatalf("packAcrossGo differs at %d: %v vs %v", i, ref[i], got[i])
						}
					}
				})
			}
		}
	}
}

func TestPackAlong(t *testing.T) { forPackModes(t, testPackAlong) }

func testPackAlong(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, w := range []int{4, 6, 14, 16, 32} {
		for _, rows := range []int{0, 1, 5, w - 1, w} {
			for _, kc := range []int{1, 3, 8, 13, 16, 37, 64, 384} {
				if rows > w {
					continue
				}
				t.Run(fmt.Sprintf("w%d/rows%d/kc%d", w, rows, kc), func(t *testing.T) {
					ld := kc + 3
					// Extra rows after the panel let the 16-row transposes run.
					src := make([]float32, max(1, (rows+3)*ld))
					for i := range src {
						src[i] = rng.Float32()
					}
					got := make([]float32, kc*w+5)
					for i := range got {
						got[i] = sentinel
					}
					packAlong(got, w, src, ld, rows, kc, 0.5)
					for p := 0; p < kc; p++ {
						for r := 0; r < w; r++ {
							want := float32(0)
							if r < rows {
								want = 0.5 * src[r*ld+p]
							}
							if g := got[p*w+r]; g != want {
								t.Fatalf("dst[%d·%d+%d] = %v, want %v", p, w, r, g, want)
							}
						}
					}
					for i := kc * w; i < len(got); i++ {
						if got[i] != sentinel {
							t.Fatalf("wrote past the panel at %d", i)
						}
					}
					// The Go loop agrees.
					ref := make([]float32, kc*w)
					packAlongGo(ref, w, src, ld, rows, kc, 0.5)
					for i := range ref {
						if ref[i] != got[i] {
							t.Fatalf("packAlongGo differs at %d: %v vs %v", i, ref[i], got[i])
						}
					}
				})
			}
		}
	}
}
