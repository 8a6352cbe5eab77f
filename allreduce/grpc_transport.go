package allreduce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/ringtrain/ringtrain/proto"
)

// GRPCTransport connects ring members over gRPC: each member opens a
// Peer.Ring client stream to its right neighbour's server and receives the
// stream of its left neighbour on its own server. One GRPCTransport serves
// every generation of one process; register it on the process's server.
type GRPCTransport struct {
	dialOpts  []grpc.DialOption
	creds     credentials.TransportCredentials // of the raw path and NewGRPCServer
	rawServed atomic.Bool                      // a server with rawCreds handshook a connection

	mu      sync.Mutex
	newest  uint64                  // newest generation Connect saw
	parked  map[uint64]*inboundRing // streams waiting for their Connect
	claimed map[uint64]*inboundRing // streams taken by a Connect, by generation
	changed chan struct{}           // closed and replaced when parked changes
}

var _ Transport = (*GRPCTransport)(nil)

// NewGRPCTransport returns a transport that dials with DialOptions()
// followed by extra.
func NewGRPCTransport(extra ...grpc.DialOption) *GRPCTransport {
	return &GRPCTransport{
		dialOpts: append(DialOptions(), extra...),
		creds:    insecure.NewCredentials(),
		parked:   make(map[uint64]*inboundRing),
		claimed:  make(map[uint64]*inboundRing),
		changed:  make(chan struct{}),
	}
}

// SetCredentials makes t dial its neighbours with creds (after the dial
// options it was made with), and the server NewGRPCServer builds for it
// serve with them, raw data path included: its connections have the same
// handshake (TLS when creds are TLS). Without it, both are plaintext.
// Call it before t is used.
func (t *GRPCTransport) SetCredentials(creds credentials.TransportCredentials) {
	t.creds = creds
	t.dialOpts = append(t.dialOpts, grpc.WithTransportCredentials(creds))
}

// Register adds the Peer service to s, which should have been built with
// ServerOptions. NewGRPCServer does both and serves the raw data path too.
func (t *GRPCTransport) Register(s grpc.ServiceRegistrar) {
	pb.RegisterPeerServer(s, &peerServer{t: t})
}

// inboundRing is a stream from a left neighbour, from its arrival until
// its ring lets go of it.
type inboundRing struct {
	hello  *pb.RingHello
	stream grpc.ClientStreamingServer[pb.RingFrame, pb.RingAck]
	frames uint64

	// wantRaw: the stream was told to send its chunks on a raw
	// connection, which rawReady announces once attached.
	wantRaw  bool
	rawMu    sync.Mutex
	raw      *rawIn
	rawReady chan struct{}

	endOnce sync.Once
	end     chan struct{} // closed to let the handler return
	endErr  error         // the handler's result; nil: acknowledge
}

func (in *inboundRing) finish(err error) {
	in.endOnce.Do(func() {
		in.endErr = err
		close(in.end)
		in.rawMu.Lock()
		if in.raw != nil {
			abortConn(in.raw.conn)
		}
		in.rawMu.Unlock()
	})
}

// attachRaw gives the stream its raw connection; false if it expects none,
// has one, or has ended.
func (in *inboundRing) attachRaw(c net.Conn) bool {
	in.rawMu.Lock()
	defer in.rawMu.Unlock()
	select {
	case <-in.end:
		return false
	default:
	}
	if !in.wantRaw || in.raw != nil {
		return false
	}
	in.raw = &rawIn{conn: c}
	close(in.rawReady)
	return true
}

type peerServer struct {
	pb.UnimplementedPeerServer
	t *GRPCTransport
}

