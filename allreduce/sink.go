package allreduce

import (
	"fmt"
	"unsafe"
)

// chunkSink receives one expected chunk straight into the operation's
// buffer: it checks the header against the schedule, then adds (reduce-
// scatter), adds and scales (last reduce-scatter step of a mean) or copies
// (all-gather) the data as it arrives, piece by piece.
type chunkSink struct {
	want     Header
	elemSize int  // on the wire
	wire16   bool // float32 data arrives as bfloat16
	mode     sinkMode
	f32      []float32 // destination chunk (float32 operations)
	f64      []float64 // destination chunk (float64 operations)
	scale32  float32
	scale64  float64

	pos   int // bytes consumed
	carry [8]byte
	nc    int // bytes in carry

	scratch []float64 // aligned staging for misaligned pieces
	err     error

	// out16 (WireBF16, steps whose chunk is forwarded): the sink also
	// writes the bfloat16 encoding of what the next step sends, from
	// blocks still in L1, through tmp.
	out16 []uint16
	tmp   [fuseBlock]float32
}

// fuseBlock is the block of the fused bfloat16 kernels of a sink.
const fuseBlock = 512

type sinkMode int

const (
	modeAdd sinkMode = iota
	modeAddScale
	modeAddRound // the final add of a sum with WireBF16
	modeCopy
)

// Header implements Sink.
func (s *chunkSink) Header(h Header, n int) error {
	s.err = check(h, n, s.want, s.elemSize)
	return s.err
}

// Dest implements destSink: the destination bytes of a copy that needs
// no decoding.
func (s *chunkSink) Dest() []byte {
	if s.mode != modeCopy || s.wire16 || s.err != nil {
		return nil
	}
	s.pos = len(s.dstBytes())
	return s.dstBytes()
}

// Data implements Sink.
func (s *chunkSink) Data(p []byte) {
	if s.mode == modeCopy && !s.wire16 {
		dst := s.dstBytes()
		s.pos += copy(dst[s.pos:], p)
		return
	}
	es := s.elemSize
	if s.nc > 0 { // finish an element split between pieces
		k := copy(s.carry[s.nc:es], p)
		s.nc += k
		p = p[k:]
		if s.nc < es {
			return
		}
		s.nc = 0
		s.reduce(s.carry[:es])
	}
	whole := len(p) / es * es
	if whole > 0 {
		s.reduce(p[:whole])
	}
	if rest := p[whole:]; len(rest) > 0 {
		s.nc = copy(s.carry[:], rest)
	}
}

// reduce combines whole elements b into the destination at s.pos.
func (s *chunkSink) reduce(b []byte) {
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uintptr(s.elemSize) != 0 {
		// Misaligned (a frame cut off the 8-byte grid): stage through an
		// aligned buffer that stays in L1.
		if s.scratch == nil {
			s.scratch = make([]float64, 2048)
		}
		sb := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s.scratch))), len(s.scratch)*8)
		for len(b) > 0 {
			k := copy(sb, b)
			s.reduce(sb[:k])
			b = b[k:]
		}
		return
	}
	e, n := s.pos/s.elemSize, len(b)/s.elemSize
	s.pos += len(b)
	if s.wire16 {
		var out []uint16
		if s.out16 != nil {
			out = s.out16[e : e+n]
		}
		s.reduce16(s.f32[e:e+n], unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n), out)
		return
	}
	if s.f64 != nil {
		src := unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(b))), n)
		if s.mode == modeAddScale {
			addScale64(s.f64[e:e+n], src, s.scale64)
		} else {
			add64(s.f64[e:e+n], src)
		}
		return
	}
	src := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n)
	if s.mode == modeAddScale {
		addScale32(s.f32[e:e+n], src, s.scale32)
	} else {
		add32(s.f32[e:e+n], src)
	}
}

// reduce16 combines the bfloat16 src into dst and, if out is not nil,
// writes there the encoding of what the next step forwards: the values
// copied (all-gather), the rounded total (last reduce-scatter step), or the
// partial sum, which only travels on (the all-gather overwrites dst's
// segment later, so dst keeps this rank's own values).
func (s *chunkSink) reduce16(dst []float32, src, out []uint16) {
	scale := float32(1)
	switch s.mode {
	case modeCopy:
		decode16(dst, src)
		copy(out, src)
		return
	case modeAdd:
		if out == nil {
			add16(dst, src)
			return
		}
		for len(dst) > 0 {
			n := min(len(dst), fuseBlock)
			t := s.tmp[:n]
			copy(t, dst[:n])
			add16(t, src[:n])
			encode16(out[:n], t)
			dst, src, out = dst[n:], src[n:], out[n:]
		}
		return
	case modeAddScale:
		scale = s.scale32
	}
	for len(dst) > 0 {
		n := min(len(dst), fuseBlock)
		addRound16(dst[:n], src[:n], scale)
		if out != nil {
			encode16(out[:n], dst[:n])
			out = out[n:]
		}
		dst, src = dst[n:], src[n:]
	}
}

func (s *chunkSink) dstBytes() []byte {
	if s.f64 != nil {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s.f64))), len(s.f64)*8)
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s.f32))), len(s.f32)*4)
}

// done reports whether the whole chunk arrived.
func (s *chunkSink) done() error {
	if s.err != nil {
		return s.err
	}
	if want := int(s.want.Count) * s.elemSize; s.pos != want || s.nc != 0 {
		return fmt.Errorf("%w: op %d step %d: chunk ended after %d of %d bytes", ErrProtocol, s.want.OpSeq, s.want.Step, s.pos+s.nc, want)
	}
	return nil
}

// check compares a received header and data length with what the schedule
// expects.
func check(got Header, n int, want Header, elemSize int) error {
	switch {
	case got == want && n == int(want.Count)*elemSize:
		return nil
	case got.Generation != want.Generation:
		return fmt.Errorf("%w: frame of generation %d, ring is generation %d", ErrStaleGeneration, got.Generation, want.Generation)
	case got.OpSeq != want.OpSeq || got.Bucket != want.Bucket || got.Total != want.Total || got.DType != want.DType || got.Op != want.Op:
		return fmt.Errorf("%w: expected op %d bucket %d (%d × %v, %v), rank %d sent op %d bucket %d (%d × %v, %v)",
			ErrMismatch, want.OpSeq, want.Bucket, want.Total, want.DType, want.Op,
			got.SenderRank, got.OpSeq, got.Bucket, got.Total, got.DType, got.Op)
	case got == want:
		return fmt.Errorf("%w: op %d step %d: %d data bytes for %d elements", ErrProtocol, want.OpSeq, want.Step, n, want.Count)
	default:
		return fmt.Errorf("%w: op %d: expected step %d offset %d count %d from rank %d, got step %d offset %d count %d from rank %d",
			ErrProtocol, want.OpSeq, want.Step, want.Offset, want.Count, want.SenderRank,
			got.Step, got.Offset, got.Count, got.SenderRank)
	}
}
