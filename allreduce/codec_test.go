package allreduce

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/ringtrain/ringtrain/proto"
)

func f32bytes(x []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(x))), len(x)*4)
}

// split cuts b into buffers of random small sizes, as HTTP/2 frames may.
func split(rng *rand.Rand, b []byte, maxPiece int) mem.BufferSlice {
	var out mem.BufferSlice
	for len(b) > 0 {
		k := min(len(b), 1+rng.IntN(maxPiece))
		out = append(out, mem.SliceBuffer(append([]byte(nil), b[:k]...)))
		b = b[k:]
	}
	return out
}

// collectSink records what a Link hands it.
type collectSink struct {
	h    Header
	n    int
	data []byte
}

func (c *collectSink) Header(h Header, n int) error { c.h, c.n = h, n; return nil }
func (c *collectSink) Data(p []byte)                { c.data = append(c.data, p...) }

func TestCodecWireFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 3, 300, 5000} {
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(rng.NormFloat64())
		}
		h := Header{Generation: 1 << 40, OpSeq: 12345, Bucket: -1, Step: 3, Offset: 77, Count: uint32(n), Total: 99999,
			DType: pb.DType_DTYPE_FLOAT32, Op: pb.ReduceOp_REDUCE_OP_MEAN, SenderRank: 4}
		released := false
		f := &OutFrame{Header: h, Data: f32bytes(vals), Release: func() { released = true }}
		out := &wireOut{header: h, data: sendBuffer(f)}
		bs, err := rawCodec{}.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		wire := bs.Materialize()
		bs.Free()
		if !released {
			t.Fatalf("n=%d: the tensor buffer was not released after grpc freed it", n)
		}

		// Any protobuf decoder reads it as a RingFrame.
		var fr pb.RingFrame
		if err := proto.Unmarshal(wire, &fr); err != nil {
			t.Fatalf("n=%d: proto.Unmarshal: %v", n, err)
		}
		if got := headerFromProto(fr.GetHeader()); got != h {
			t.Fatalf("n=%d: header %+v, want %+v", n, got, h)
		}
		if !bytes.Equal(fr.GetData(), f32bytes(vals)) {
			t.Fatalf("n=%d: data differs", n)
		}
		// The data starts 8-byte aligned after gRPC's 5-byte prefix.
		if at := bytes.Index(wire, f32bytes(vals)); (5+at)%8 != 0 {
			t.Fatalf("n=%d: data at offset %d of the message, 5+%d not a multiple of 8", n, at, at)
		}

		// Our decoder reads our encoding and the standard one, however cut.
		std, err := proto.Marshal(&fr)
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range [][]byte{wire, std} {
			for _, maxPiece := range []int{1, 3, 7, 1 << 20} {
				var cs collectSink
				w := wireIn{sink: &cs}
				if err := (rawCodec{}).Unmarshal(split(rng, enc, maxPiece), &w); err != nil {
					t.Fatalf("n=%d pieces ≤ %d: %v", n, maxPiece, err)
				}
				if cs.h != h || cs.n != 4*n || !bytes.Equal(cs.data, f32bytes(vals)) {
					t.Fatalf("n=%d pieces ≤ %d: decoded %+v (%d bytes), want %+v (%d bytes)", n, maxPiece, cs.h, len(cs.data), h, 4*n)
				}
			}
		}
	}
}

func TestCodecHello(t *testing.T) {
	hello := &pb.RingHello{Generation: 9, SenderRank: 2, WorldSize: 5}
	bs, err := rawCodec{}.Marshal(&wireOut{hello: hello})
	if err != nil {
		t.Fatal(err)
	}
	var w wireIn
	if err := (rawCodec{}).Unmarshal(bs, &w); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(w.hello, hello) {
		t.Fatalf("hello %v, want %v", w.hello, hello)
	}
}