// Ring implements pb.PeerServer.
func (s *peerServer) Ring(stream grpc.ClientStreamingServer[pb.RingFrame, pb.RingAck]) error {
	var w wireIn
	if err := stream.RecvMsg(&w); err != nil {
		return err
	}
	if w.hello == nil {
		return status.Error(codes.InvalidArgument, "allreduce: first frame of a ring stream must be a hello")
	}
	in := &inboundRing{hello: w.hello, stream: stream, frames: 1, end: make(chan struct{}), rawReady: make(chan struct{})}
	md := metadata.Pairs("ringtrain-accepted", strconv.FormatUint(w.hello.GetGeneration(), 10))
	if s.t.rawServed.Load() {
		in.wantRaw = true // this server is built to take the raw connection
		md.Set(rawMetadataKey, "1")
	}
	if err := s.t.park(in); err != nil {
		return toStatus(err)
	}
	if err := stream.SendHeader(md); err != nil {
		s.t.unpark(in)
		return err
	}
	select {
	case <-in.end:
		if in.endErr != nil {
			return toStatus(in.endErr)
		}
		return stream.SendAndClose(&pb.RingAck{Frames: in.frames})
	case <-stream.Context().Done():
		s.t.unpark(in)
		in.finish(stream.Context().Err())
		return stream.Context().Err()
	}
}

// park holds an arriving stream until Connect of its generation takes it.
func (t *GRPCTransport) park(in *inboundRing) error {
	gen := in.hello.GetGeneration()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case gen < t.newest:
		return fmt.Errorf("%w: stream of generation %d, this member is at generation %d", ErrStaleGeneration, gen, t.newest)
	case t.claimed[gen] != nil:
		return fmt.Errorf("%w: a second stream for generation %d from rank %d", ErrMismatch, gen, in.hello.GetSenderRank())
	}
	if old := t.parked[gen]; old != nil {
		old.finish(fmt.Errorf("%w: replaced by a newer stream for generation %d", ErrMismatch, gen))
	}
	t.parked[gen] = in
	close(t.changed)
	t.changed = make(chan struct{})
	return nil
}

func (t *GRPCTransport) unpark(in *inboundRing) {
	t.mu.Lock()
	defer t.mu.Unlock()
	gen := in.hello.GetGeneration()
	if t.parked[gen] == in {
		delete(t.parked, gen)
	}
}

// Connect implements Transport.
func (t *GRPCTransport) Connect(ctx context.Context, m Member) (Link, error) {
	if m.Right == "" {
		return nil, fmt.Errorf("no address for the right neighbour (rank %d)", m.right())
	}
	t.mu.Lock()
	if m.Generation < t.newest {
		t.mu.Unlock()
		return nil, fmt.Errorf("%w: generation %d, this member is at generation %d", ErrStaleGeneration, m.Generation, t.newest)
	}
	if m.Generation > t.newest {
		t.newest = m.Generation
		for gen, in := range t.parked {
			if gen < m.Generation {
				in.finish(fmt.Errorf("%w: stream of generation %d, this member moved to generation %d", ErrStaleGeneration, gen, m.Generation))
				delete(t.parked, gen)
			}
		}
		for gen := range t.claimed {
			if gen < m.Generation {
				delete(t.claimed, gen)
			}
		}
	}
	t.mu.Unlock()

	l := &grpcLink{m: m, t: t, closeTimeout: cmp.Or(m.CloseTimeout, DefaultCloseTimeout), watchDone: make(chan struct{})}
	if err := l.dial(ctx, t.dialOpts); err != nil {
		return nil, err
	}
	in, err := t.claim(ctx, m)
	if err != nil {
		l.Close(false)
		return nil, err
	}
	l.in = in
	return l, nil
}

// claim waits for the left neighbour's stream of m's generation.
func (t *GRPCTransport) claim(ctx context.Context, m Member) (*inboundRing, error) {
	for {
		t.mu.Lock()
		in := t.parked[m.Generation]
		changed := t.changed
		if in != nil {
			delete(t.parked, m.Generation)
			t.claimed[m.Generation] = in
		}
		t.mu.Unlock()
		if in != nil {
			h := in.hello
			if int(h.GetSenderRank()) != m.left() || int(h.GetWorldSize()) != m.WorldSize {
				err := fmt.Errorf("%w: generation %d: rank %d of %d expects its left neighbour %d of %d, got a stream from rank %d of %d",
					ErrMismatch, m.Generation, m.Rank, m.WorldSize, m.left(), m.WorldSize, h.GetSenderRank(), h.GetWorldSize())
				in.finish(err)
				return nil, err
			}
			return in, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the stream of the left neighbour (rank %d): %w", m.left(), ctx.Err())
		}
	}
}

