package allreduce

import (
	"testing"

	"google.golang.org/grpc/mem"

	pb "github.com/ringtrain/ringtrain/proto"
)

// FuzzCodecUnmarshal feeds arbitrary bytes, cut into two buffers, to the
// frame decoder with a chunk sink expecting 4 float32 in the middle of a
// larger buffer: it must never panic, never write outside the expected
// chunk, and accept only a frame that carries exactly that chunk.
func FuzzCodecUnmarshal(f *testing.F) {
	want := Header{Generation: 2, OpSeq: 5, Step: 1, Offset: 4, Count: 4, Total: 12, DType: pb.DType_DTYPE_FLOAT32, Op: pb.ReduceOp_REDUCE_OP_SUM, SenderRank: 1}
	vals := []float32{1, 2, 3, 4}
	good, err := rawCodec{}.Marshal(&wireOut{header: want, data: sendBuffer(&OutFrame{Data: f32bytes(vals), Release: func() {}})})
	if err != nil {
		f.Fatal(err)
	}
	wire := good.Materialize()
	f.Add(wire, 7)
	f.Add(append(append([]byte(nil), wire...), wire[len(wire)-18:]...), 3) // a second data field
	hello, _ := rawCodec{}.Marshal(&wireOut{hello: &pb.RingHello{Generation: 2, SenderRank: 1, WorldSize: 3}})
	f.Add(hello.Materialize(), 1)
	f.Add([]byte{0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 2) // data field claiming 4 GiB
	f.Fuzz(func(t *testing.T, frame []byte, cut int) {
		buf := make([]float32, 12) // the chunk is buf[4:8]
		for i := range buf {
			buf[i] = float32(i)
		}
		s := &chunkSink{want: want, elemSize: 4, mode: modeAdd, f32: buf[4:8]}
		w := &wireIn{sink: s}
		cut = min(max(cut, 0), len(frame))
		data := mem.BufferSlice{mem.SliceBuffer(frame[:cut]), mem.SliceBuffer(frame[cut:])}
		err := w.unmarshal(data)
		for i, v := range buf {
			if (i < 4 || i >= 8) && v != float32(i) {
				t.Fatalf("element %d outside the chunk changed to %v", i, v)
			}
		}
		if err == nil && s.pos+s.nc > 4*int(want.Count) {
			t.Fatalf("accepted %d data bytes for a chunk of %d", s.pos+s.nc, 4*want.Count)
		}
	})
}
