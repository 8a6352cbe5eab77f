package allreduce

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAddKernels runs the selected kernels against the Go loops, bit for
// bit, on every length up to 100 with guard elements around the output.
func TestAddKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const guard = 8
	for n := range 100 {
		for _, scale := range []float32{0, 1 / float32(3)} {
			src := make([]float32, n)
			base := make([]float32, n+2*guard)
			for i := range src {
				src[i] = float32(rng.NormFloat64())
			}
			for i := range base {
				base[i] = float32(rng.NormFloat64())
			}
			got, want := append([]float32(nil), base...), append([]float32(nil), base...)
			if scale == 0 {
				add32(got[guard:guard+n], src)
				add32Go(want[guard:guard+n], src)
			} else {
				addScale32(got[guard:guard+n], src, scale)
				addScale32Go(want[guard:guard+n], src, scale)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d scale=%v: element %d (guard %d) = %v, want %v", n, scale, i-guard, guard, got[i], want[i])
				}
			}
		}
	}
}

func BenchmarkAdd32(b *testing.B) {
	dst, src := make([]float32, 1<<18), make([]float32, 1<<18) // 1 MiB each
	b.SetBytes(4 << 18)
	for range b.N {
		addScale32(dst, src, 0.5)
	}
}

// bf16Inputs are random values with bfloat16 rounding corner cases (ties,
// subnormals, NaNs, overflow) sprinkled in.
func bf16Inputs(rng *rand.Rand, n int) []float32 {
	special := []uint32{0x3f808000, 0x3f818000, 0x00012345, 0x80000001, 0x7f7fffff, 0x7f800001, 0xffd12345, 0x80000000}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		if rng.IntN(6) == 0 {
			x[i] = math.Float32frombits(special[rng.IntN(len(special))])
		}
	}
	return x
}

// TestBF16Kernels runs the WireBF16 kernels against their Go loops, bit
// for bit, on every length up to 100 with guard elements around the output.
func TestBF16Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const guard = 8
	same32 := func(what string, n int, got, want []float32) {
		t.Helper()
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s n=%d: element %d (guard %d) = %#x, want %#x", what, n, i-guard, guard, math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
	}
	for n := range 100 {
		src := bf16Inputs(rng, n)
		enc, encWant := make([]uint16, n+2*guard), make([]uint16, n+2*guard)
		encode16(enc[guard:guard+n], src)
		encode16Go(encWant[guard:guard+n], src)
		for i := range enc {
			if enc[i] != encWant[i] {
				t.Fatalf("encode16 n=%d: element %d = %#x, want %#x", n, i-guard, enc[i], encWant[i])
			}
		}
		half := enc[guard : guard+n]
		base := bf16Inputs(rng, n+2*guard)
		got, want := append([]float32(nil), base...), append([]float32(nil), base...)
		decode16(got[guard:guard+n], half)
		decode16Go(want[guard:guard+n], half)
		same32("decode16", n, got, want)
		got, want = append([]float32(nil), base...), append([]float32(nil), base...)
		add16(got[guard:guard+n], half)
		add16Go(want[guard:guard+n], half)
		same32("add16", n, got, want)
		for _, scale := range []float32{1, 1 / float32(3)} {
			got, want = append([]float32(nil), base...), append([]float32(nil), base...)
			addRound16(got[guard:guard+n], half, scale)
			addRound16Go(want[guard:guard+n], half, scale)
			same32("addRound16", n, got, want)
		}
	}
}
