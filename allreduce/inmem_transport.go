package allreduce

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// InmemNetwork is a Transport whose members live in one process and talk
// through channels; for tests of the ring. Members find each other by
// (generation, rank); Member.Right is ignored.
type InmemNetwork struct {
	mu     sync.Mutex
	pipes  map[pipeKey]*pipe
	newest uint64
}

var _ Transport = (*InmemNetwork)(nil)

// NewInmemNetwork returns an empty network.
func NewInmemNetwork() *InmemNetwork {
	return &InmemNetwork{pipes: make(map[pipeKey]*pipe)}
}

type pipeKey struct {
	gen uint64
	to  int
}

// pipe carries frames into rank `to` of a generation.
type pipe struct {
	from      int
	ch        chan *OutFrame
	eof       chan struct{} // closed by a graceful close of the sender
	broken    chan struct{} // closed when either end aborts
	eofOnce   sync.Once
	breakOnce sync.Once
	connected chan struct{} // closed when the receiver has claimed the pipe
}

func newPipe(from int) *pipe {
	return &pipe{
		from:      from,
		ch:        make(chan *OutFrame, 2),
		eof:       make(chan struct{}),
		broken:    make(chan struct{}),
		connected: make(chan struct{}),
	}
}

// abort breaks the pipe and releases the frames still in it.
func (p *pipe) abort() {
	p.breakOnce.Do(func() { close(p.broken) })
	for {
		select {
		case f := <-p.ch:
			f.Release()
		default:
			return
		}
	}
}
func (p *pipe) finish() { p.eofOnce.Do(func() { close(p.eof) }) }

// Connect implements Transport.
func (n *InmemNetwork) Connect(ctx context.Context, m Member) (Link, error) {
	n.mu.Lock()
	if m.Generation < n.newest {
		n.mu.Unlock()
		return nil, fmt.Errorf("%w: generation %d, network is at %d", ErrStaleGeneration, m.Generation, n.newest)
	}
	n.newest = m.Generation
	out := n.pipe(pipeKey{m.Generation, m.right()}, m.Rank)
	in := n.pipe(pipeKey{m.Generation, m.Rank}, m.left())
	n.mu.Unlock()
	if in.from != m.left() || out.from != m.Rank {
		return nil, fmt.Errorf("%w: generation %d rank %d: neighbours disagree on the world size", ErrMismatch, m.Generation, m.Rank)
	}
	close(in.connected)
	select {
	case <-out.connected:
	case <-ctx.Done():
		in.abort()
		return nil, fmt.Errorf("wait for rank %d: %w", m.right(), ctx.Err())
	}
	return &inmemLink{in: in, out: out}, nil
}

func (n *InmemNetwork) pipe(k pipeKey, from int) *pipe {
	p, ok := n.pipes[k]
	if !ok {
		p = newPipe(from)
		n.pipes[k] = p
	}
	return p
}

type inmemLink struct {
	in, out *pipe
}

func (l *inmemLink) Send(f *OutFrame) error {
	select {
	case <-l.out.broken:
		f.Release()
		return fmt.Errorf("inmem: stream to right neighbour broken")
	case <-l.out.eof:
		f.Release()
		return fmt.Errorf("inmem: stream closed")
	default:
	}
	select {
	case l.out.ch <- f:
		return nil
	case <-l.out.broken:
		f.Release()
		return fmt.Errorf("inmem: stream to right neighbour broken")
	}
}

func (l *inmemLink) Recv(s Sink) error {
	var g *OutFrame
	select {
	case g = <-l.in.ch:
	case <-l.in.broken:
		return fmt.Errorf("inmem: stream from left neighbour broken")
	case <-l.in.eof:
		select { // frames sent before the close come first
		case g = <-l.in.ch:
		default:
			return io.EOF
		}
	}
	defer g.Release()
	if err := s.Header(g.Header, len(g.Data)); err != nil {
		return err
	}
	if len(g.Data) > 0 {
		s.Data(g.Data)
	}
	return nil
}

func (l *inmemLink) Close(graceful bool) error {
	if graceful {
		l.out.finish()
	} else {
		l.out.abort()
	}
	l.in.abort()
	return nil
}
