package allreduce

import (
	"errors"
	"fmt"
	"io"
	"unsafe"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/ringtrain/ringtrain/proto"
)

// codecName is the gRPC content-subtype of the peer streams.
const codecName = "ringraw"

func init() {
	// Tensors go on the wire as their in-memory bytes, which are the
	// little-endian format only on little-endian hosts.
	if one := uint16(1); *(*byte)(unsafe.Pointer(&one)) != 1 {
		panic("allreduce: big-endian hosts are not supported")
	}
	encoding.RegisterCodecV2(rawCodec{})
}

// Field numbers of pb.RingFrame.
const (
	fieldHello  = 1
	fieldHeader = 2
	fieldData   = 3
	fieldPad    = 15
)

// grpcMsgHeader is the length of gRPC's per-message prefix on the wire.
const grpcMsgHeader = 5

// rawCodec encodes pb.RingFrame without copying tensor data: Marshal of a
// *wireOut returns the frame's protobuf prefix followed by a view of the
// tensor memory; Unmarshal into a *wireIn copies the data straight into the
// receive buffer. The bytes are the protobuf encoding of pb.RingFrame. Any
// other proto.Message is handled like the default codec.
type rawCodec struct{}

// wireOut is a frame to marshal: a hello or a chunk.
type wireOut struct {
	hello  *pb.RingHello
	header Header
	data   mem.Buffer // nil for a hello

	marshaled bool // Marshal ran: grpc owns data's reference
}

// wireIn receives a frame: a hello, or a chunk handed to sink.
type wireIn struct {
	hello     *pb.RingHello // set if the frame carried one
	hasHeader bool
	header    Header
	sink      Sink
	sinkErr   error // what sink.Header returned

	ph      pb.ChunkHeader // reused
	scratch []byte
}

func (rawCodec) Name() string { return codecName }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *wireOut:
		m.marshaled = true
		prefix := make([]byte, 0, 96)
		var err error
		if m.hello != nil {
			if prefix, err = appendMessage(prefix, fieldHello, m.hello); err != nil {
				return nil, err
			}
		} else {
			var ph pb.ChunkHeader
			headerToProto(&m.header, &ph)
			if prefix, err = appendMessage(prefix, fieldHeader, &ph); err != nil {
				return nil, err
			}
		}
		if m.data == nil || m.data.Len() == 0 {
			return mem.BufferSlice{mem.SliceBuffer(prefix)}, nil
		}
		// Pad so that the data starts 8-byte aligned relative to the
		// gRPC message (and hence in the receiver's frame buffers).
		n := uint64(m.data.Len())
		end := grpcMsgHeader + len(prefix) + 2 + protowire.SizeTag(fieldData) + protowire.SizeVarint(n)
		pad := mod(-end, 8)
		prefix = protowire.AppendTag(prefix, fieldPad, protowire.BytesType)
		prefix = protowire.AppendVarint(prefix, uint64(pad))
		prefix = append(prefix, make([]byte, pad)...)
		prefix = protowire.AppendTag(prefix, fieldData, protowire.BytesType)
		prefix = protowire.AppendVarint(prefix, n)
		return mem.BufferSlice{mem.SliceBuffer(prefix), m.data}, nil
	case proto.Message:
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	default:
		return nil, fmt.Errorf("ringraw codec: cannot marshal %T", v)
	}
}

func appendMessage(b []byte, field protowire.Number, m proto.Message) ([]byte, error) {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(proto.Size(m)))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *wireIn:
		return m.unmarshal(data)
	case proto.Message:
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		return proto.Unmarshal(buf.ReadOnlyData(), m)
	default:
		return fmt.Errorf("ringraw codec: cannot unmarshal into %T", v)
	}
}

