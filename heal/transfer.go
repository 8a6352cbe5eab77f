package heal

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"sync"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/ringtrain/ringtrain/proto"
)

// ChunkBytes is the size of the data of one StateChunk.
const ChunkBytes = 1 << 20

// Errors of a transfer.
var (
	// ErrNotOffered: the server offers no state for that generation (it
	// moved on, or has not got there yet).
	ErrNotOffered = errors.New("no state offered for this generation")
	// ErrCorrupt: a chunk or the whole state did not match its checksum,
	// or the stream broke the protocol.
	ErrCorrupt = errors.New("state transfer corrupt")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header describes a state on offer.
type Header struct {
	Step, Lineage int64
	Hash          uint32 // trainer.StateHash of the state
	Run           string
}

// Server serves the state this process offers to the other ranks of one
// generation at a time (service State in proto/state.proto). The tensors
// are sent from their memory as they are: the owner must not change them
// while the offer stands.
type Server struct {
	pb.UnimplementedStateServer
	log *slog.Logger

	mu    sync.Mutex
	gen   int64
	h     Header
	bufs  [][]float32
	users sync.WaitGroup // fetches in progress
}

var _ pb.StateServer = (*Server)(nil)

// NewServer returns a server with nothing on offer.
func NewServer(log *slog.Logger) *Server { return &Server{log: log} }

// Register adds the State service to s.
func (s *Server) Register(r grpc.ServiceRegistrar) { pb.RegisterStateServer(r, s) }

// Offer serves bufs (the state described by h) to fetches for generation
// gen, until Withdraw.
func (s *Server) Offer(gen int64, h Header, bufs [][]float32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen, s.h, s.bufs = gen, h, bufs
}

// Withdraw ends the offer, waiting for the fetches in progress to finish
// reading the buffers (they fail if their context ends first).
func (s *Server) Withdraw() {
	s.mu.Lock()
	s.gen, s.bufs = 0, nil
	s.mu.Unlock()
	s.users.Wait()
}

// Fetch implements pb.StateServer.
func (s *Server) Fetch(req *pb.FetchRequest, stream grpc.ServerStreamingServer[pb.StateChunk]) error {
	s.mu.Lock()
	if s.bufs == nil || req.GetGeneration() != s.gen {
		gen := s.gen
		s.mu.Unlock()
		return status.Errorf(codes.FailedPrecondition, "%v: asked for generation %d, offering %d", ErrNotOffered, req.GetGeneration(), gen)
	}
	h, bufs := s.h, s.bufs
	s.users.Add(1)
	s.mu.Unlock()
	defer s.users.Done()

	hdr := &pb.StateHeader{Step: h.Step, Lineage: h.Lineage, StateHash: h.Hash, Run: h.Run}
	for _, b := range bufs {
		hdr.TensorLengths = append(hdr.TensorLengths, uint64(len(b)))
	}
	if err := stream.SendMsg(&pb.StateChunk{Header: hdr}); err != nil {
		return err
	}
	per := ChunkBytes / 4
	for ti, b := range bufs {
		for off := 0; off < len(b); off += per {
			part := b[off:min(off+per, len(b))]
			raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(part))), 4*len(part))
			out := &chunkOut{tensor: uint32(ti), offset: uint64(off), crc: crc32.Checksum(raw, castagnoli), data: raw}
			if err := stream.SendMsg(out); err != nil {
				return err
			}
		}
	}
	s.log.Debug("state sent", "generation", req.GetGeneration(), "to", req.GetRequester(), "rank", req.GetRank(), "step", h.Step)
	return nil
}

// Fetch copies the state that the server at cc offers for generation gen
// into dst (tensors of the lengths the server announces, in its order) and
// returns its header. Every chunk's CRC-32C is checked; the caller checks
// the whole state against Header.Hash once it is in place. ctx bounds the
// transfer.
func Fetch(ctx context.Context, cc grpc.ClientConnInterface, gen int64, requester string, rank int, dst [][]float32) (Header, error) {
	ctx, cancel := context.WithCancel(ctx) // an early return ends the server's side too
	defer cancel()
	stream, err := pb.NewStateClient(cc).Fetch(ctx, &pb.FetchRequest{Generation: gen, Requester: requester, Rank: int32(rank)},
		grpc.CallContentSubtype(codecName))
	if err != nil {
		return Header{}, fromStatus(err)
	}
	in := &chunkIn{}
	if err := stream.RecvMsg(in); err != nil {
		return Header{}, fromStatus(err)
	}
	hp := in.header
	if hp == nil {
		return Header{}, fmt.Errorf("%w: first chunk has no header", ErrCorrupt)
	}
	lens := hp.GetTensorLengths()
	if len(lens) != len(dst) {
		return Header{}, fmt.Errorf("%w: %d tensors offered, want %d", ErrCorrupt, len(lens), len(dst))
	}
	for i, n := range lens {
		if n != uint64(len(dst[i])) {
			return Header{}, fmt.Errorf("%w: tensor %d has %d elements, want %d (another model?)", ErrCorrupt, i, n, len(dst[i]))
		}
	}
	in.dst = dst
	next := [2]uint64{} // tensor, offset expected next
	skipEmpty := func() {
		for next[0] < uint64(len(dst)) && next[1] == uint64(len(dst[next[0]])) {
			next = [2]uint64{next[0] + 1, 0}
		}
	}
	skipEmpty()
	for {
		in.header = nil
		err := stream.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Header{}, fromStatus(err)
		}
		if in.tensor != next[0] || in.offset != next[1] {
			return Header{}, fmt.Errorf("%w: chunk of tensor %d at %d, want tensor %d at %d", ErrCorrupt, in.tensor, in.offset, next[0], next[1])
		}
		next[1] += in.count
		skipEmpty()
	}
	if next[0] != uint64(len(dst)) {
		return Header{}, fmt.Errorf("%w: stream ended in tensor %d at %d", ErrCorrupt, next[0], next[1])
	}
	return Header{Step: hp.GetStep(), Lineage: hp.GetLineage(), Hash: hp.GetStateHash(), Run: hp.GetRun()}, nil
}

