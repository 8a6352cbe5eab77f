package allreduce

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"

	pb "github.com/ringtrain/ringtrain/proto"
)

// The raw data path. gRPC moves tensor bytes through HTTP/2 frames of 16
// KiB with a user-space copy on each side; on loopback or a LAN the ring
// then spends more CPU in copies than in adds. So the chunks of a ring
// travel over a TCP connection of their own beside its gRPC stream, to the
// same address: the peer's gRPC server, when built by NewGRPCServer, recognises
// the connection by its first bytes and hands it to the transport instead
// of to HTTP/2 (credentials.ErrConnDispatched). The gRPC stream still
// carries the hello (and so every rejection), the acknowledgement of a
// graceful close and the failures of the peer; the TCP connection carries
// only chunks, each a fixed header and the tensor bytes, written with one
// writev straight from the caller's buffer and read straight into place
// where nothing has to be added. A server that is not built by
// NewGRPCServer does not announce the raw path, and the chunks then travel
// on the gRPC stream as before. The raw connection has the handshake of the
// transport's credentials (SetCredentials): TLS when they are TLS.

// rawMagic opens a raw connection (an HTTP/2 client preface starts "PRI ").
var rawMagic = [8]byte{'r', 'i', 'n', 'g', 'r', 'a', 'w', '1'}

// rawHeaderLen is the size of a chunk header on the raw connection, and
// rawHelloLen that of the hello after the magic.
const (
	rawHeaderLen = 56
	rawHelloLen  = 16
	rawAccepted  = 0 // the one-byte answer to a hello
	rawRejected  = 1
)

// rawMetadataKey marks a gRPC stream whose receiver accepts a raw
// connection for its chunks.
const rawMetadataKey = "ringtrain-raw"

// rawReadBuffer is the receive staging of chunks that are added.
const rawReadBuffer = 256 << 10

// putHeader writes the raw header of a chunk of n data bytes, little-endian:
//
//	0 generation u64 | 8 op_seq u64 | 16 offset u64 | 24 total u64 |
//	32 bucket i32 | 36 step u32 | 40 count u32 | 44 sender_rank u32 |
//	48 data bytes u32 | 52 dtype u8 | 53 op u8 | 54 zero u16
//
// The fields are those of pb.ChunkHeader; dtype rawEndType marks the end
// of a gracefully closed connection. The connection opens with rawMagic and
// a hello: generation u64, sender_rank u32, world_size u32, answered by one
// byte (rawAccepted).
func putHeader(b []byte, h *Header, n int) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], h.Generation)
	le.PutUint64(b[8:], h.OpSeq)
	le.PutUint64(b[16:], h.Offset)
	le.PutUint64(b[24:], h.Total)
	le.PutUint32(b[32:], uint32(h.Bucket))
	le.PutUint32(b[36:], h.Step)
	le.PutUint32(b[40:], h.Count)
	le.PutUint32(b[44:], h.SenderRank)
	le.PutUint32(b[48:], uint32(n))
	b[52], b[53], b[54], b[55] = byte(h.DType), byte(h.Op), 0, 0
}

func getHeader(b []byte) (Header, int) {
	le := binary.LittleEndian
	return Header{
		Generation: le.Uint64(b[0:]),
		OpSeq:      le.Uint64(b[8:]),
		Offset:     le.Uint64(b[16:]),
		Total:      le.Uint64(b[24:]),
		Bucket:     int32(le.Uint32(b[32:])),
		Step:       le.Uint32(b[36:]),
		Count:      le.Uint32(b[40:]),
		SenderRank: le.Uint32(b[44:]),
		DType:      pb.DType(b[52]),
		Op:         pb.ReduceOp(b[53]),
	}, int(le.Uint32(b[48:]))
}

// rawEndType marks the end-of-stream header of a graceful close (in the
// dtype byte): a connection that ends without it ended abruptly.
const rawEndType = 0xff

// errRawEnd is the end-of-stream header, seen by rawIn.recv.
var errRawEnd = errors.New("raw connection ended gracefully")

// rawOut writes chunks to the right neighbour.
type rawOut struct {
	conn net.Conn
	hdr  [rawHeaderLen]byte
	arr  [2][]byte
}

// send writes f and releases it: once the write returns, the kernel has
// the bytes.
func (o *rawOut) send(f *OutFrame) error {
	putHeader(o.hdr[:], &f.Header, len(f.Data))
	o.arr[0], o.arr[1] = o.hdr[:], f.Data
	bufs := net.Buffers(o.arr[:])
	_, err := bufs.WriteTo(o.conn)
	o.arr[1] = nil
	f.Release()
	return err
}