// grpcLink is a Link over a client stream to the right neighbour and the
// server stream of the left one.
type grpcLink struct {
	m            Member
	t            *GRPCTransport
	closeTimeout time.Duration

	conn   *grpc.ClientConn
	out    grpc.ClientStreamingClient[pb.RingFrame, pb.RingAck]
	cancel context.CancelFunc // of out
	rawOut *rawOut            // the chunks' raw connection, if the neighbour takes one
	in     *inboundRing
	recv   wireIn

	watchDone chan struct{} // closed when the right neighbour ended out
	watchErr  error

	sendMu    sync.Mutex // SendMsg and CloseSend must not overlap
	closeOnce sync.Once
	mu        sync.Mutex
	cause     error // why the link broke, for Send and Recv errors
}

// dial opens the stream to the right neighbour and waits until it is
// accepted.
func (l *grpcLink) dial(ctx context.Context, opts []grpc.DialOption) error {
	conn, err := grpc.NewClient(l.m.Right, opts...)
	if err != nil {
		return fmt.Errorf("dial right neighbour %s: %w", l.m.Right, err)
	}
	l.conn = conn
	sctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	fail := func(what string, err error) error {
		cancel()
		conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("%s right neighbour (rank %d at %s): %w", what, l.m.right(), l.m.Right, fromStatus(err))
	}
	out, err := pb.NewPeerClient(conn).Ring(sctx, grpc.CallContentSubtype(codecName), grpc.WaitForReady(true))
	if err != nil {
		return fail("open stream to", err)
	}
	hello := &wireOut{hello: &pb.RingHello{Generation: l.m.Generation, SenderRank: uint32(l.m.Rank), WorldSize: uint32(l.m.WorldSize)}}
	if err := out.SendMsg(hello); err != nil {
		_, err = out.CloseAndRecv()
		return fail("send hello to", err)
	}
	md, err := out.Header()
	if err == nil && len(md.Get("ringtrain-accepted")) == 0 {
		// Ended without headers: the status says why.
		var ack pb.RingAck
		if err = out.RecvMsg(&ack); err == nil {
			err = errors.New("stream ended without accepting")
		}
	}
	if err != nil {
		return fail("hello rejected by", err)
	}
	if len(md.Get(rawMetadataKey)) > 0 {
		if l.rawOut, err = dialRaw(ctx, l.m, l.t.creds); err != nil {
			cancel()
			conn.Close()
			return err
		}
	}
	l.out = out
	if !stop() {
		return fail("connect to", ctx.Err())
	}
	go l.watch()
	return nil
}

// watch waits for the right neighbour to end the stream. A graceful end
// (it closed its ring after reading everything) only stops further sends;
// an error breaks the link, so that Recv fails too and the ring learns of
// it at once.
func (l *grpcLink) watch() {
	var ack pb.RingAck
	err := l.out.RecvMsg(&ack)
	if err == nil {
		l.watchErr = fmt.Errorf("%w: right neighbour (rank %d) closed its ring", ErrPeerClosed, l.m.right())
		close(l.watchDone)
		return
	}
	l.watchErr = fromStatus(err)
	close(l.watchDone)
	l.breakWith(fmt.Errorf("right neighbour (rank %d): %w", l.m.right(), l.watchErr))
}

func (l *grpcLink) breakWith(err error) {
	l.mu.Lock()
	if l.cause == nil {
		l.cause = err
	}
	l.mu.Unlock()
	l.Close(false)
}

func (l *grpcLink) err(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause != nil {
		return l.cause
	}
	return fromStatus(err)
}

func (l *grpcLink) Send(f *OutFrame) error {
	if l.rawOut != nil {
		if err := l.rawOut.send(f); err != nil {
			return l.err(fmt.Errorf("raw connection to right neighbour (rank %d): %w", l.m.right(), err))
		}
		return nil
	}
	w := &wireOut{header: f.Header, data: sendBuffer(f)}
	l.sendMu.Lock()
	err := l.out.SendMsg(w)
	l.sendMu.Unlock()
	if err != nil {
		if !w.marshaled { // otherwise grpc frees the buffer itself
			w.data.Free()
		}
		if errors.Is(err, io.EOF) {
			// The stream is over; its status comes from the watcher.
			t := time.NewTimer(time.Second)
			select {
			case <-l.watchDone:
				err = l.watchErr
			case <-t.C:
			}
			t.Stop()
		}
		if errors.Is(err, ErrPeerClosed) {
			return err
		}
		return l.err(err)
	}
	return nil
}

