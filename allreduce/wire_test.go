package allreduce

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/ringtrain/ringtrain/internal/bf16"
)

// reference16 is what the ring must produce with WireBF16, bit for bit:
// segment c starts at rank c, each hop adds its own float32 values to the
// bfloat16 partial sum it receives, and rank c−1 scales (for a mean) and
// rounds the total.
func reference16(xs [][]float32, o Op) []float32 {
	w, n := len(xs), len(xs[0])
	if w == 1 {
		return append([]float32(nil), xs[0]...)
	}
	s := schedule{n: n, w: w}
	out := make([]float32, n)
	for c := range w {
		off, cnt := s.segment(c)
		for i := off; i < off+cnt; i++ {
			acc := xs[c][i]
			for k := 1; k < w; k++ {
				acc = bf16.Round(acc) + xs[(c+k)%w][i]
			}
			if o == Mean {
				acc *= 1 / float32(w)
			}
			out[i] = bf16.Round(acc)
		}
	}
	return out
}

// TestWireBF16 checks that every transport gives every rank the bits of
// reference16, and states the fidelity: the largest error relative to the
// float64 mean, in units of Σ|x|/W (the scale of a sum's rounding), stays
// below W·2⁻⁸ (W roundings of at most 2⁻⁸ relative each).
func TestWireBF16(t *testing.T) {
	for _, kind := range transportKinds {
		for _, w := range []int{1, 2, 3, 5} {
			t.Run(fmt.Sprintf("%s/W=%d", kind.name, w), func(t *testing.T) {
				c := kind.build(t, Config{Generation: 2, WorldSize: w, ChunkBytes: 64, Wire: WireBF16}, nil)
				ctx := testCtx(t)
				var worst float64
				for i, n := range []int{0, 1, w + 1, 33, 1031} {
					for _, o := range []Op{Mean, Sum} {
						xs := inputs(uint64(10*w+i), w, n)
						want := reference16(xs, o)
						bufs := clone(xs)
						for rank, err := range c.each(func(rank int, r *Ring) error { return r.AllReduceOp(ctx, bufs[rank], o) }) {
							if err != nil {
								t.Fatalf("n=%d op=%d rank %d: %v", n, o, rank, err)
							}
							sameBits(t, fmt.Sprintf("n=%d op=%d rank %d", n, o, rank), bufs[rank], want)
						}
						for j := range n {
							var s, abs float64
							for r := range w {
								s += float64(xs[r][j])
								abs += math.Abs(float64(xs[r][j]))
							}
							if o == Mean {
								s, abs = s/float64(w), abs/float64(w)
							}
							worst = max(worst, math.Abs(float64(want[j])-s)/abs)
						}
					}
				}
				if worst > float64(w)/256 {
					t.Fatalf("largest error %.3g of Σ|x|, above W·2⁻⁸", worst)
				}
				t.Logf("largest error %.3g of Σ|x| (W·2⁻⁸ = %.3g)", worst, float64(w)/256)
			})
		}
	}
	// Float64 operations are exact whatever the wire.
	c := transportKinds[1].build(t, Config{Generation: 2, WorldSize: 3, Wire: WireBF16}, nil)
	bufs := [][]float64{{1e-12, 1}, {2e-12, 2}, {3e-12, 3}}
	for rank, err := range c.each(func(rank int, r *Ring) error { return r.AllReduceFloat64(testCtx(t), bufs[rank], Sum) }) {
		if err != nil {
			t.Fatal(err)
		}
		if bufs[rank][0] != 6e-12 || bufs[rank][1] != 6 {
			t.Fatalf("rank %d: %v", rank, bufs[rank])
		}
	}
}

// TestWireMismatch: a rank on the bf16 wire and one on fp32 disagree on
// the element type, which fails the operation on both instead of mixing
// formats.
func TestWireMismatch(t *testing.T) {
	wires := []Wire{WireBF16, WireFP32}
	net := NewInmemNetwork()
	c := &cluster{rings: make([]*Ring, 2)}
	errs := c.each(func(rank int, _ *Ring) (err error) {
		c.rings[rank], err = New(testCtx(t), net, Config{Generation: 1, Rank: rank, WorldSize: 2, Wire: wires[rank]})
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	defer c.rings[0].Close()
	defer c.rings[1].Close()
	bufs := [][]float32{make([]float32, 100), make([]float32, 100)}
	errs = c.each(func(rank int, r *Ring) error { return r.AllReduce(testCtx(t), bufs[rank]) })
	mismatch := false
	for rank, err := range errs {
		if err == nil {
			t.Fatalf("rank %d: no error", rank)
		}
		mismatch = mismatch || errors.Is(err, ErrMismatch)
	}
	if !mismatch { // the other rank may see its neighbour abort first
		t.Fatalf("no rank reports ErrMismatch: %v", errs)
	}
}

func TestParseWire(t *testing.T) {
	for _, w := range []Wire{WireFP32, WireBF16} {
		if got, err := ParseWire(w.String()); err != nil || got != w {
			t.Fatalf("ParseWire(%q) = %v, %v", w, got, err)
		}
	}
	if _, err := ParseWire("int8"); err == nil {
		t.Fatal("ParseWire(int8): no error")
	}
	if err := (Config{WorldSize: 1, Wire: 7}).Validate(); err == nil {
		t.Fatal("Validate with Wire 7: no error")
	}
}

// TestRawPath checks which transports carry chunks on the raw connection:
// servers from NewGRPCServer (plaintext or TLS) do, plain ones do not.
func TestRawPath(t *testing.T) {
	for _, kind := range transportKinds[1:] {
		c := kind.build(t, Config{Generation: 1, WorldSize: 2}, nil)
		for rank, r := range c.rings {
			l := r.link.(*grpcLink)
			if raw := l.rawOut != nil && l.in.wantRaw; raw != (kind.name != "grpc-frames") {
				t.Errorf("%s rank %d: raw path %v", kind.name, rank, raw)
			}
		}
	}
}