func (w *wireIn) unmarshal(data mem.BufferSlice) error {
	w.hello, w.hasHeader, w.sinkErr = nil, false, nil
	c := cursor{bufs: data}
	sawData := false
	for {
		tag, err := c.varint()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("ringraw codec: frame: %w", err)
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if typ != protowire.BytesType {
			if err := c.skipField(typ); err != nil {
				return fmt.Errorf("ringraw codec: field %d: %w", num, err)
			}
			continue
		}
		size, err := c.varint()
		if err != nil {
			return fmt.Errorf("ringraw codec: field %d: %w", num, err)
		}
		if size > uint64(c.remaining()) {
			return fmt.Errorf("ringraw codec: field %d: %d bytes, %d left: %w", num, size, c.remaining(), io.ErrUnexpectedEOF)
		}
		switch num {
		case fieldData:
			if !w.hasHeader || w.sink == nil {
				return fmt.Errorf("%w: data without a header", ErrProtocol)
			}
			if sawData { // the sink checked one chunk's length, not two
				return fmt.Errorf("%w: frame with two data fields", ErrProtocol)
			}
			sawData = true
			if err := w.sink.Header(w.header, int(size)); err != nil {
				w.sinkErr = err
				return err
			}
			c.pieces(int(size), w.sink.Data)
		case fieldHello, fieldHeader:
			if size > 1<<16 {
				return fmt.Errorf("ringraw codec: field %d of %d bytes", num, size)
			}
			if cap(w.scratch) < int(size) {
				w.scratch = make([]byte, size)
			}
			b := w.scratch[:size]
			c.read(b)
			if num == fieldHello {
				w.hello = new(pb.RingHello)
				if err := proto.Unmarshal(b, w.hello); err != nil {
					return fmt.Errorf("ringraw codec: hello: %w", err)
				}
			} else {
				if err := proto.Unmarshal(b, &w.ph); err != nil {
					return fmt.Errorf("ringraw codec: header: %w", err)
				}
				w.header, w.hasHeader = headerFromProto(&w.ph), true
			}
		default:
			c.skip(int(size))
		}
	}
	if w.hasHeader && !sawData && w.sink != nil {
		if err := w.sink.Header(w.header, 0); err != nil {
			w.sinkErr = err
			return err
		}
	}
	return nil
}

// cursor walks a mem.BufferSlice without copying it.
type cursor struct {
	bufs mem.BufferSlice
	i    int    // next buffer
	b    []byte // rest of the current buffer
}

func (c *cursor) fill() bool {
	for len(c.b) == 0 {
		if c.i >= len(c.bufs) {
			return false
		}
		c.b = c.bufs[c.i].ReadOnlyData()
		c.i++
	}
	return true
}

func (c *cursor) remaining() int {
	n := len(c.b)
	for _, b := range c.bufs[c.i:] {
		n += b.Len()
	}
	return n
}

func (c *cursor) varint() (uint64, error) {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if !c.fill() {
			if shift > 0 {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, io.EOF
		}
		b := c.b[0]
		c.b = c.b[1:]
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, errors.New("varint overflows 64 bits")
}

// pieces hands the next n bytes (n ≤ remaining) to f, buffer by buffer.
func (c *cursor) pieces(n int, f func([]byte)) {
	for n > 0 && c.fill() {
		k := min(n, len(c.b))
		f(c.b[:k])
		c.b = c.b[k:]
		n -= k
	}
}

func (c *cursor) read(dst []byte) {
	c.pieces(len(dst), func(p []byte) { dst = dst[copy(dst, p):] })
}

func (c *cursor) skip(n int) { c.pieces(n, func([]byte) {}) }

func (c *cursor) skipField(typ protowire.Type) error {
	switch typ {
	case protowire.VarintType:
		_, err := c.varint()
		return err
	case protowire.Fixed32Type, protowire.Fixed64Type:
		n := 4
		if typ == protowire.Fixed64Type {
			n = 8
		}
		if c.remaining() < n {
			return io.ErrUnexpectedEOF
		}
		c.skip(n)
		return nil
	default:
		return fmt.Errorf("unsupported wire type %d", typ)
	}
}

// releasePool turns grpc's release of a sent buffer into a callback.
type releasePool struct{ release func() }

func (p *releasePool) Get(int) *[]byte { panic("allreduce: releasePool.Get") }
func (p *releasePool) Put(*[]byte)     { p.release() }

// sendBuffer wraps the tensor bytes of f for grpc so that f.Release runs
// once grpc lets go of them. Small chunks are copied (grpc does not pool
// them, so it would never report their release).
func sendBuffer(f *OutFrame) mem.Buffer {
	if mem.IsBelowBufferPoolingThreshold(cap(f.Data[:len(f.Data):len(f.Data)])) {
		b := append([]byte(nil), f.Data...)
		f.Release()
		return mem.SliceBuffer(b)
	}
	d := f.Data[:len(f.Data):len(f.Data)]
	return mem.NewBuffer(&d, &releasePool{release: f.Release})
}