func fromStatus(err error) error {
	if s, ok := status.FromError(err); ok && s.Code() == codes.FailedPrecondition {
		return fmt.Errorf("%w (%s)", ErrNotOffered, s.Message())
	}
	return err
}

// The codec writes chunk data straight from the tensors and reads it
// straight into them; other messages go through protobuf.

const codecName = "ringstate"

func init() { encoding.RegisterCodecV2(codec{}) }

// Field numbers of pb.StateChunk.
const (
	fieldHeader = 1
	fieldTensor = 2
	fieldOffset = 3
	fieldCRC    = 4
	fieldData   = 5
)

type codec struct{}

// chunkOut is a data chunk to send.
type chunkOut struct {
	tensor uint32
	offset uint64
	crc    uint32
	data   []byte // a view of the tensor
}

// chunkIn receives a chunk: the header, or data copied into dst.
type chunkIn struct {
	dst    [][]float32
	header *pb.StateHeader
	tensor uint64
	offset uint64
	count  uint64 // elements copied
}

func (codec) Name() string { return codecName }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *chunkOut:
		p := make([]byte, 0, 32)
		p = protowire.AppendTag(p, fieldTensor, protowire.VarintType)
		p = protowire.AppendVarint(p, uint64(m.tensor))
		p = protowire.AppendTag(p, fieldOffset, protowire.VarintType)
		p = protowire.AppendVarint(p, m.offset)
		p = protowire.AppendTag(p, fieldCRC, protowire.VarintType)
		p = protowire.AppendVarint(p, uint64(m.crc))
		p = protowire.AppendTag(p, fieldData, protowire.BytesType)
		p = protowire.AppendVarint(p, uint64(len(m.data)))
		return mem.BufferSlice{mem.SliceBuffer(p), mem.SliceBuffer(m.data)}, nil
	case proto.Message:
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, fmt.Errorf("ringstate codec: cannot marshal %T", v)
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	switch m := v.(type) {
	case *chunkIn:
		return m.unmarshal(b)
	case proto.Message:
		return proto.Unmarshal(b, m)
	}
	return fmt.Errorf("ringstate codec: cannot unmarshal into %T", v)
}

func (m *chunkIn) unmarshal(b []byte) error {
	var crc uint64
	var data []byte
	hasData := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrCorrupt, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fieldHeader && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: header: %v", ErrCorrupt, protowire.ParseError(n))
			}
			m.header = new(pb.StateHeader)
			if err := proto.Unmarshal(v, m.header); err != nil {
				return fmt.Errorf("%w: header: %v", ErrCorrupt, err)
			}
			b = b[n:]
		case (num == fieldTensor || num == fieldOffset || num == fieldCRC) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrCorrupt, num, protowire.ParseError(n))
			}
			switch num {
			case fieldTensor:
				m.tensor = v
			case fieldOffset:
				m.offset = v
			default:
				crc = v
			}
			b = b[n:]
		case num == fieldData && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: data: %v", ErrCorrupt, protowire.ParseError(n))
			}
			data, hasData = v, true
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrCorrupt, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if m.header != nil || m.dst == nil {
		return nil
	}
	if !hasData || len(data)%4 != 0 {
		return fmt.Errorf("%w: chunk without whole float32 data", ErrCorrupt)
	}
	if crc32.Checksum(data, castagnoli) != uint32(crc) {
		return fmt.Errorf("%w: chunk of tensor %d at %d fails its CRC-32C", ErrCorrupt, m.tensor, m.offset)
	}
	if m.tensor >= uint64(len(m.dst)) {
		return fmt.Errorf("%w: tensor %d of %d", ErrCorrupt, m.tensor, len(m.dst))
	}
	t := m.dst[m.tensor]
	m.count = uint64(len(data) / 4)
	if m.offset > uint64(len(t)) || m.count > uint64(len(t))-m.offset {
		return fmt.Errorf("%w: %d elements at %d overflow tensor %d of %d", ErrCorrupt, m.count, m.offset, m.tensor, len(t))
	}
	dst := t[m.offset : m.offset+m.count]
	copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), len(data)), data)
	return nil
}