func (l *grpcLink) Recv(s Sink) error {
	if l.in.wantRaw {
		return l.recvRaw(s)
	}
	l.recv.sink, l.recv.sinkErr = s, nil
	err := l.in.stream.RecvMsg(&l.recv)
	if l.recv.sinkErr != nil {
		return l.recv.sinkErr
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			l.in.finish(nil) // acknowledge the left neighbour's graceful close
			return io.EOF
		}
		if status.Code(err) == codes.Canceled && l.in.stream.Context().Err() != nil {
			err = fmt.Errorf("the stream ended abruptly (the neighbour aborted or died): %w", err)
		}
		return l.err(err)
	}
	l.in.frames++
	if !l.recv.hasHeader {
		return fmt.Errorf("%w: frame without a header", ErrProtocol)
	}
	return nil
}

// recvRaw is Recv from the left neighbour's raw connection.
func (l *grpcLink) recvRaw(s Sink) error {
	select {
	case <-l.in.rawReady:
	case <-l.in.end:
		return l.err(fmt.Errorf("the stream of the left neighbour (rank %d) ended before its raw connection arrived", l.m.left()))
	}
	err := l.in.raw.recv(s)
	switch {
	case err == nil:
		l.in.frames++
		return nil
	case errors.Is(err, errRawEnd):
		l.in.finish(nil) // acknowledge the left neighbour's graceful close
		return io.EOF
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrMismatch), errors.Is(err, ErrStaleGeneration):
		return err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Not io.EOF, which would read as a graceful close.
		err = fmt.Errorf("the raw connection ended abruptly (the neighbour aborted or died): %w", io.ErrUnexpectedEOF)
	}
	return l.err(err)
}

func (l *grpcLink) Close(graceful bool) error {
	l.closeOnce.Do(func() {
		if graceful {
			// End the stream after everything sent; the right neighbour
			// acknowledges once it has read it all.
			l.sendMu.Lock()
			if l.rawOut != nil {
				l.rawOut.end()
			}
			err := l.out.CloseSend()
			l.sendMu.Unlock()
			if err == nil {
				t := time.NewTimer(l.closeTimeout)
				select {
				case <-l.watchDone:
				case <-t.C:
				}
				t.Stop()
			}
			if l.in != nil {
				l.in.finish(nil)
			}
		} else if l.in != nil {
			l.in.finish(fmt.Errorf("%w: rank %d aborted the ring", ErrClosed, l.m.Rank))
		}
		l.mu.Lock()
		if l.cause == nil {
			l.cause = ErrClosed
		}
		l.mu.Unlock()
		l.cancel()
		l.conn.Close()
		if l.rawOut != nil {
			abortConn(l.rawOut.conn) // after a graceful end, only the socket is left
		}
		if l.in != nil {
			// A new ring of the same generation may take a new stream.
			l.t.mu.Lock()
			if l.t.claimed[l.m.Generation] == l.in {
				delete(l.t.claimed, l.m.Generation)
			}
			l.t.mu.Unlock()
		}
	})
	return nil
}

// toStatus translates ring errors into gRPC status codes at the service
// boundary; fromStatus translates them back on the client.
func toStatus(err error) error {
	code := codes.Unknown
	switch {
	case errors.Is(err, ErrStaleGeneration):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrMismatch):
		code = codes.InvalidArgument
	case errors.Is(err, ErrClosed), errors.Is(err, ErrBroken):
		code = codes.Aborted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	for _, e := range []error{ErrStaleGeneration, ErrMismatch, ErrClosed, ErrBroken} {
		if strings.HasPrefix(msg, e.Error()) {
			return fmt.Errorf("%w (from peer: %s)", e, msg)
		}
	}
	return err
}
