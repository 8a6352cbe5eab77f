package allreduce

import (
	"context"
	"time"

	pb "github.com/ringtrain/ringtrain/proto"
)

// Member identifies one rank of a ring generation to a Transport.
type Member struct {
	Generation uint64
	Rank       int
	WorldSize  int
	// Right is the address of the right neighbour, rank (Rank+1) mod
	// WorldSize. Transports that dial use it; the in-memory one does not.
	Right string
	// CloseTimeout bounds a graceful Link.Close (0: DefaultCloseTimeout).
	CloseTimeout time.Duration
}

func (m Member) left() int  { return (m.Rank + m.WorldSize - 1) % m.WorldSize }
func (m Member) right() int { return (m.Rank + 1) % m.WorldSize }

// Transport connects a ring member to its two neighbours. Implementations:
// InmemNetwork (tests) and GRPCTransport.
type Transport interface {
	// Connect returns m's Link once its stream to the right neighbour is
	// accepted and the stream from the left neighbour has arrived. A stream
	// from another generation is rejected with ErrStaleGeneration. Connect
	// gives up with ctx's error when ctx ends.
	Connect(ctx context.Context, m Member) (Link, error)
}

// Link is one member's pair of ordered streams: frames go out to the right
// neighbour and come in from the left one. Send and Recv are each called by
// one goroutine at a time and may run concurrently with each other.
type Link interface {
	// Send queues f for the right neighbour. It may return before f.Data is
	// on the wire; the transport calls f.Release exactly once, as soon as it
	// no longer reads f.Data (perhaps before Send returns). On error it
	// calls f.Release unless the data may still be read.
	Send(f *OutFrame) error
	// Recv blocks for the next frame from the left neighbour and hands it
	// to s as it decodes it: s.Header first, then s.Data with the data in
	// order. If s.Header returns an error, Recv returns it (possibly
	// wrapped or, for gRPC, flattened) without calling s.Data. Recv returns
	// io.EOF once the left neighbour closed its stream gracefully.
	Recv(s Sink) error
	// Close ends both streams and unblocks Send and Recv. With graceful set
	// the right neighbour still receives every frame sent so far, then
	// io.EOF; otherwise both neighbours see an error at once. Idempotent.
	Close(graceful bool) error
}

// Header is the control part of a frame, the Go form of pb.ChunkHeader.
type Header struct {
	Generation uint64
	OpSeq      uint64
	Bucket     int32
	Step       uint32
	Offset     uint64 // elements
	Count      uint32 // elements
	Total      uint64 // elements of the whole operation
	DType      pb.DType
	Op         pb.ReduceOp
	SenderRank uint32
}

// OutFrame is a frame to send. Data is a view of the caller's tensor and is
// not written until Release has been called.
type OutFrame struct {
	Header  Header
	Data    []byte
	Release func()

	encode func() // sets Data; the ring's send loop calls it before Send
}

// Sink consumes a received frame straight from the transport's buffers,
// so that data is added into place without an intermediate copy.
type Sink interface {
	// Header checks the frame's header and its data length n in bytes
	// before any data is seen; an error rejects the frame.
	Header(h Header, n int) error
	// Data is called with consecutive pieces of the data, n bytes in all.
	// A piece may split an element and is valid only during the call.
	Data(p []byte)
}

func headerToProto(h *Header, p *pb.ChunkHeader) {
	p.Generation = h.Generation
	p.OpSeq = h.OpSeq
	p.Bucket = h.Bucket
	p.Step = h.Step
	p.Offset = h.Offset
	p.Count = h.Count
	p.Total = h.Total
	p.Dtype = h.DType
	p.Op = h.Op
	p.SenderRank = h.SenderRank
}

func headerFromProto(p *pb.ChunkHeader) Header {
	return Header{
		Generation: p.GetGeneration(),
		OpSeq:      p.GetOpSeq(),
		Bucket:     p.GetBucket(),
		Step:       p.GetStep(),
		Offset:     p.GetOffset(),
		Count:      p.GetCount(),
		Total:      p.GetTotal(),
		DType:      p.GetDtype(),
		Op:         p.GetOp(),
		SenderRank: p.GetSenderRank(),
	}
}