func TestCodecTruncated(t *testing.T) {
	vals := make([]float32, 100)
	h := Header{Count: 100, DType: pb.DType_DTYPE_FLOAT32}
	bs, _ := rawCodec{}.Marshal(&wireOut{header: h, data: sendBuffer(&OutFrame{Data: f32bytes(vals), Release: func() {}})})
	wire := bs.Materialize()
	for _, cut := range []int{1, 10, len(wire) - 1} {
		var cs collectSink
		w := wireIn{sink: &cs}
		if err := (rawCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire[:cut])}, &w); err == nil && cs.n == 400 {
			t.Fatalf("cut at %d of %d: no error", cut, len(wire))
		}
	}
}

// TestChunkSinkPieces feeds a chunk in pieces that split elements and are
// misaligned, and checks the result against a plain loop.
func TestChunkSinkPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 1000
	for _, mode := range []sinkMode{modeAdd, modeAddScale, modeCopy} {
		for _, f64 := range []bool{false, true} {
			for _, maxPiece := range []int{1, 5, 13, 4096} {
				src32, dst32 := make([]float32, n), make([]float32, n)
				src64, dst64 := make([]float64, n), make([]float64, n)
				for i := range n {
					src32[i], dst32[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
					src64[i], dst64[i] = rng.NormFloat64(), rng.NormFloat64()
				}
				want32, want64 := append([]float32(nil), dst32...), append([]float64(nil), dst64...)
				for i := range n {
					switch mode {
					case modeAdd:
						want32[i], want64[i] = src32[i]+want32[i], src64[i]+want64[i]
					case modeAddScale:
						want32[i], want64[i] = (src32[i]+want32[i])*(1/float32(3)), (src64[i]+want64[i])*(1/float64(3))
					case modeCopy:
						want32[i], want64[i] = src32[i], src64[i]
					}
				}
				s := &chunkSink{mode: mode, scale32: 1 / float32(3), scale64: 1 / float64(3)}
				var raw []byte
				if f64 {
					s.elemSize, s.f64 = 8, dst64
					raw = unsafe.Slice((*byte)(unsafe.Pointer(&src64[0])), n*8)
				} else {
					s.elemSize, s.f32 = 4, dst32
					raw = f32bytes(src32)
				}
				s.want = Header{Count: n}
				// Shift by one byte so that most pieces are misaligned.
				shifted := append([]byte{0}, raw...)[1:]
				for _, b := range split(rng, shifted, maxPiece) {
					s.Data(b.ReadOnlyData())
				}
				if err := s.done(); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if f64 && math.Float64bits(dst64[i]) != math.Float64bits(want64[i]) ||
						!f64 && math.Float32bits(dst32[i]) != math.Float32bits(want32[i]) {
						t.Fatalf("mode %d f64=%v pieces ≤ %d: element %d differs", mode, f64, maxPiece, i)
					}
				}
			}
		}
	}
}

func TestPlanBuckets(t *testing.T) {
	cases := []struct {
		sizes []int
		bytes int
		want  []Bucket
	}{
		{[]int{10}, 4, []Bucket{{0, 0, 10, 0, 1}}},
		{[]int{100, 100, 100}, 400, []Bucket{{0, 200, 100, 2, 3}, {1, 100, 100, 1, 2}, {2, 0, 100, 0, 1}}},
		{[]int{100, 50, 50, 100}, 600, []Bucket{{0, 150, 150, 2, 4}, {1, 0, 150, 0, 2}}},
		{[]int{5, 5, 5}, 1 << 20, []Bucket{{0, 0, 15, 0, 3}}},
		{nil, 100, nil},
	}
	for _, tc := range cases {
		got := PlanBuckets(tc.sizes, tc.bytes)
		if len(got) != len(tc.want) {
			t.Fatalf("PlanBuckets(%v, %d) = %v, want %v", tc.sizes, tc.bytes, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("PlanBuckets(%v, %d) = %v, want %v", tc.sizes, tc.bytes, got, tc.want)
			}
		}
	}
}