// end writes the end-of-stream header and half-closes the connection.
func (o *rawOut) end() {
	clear(o.hdr[:])
	o.hdr[52] = rawEndType
	if _, err := o.conn.Write(o.hdr[:]); err == nil {
		if cw, ok := o.conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
}

// rawIn reads chunks from the left neighbour.
type rawIn struct {
	conn  net.Conn
	hdr   [rawHeaderLen]byte
	stage []byte
}

// destSink is a Sink that can take a chunk's bytes verbatim: Dest returns
// where they go (after Header accepted n bytes), or nil if they must pass
// through Data.
type destSink interface {
	Dest() []byte
}

// recv reads one chunk into s; errRawEnd means the left neighbour closed
// gracefully.
func (in *rawIn) recv(s Sink) error {
	if _, err := io.ReadFull(in.conn, in.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: raw connection ended inside a chunk header", ErrProtocol)
		}
		return err
	}
	if in.hdr[52] == rawEndType {
		return errRawEnd
	}
	h, n := getHeader(in.hdr[:])
	if err := s.Header(h, n); err != nil {
		return err
	}
	if ds, ok := s.(destSink); ok {
		if d := ds.Dest(); len(d) == n {
			_, err := io.ReadFull(in.conn, d)
			return unexpected(err)
		}
	}
	if in.stage == nil {
		in.stage = make([]byte, rawReadBuffer)
	}
	for n > 0 {
		k := min(n, len(in.stage))
		if _, err := io.ReadFull(in.conn, in.stage[:k]); err != nil {
			return unexpected(err)
		}
		s.Data(in.stage[:k])
		n -= k
	}
	return nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// tcpOf is the TCP connection under c (a TLS one, perhaps), or nil.
func tcpOf(c net.Conn) *net.TCPConn {
	switch v := c.(type) {
	case *net.TCPConn:
		return v
	case interface{ NetConn() net.Conn }:
		return tcpOf(v.NetConn())
	}
	return nil
}

// tuneRawConn sizes the socket buffers like the gRPC transport's.
func tuneRawConn(c net.Conn) {
	if tc := tcpOf(c); tc != nil {
		tc.SetNoDelay(true)
		tc.SetReadBuffer(4 * ioBufferSize)
		tc.SetWriteBuffer(4 * ioBufferSize)
	}
}

// abortConn closes c with a reset, so that the peer sees an error and not
// the end of a stream.
func abortConn(c net.Conn) {
	if tc := tcpOf(c); tc != nil {
		tc.SetLinger(0)
	}
	c.Close()
}

// dialRaw opens the raw connection of m to its right neighbour, once the
// neighbour accepted m's gRPC stream, with the handshake of creds.
func dialRaw(ctx context.Context, m Member, creds credentials.TransportCredentials) (*rawOut, error) {
	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", m.Right)
	if err != nil {
		return nil, fmt.Errorf("raw connection to right neighbour (rank %d at %s): %w", m.right(), m.Right, err)
	}
	tuneRawConn(tcp)
	conn, _, err := creds.ClientHandshake(ctx, m.Right, tcp)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("raw connection to right neighbour (rank %d at %s): handshake: %w", m.right(), m.Right, err)
	}
	var hello [len(rawMagic) + rawHelloLen]byte
	copy(hello[:], rawMagic[:])
	binary.LittleEndian.PutUint64(hello[8:], m.Generation)
	binary.LittleEndian.PutUint32(hello[16:], uint32(m.Rank))
	binary.LittleEndian.PutUint32(hello[20:], uint32(m.WorldSize))
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var answer [1]byte
	_, err = conn.Write(hello[:])
	if err == nil {
		_, err = io.ReadFull(conn, answer[:])
	}
	conn.SetDeadline(time.Time{})
	if err == nil && answer[0] != rawAccepted {
		err = fmt.Errorf("%w: generation %d rank %d: raw connection refused", ErrMismatch, m.Generation, m.Rank)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("raw connection to right neighbour (rank %d at %s): %w", m.right(), m.Right, err)
	}
	return &rawOut{conn: conn}, nil
}

// acceptRaw takes a dispatched connection whose magic has been read:
// it reads the hello and attaches the connection to the stream of that
// generation and sender.
func (t *GRPCTransport) acceptRaw(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var hello [rawHelloLen]byte
	if _, err := io.ReadFull(conn, hello[:]); err != nil {
		conn.Close()
		return
	}
	gen := binary.LittleEndian.Uint64(hello[0:])
	sender := binary.LittleEndian.Uint32(hello[8:])
	t.mu.Lock()
	in := t.parked[gen]
	if in == nil {
		in = t.claimed[gen]
	}
	t.mu.Unlock()
	if in == nil || in.hello.GetSenderRank() != sender || !in.attachRaw(conn) {
		conn.Write([]byte{rawRejected})
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	tuneRawConn(conn)
	if _, err := conn.Write([]byte{rawAccepted}); err != nil {
		in.finish(fmt.Errorf("raw connection from rank %d: %w", sender, err))
	}
}

// rawCreds are the transport credentials of a server built by
// NewGRPCServer: the transport's own (their handshake first), and then the
// connections that open with rawMagic dispatched to the transport.
type rawCreds struct {
	credentials.TransportCredentials
	t *GRPCTransport
}

func (c rawCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return nil, nil, err
	}
	c.t.rawServed.Store(true)
	var head [len(rawMagic)]byte
	n, err := io.ReadFull(conn, head[:])
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if bytes.Equal(head[:], rawMagic[:]) {
		go c.t.acceptRaw(conn)
		return nil, nil, credentials.ErrConnDispatched
	}
	return &replayConn{Conn: conn, head: head[:n]}, info, nil
}

func (c rawCreds) Clone() credentials.TransportCredentials {
	return rawCreds{TransportCredentials: c.TransportCredentials.Clone(), t: c.t}
}

// replayConn gives back the bytes ServerHandshake read to tell a gRPC
// connection from a raw one.
type replayConn struct {
	net.Conn
	mu   sync.Mutex
	head []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}
