package allreduce

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/ringtrain/ringtrain/proto"
)

// codecName is the gRPC content-subtype of the peer streams.
const codecName = "ringraw"

func init() { encoding.RegisterCodecV2(rawCodec{}) }

// Field numbers of pb.RingFrame.
const (
	fieldHello  = 1
	fieldHeader = 2
	fieldData   = 3
)

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

// wireIn receives a frame.
type wireIn struct {
	hello     *pb.RingHello // set if the frame carried one
	hasHeader bool
	header    Header
	dst       []byte // receive buffer
	n         int    // bytes of data stored in dst

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
		prefix = protowire.AppendTag(prefix, fieldData, protowire.BytesType)
		prefix = protowire.AppendVarint(prefix, uint64(m.data.Len()))
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
	w.hello, w.hasHeader, w.n = nil, false, 0
	r := data.Reader()
	defer r.Close()
	for {
		tag, err := readVarint(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ringraw codec: frame: %w", err)
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if typ != protowire.BytesType {
			if err := skipField(r, typ); err != nil {
				return fmt.Errorf("ringraw codec: field %d: %w", num, err)
			}
			continue
		}
		size, err := readVarint(r)
		if err != nil {
			return fmt.Errorf("ringraw codec: field %d: %w", num, err)
		}
		switch num {
		case fieldData:
			if size > uint64(len(w.dst)) {
				return fmt.Errorf("ringraw codec: chunk of %d bytes exceeds the %d-byte receive buffer", size, len(w.dst))
			}
			if _, err := io.ReadFull(r, w.dst[:size]); err != nil {
				return fmt.Errorf("ringraw codec: data: %w", err)
			}
			w.n = int(size)
		case fieldHello, fieldHeader:
			if size > 1<<16 {
				return fmt.Errorf("ringraw codec: field %d of %d bytes", num, size)
			}
			if cap(w.scratch) < int(size) {
				w.scratch = make([]byte, size)
			}
			b := w.scratch[:size]
			if _, err := io.ReadFull(r, b); err != nil {
				return fmt.Errorf("ringraw codec: field %d: %w", num, err)
			}
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
			if _, err := r.Discard(int(size)); err != nil {
				return fmt.Errorf("ringraw codec: field %d: %w", num, err)
			}
		}
	}
}

func readVarint(r *mem.Reader) (uint64, error) {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b, err := r.ReadByte()
		if err != nil {
			if shift > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, errors.New("varint overflows 64 bits")
}

func skipField(r *mem.Reader, typ protowire.Type) error {
	var n int
	switch typ {
	case protowire.VarintType:
		_, err := readVarint(r)
		return err
	case protowire.Fixed32Type:
		n = 4
	case protowire.Fixed64Type:
		n = 8
	default:
		return fmt.Errorf("unsupported wire type %d", typ)
	}
	_, err := r.Discard(n)
	return err
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
