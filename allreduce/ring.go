package allreduce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	pb "github.com/ringtrain/ringtrain/proto"
)

// Op is the reduction of an operation.
type Op int

const (
	// Mean sums over the ranks, then multiplies by 1/W.
	Mean Op = iota
	// Sum sums over the ranks.
	Sum
)

func (o Op) proto() pb.ReduceOp {
	if o == Sum {
		return pb.ReduceOp_REDUCE_OP_SUM
	}
	return pb.ReduceOp_REDUCE_OP_MEAN
}

// PlainBucket is the bucket id AllReduce and AllReduceFloat64 use.
const PlainBucket = -1

// releaseGrace bounds how long a failed operation waits for the transport
// to let go of the caller's buffer before returning anyway.
const releaseGrace = 100 * time.Millisecond

// Ring is one member of a ring all-reduce group for one generation. Its
// operations run one at a time in the order they were started, on a
// background goroutine; all ranks must start the same operations in the
// same order. Any failure breaks the ring for good: the failing operation
// and every later one return an error on every rank. Methods are safe for
// concurrent use.
type Ring struct {
	cfg   Config
	sched schedule // n and chunk filled per operation
	link  Link

	mu      sync.Mutex
	queue   []*op
	running bool
	nextSeq uint64
	closing bool
	wake    chan struct{} // cap 1: queue changed

	stopOnce sync.Once
	stopped  chan struct{} // closed once the ring failed or closed
	err      error         // why; set before stopped is closed

	sink    chunkSink       // the operation loop's expectation, reused
	expect  chan *chunkSink // operation loop → recvLoop: the next chunk
	got     chan error      // recvLoop → operation loop: that chunk's result
	recvErr error           // why recvLoop exited; set before recvExit closes
	recvOut chan struct{}   // closed when recvLoop exits

	stageMu sync.Mutex
	stages  [][]uint16 // free bfloat16 chunk buffers (WireBF16)

	sendMu   sync.Mutex
	sendQ    []*OutFrame
	sendDone bool          // sendLoop has exited
	sendWake chan struct{} // cap 1

	wg sync.WaitGroup
}

// New connects this member to its neighbours through t and returns the
// ring. It blocks until the neighbours of the generation are connected too,
// or ctx ends. For WorldSize 1 it connects nothing and t may be nil.
func New(ctx context.Context, t Transport, cfg Config) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	r := &Ring{
		cfg:      cfg,
		sched:    schedule{w: cfg.WorldSize, rank: cfg.Rank},
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		sendWake: make(chan struct{}, 1),
		expect:   make(chan *chunkSink),
		got:      make(chan error, 1),
		recvOut:  make(chan struct{}),
	}
	if cfg.WorldSize > 1 {
		m := cfg.member()
		link, err := t.Connect(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("allreduce: generation %d rank %d/%d: connect: %w", cfg.Generation, cfg.Rank, cfg.WorldSize, err)
		}
		r.link = link
		r.wg.Add(2)
		go r.sendLoop()
		go r.recvLoop()
	}
	r.wg.Add(1)
	go r.execLoop()
	return r, nil
}

// Generation, Rank and WorldSize describe the ring.
func (r *Ring) Generation() uint64 { return r.cfg.Generation }
func (r *Ring) Rank() int          { return r.cfg.Rank }
func (r *Ring) WorldSize() int     { return r.cfg.WorldSize }

// Handle is a started operation.
type Handle struct {
	r  *Ring
	op *op
}

// Wait blocks until the operation is done and returns its error. If the
// operation's context ends first, Wait breaks the ring (the other ranks
// cannot finish without this one) and returns the context's error. When
// Wait returns, the ring no longer touches the buffer.
func (h *Handle) Wait() error {
	select {
	case <-h.op.done:
	case <-h.op.ctx.Done():
		// A running operation watches its context itself; a queued one
		// cannot be skipped without the other ranks.
		h.r.mu.Lock()
		queued := !h.op.started
		h.r.mu.Unlock()
		if queued {
			h.r.fail(fmt.Errorf("op %d (bucket %d) still queued: %w", h.op.seq, h.op.bucket, h.op.ctx.Err()))
		}
		<-h.op.done
	}
	return h.op.err
}

// Done is closed when the operation has finished.
func (h *Handle) Done() <-chan struct{} { return h.op.done }

// Start queues an all-reduce (mean) of buf in place and returns at once.
// bucket is the caller's id for buf; the ranks must agree on it. buf is
// not to be touched until Wait returns.
func (r *Ring) Start(ctx context.Context, bucket int, buf []float32) *Handle {
	return r.start(ctx, &op{bucket: int32(bucket), kind: Mean, f32: buf})
}

// StartOp is Start with the given reduction.
func (r *Ring) StartOp(ctx context.Context, bucket int, buf []float32, o Op) *Handle {
	return r.start(ctx, &op{bucket: int32(bucket), kind: o, f32: buf})
}

// AllReduce replaces buf by the element-wise mean over the ranks.
func (r *Ring) AllReduce(ctx context.Context, buf []float32) error {
	return r.start(ctx, &op{bucket: PlainBucket, kind: Mean, f32: buf}).Wait()
}

// AllReduceOp replaces buf by its reduction o over the ranks.
func (r *Ring) AllReduceOp(ctx context.Context, buf []float32, o Op) error {
	return r.start(ctx, &op{bucket: PlainBucket, kind: o, f32: buf}).Wait()
}

// AllReduceFloat64 replaces buf by its reduction o over the ranks, in
// float64 (for losses, token counts and other small vectors).
func (r *Ring) AllReduceFloat64(ctx context.Context, buf []float64, o Op) error {
	return r.start(ctx, &op{bucket: PlainBucket, kind: o, f64: buf, isF64: true}).Wait()
}

// Close ends the ring. Pending and later operations fail with ErrClosed.
// If no operation is pending, the neighbours receive everything sent and
// then see a clean end of stream: Close waits until the right neighbour
// has read the stream to its end, which its receive loop acknowledges as
// soon as it gets there (not after its own Close), so rings closed on every
// rank at once do not wait on each other. Only a right neighbour that does
// not read (gone silent, or its ring of this generation never created)
// holds Close up, for at most Config.CloseTimeout.
// Idempotent; it returns once the ring's goroutines have exited.
func (r *Ring) Close() error {
	r.mu.Lock()
	busy := r.running || len(r.queue) > 0
	r.closing = true
	r.mu.Unlock()
	r.stop(ErrClosed, !busy)
	r.wg.Wait()
	return nil
}

// Done is closed as soon as the ring stops: it broke (Err says why) or was
// closed. A broken stream is known here at once, even while the caller
// computes and has no operation pending.
func (r *Ring) Done() <-chan struct{} { return r.stopped }

// Err returns why the ring stopped, or nil while it works.
func (r *Ring) Err() error {
	select {
	case <-r.stopped:
		return r.err
	default:
		return nil
	}
}

// op is one queued operation.
type op struct {
	ctx    context.Context
	seq    uint64
	bucket int32
	kind   Op
	f32    []float32
	f64    []float64
	isF64  bool
	wire16 bool // float32 data travels as bfloat16

	started bool // dequeued by the operation loop; guarded by Ring.mu
	done    chan struct{}
	err     error

	// Sends the transport still holds: all of them, and those of the
	// reduce-scatter, whose segments the all-gather overwrites later.
	pending, pendingRS atomic.Int64
	drained            chan struct{} // cap 1: a pending count reached 0
}

func (o *op) len() int {
	if o.isF64 {
		return len(o.f64)
	}
	return len(o.f32)
}

// elemSize is the size of an element on the wire.
func (o *op) elemSize() int {
	switch {
	case o.isF64:
		return 8
	case o.wire16:
		return 2
	}
	return 4
}

func (o *op) dtype() pb.DType {
	switch {
	case o.isF64:
		return pb.DType_DTYPE_FLOAT64
	case o.wire16:
		return pb.DType_DTYPE_BFLOAT16
	}
	return pb.DType_DTYPE_FLOAT32
}

// bytes returns the bytes of elements [off, off+n): a view of the buffer.
func (o *op) bytes(off, n int) []byte {
	if n == 0 {
		return nil
	}
	if o.isF64 {
		return unsafe.Slice((*byte)(unsafe.Pointer(&o.f64[off])), n*8)
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&o.f32[off])), n*4)
}

func (r *Ring) start(ctx context.Context, o *op) *Handle {
	if ctx == nil {
		ctx = context.Background()
	}
	o.wire16 = !o.isF64 && r.cfg.Wire == WireBF16
	o.ctx = ctx
	o.done = make(chan struct{})
	o.drained = make(chan struct{}, 1)
	h := &Handle{r: r, op: o}
	r.mu.Lock()
	o.seq = r.nextSeq
	r.nextSeq++
	if r.closing {
		r.mu.Unlock()
		o.err = ErrClosed
		if err := r.Err(); err != nil {
			o.err = err
		}
		close(o.done)
		return h
	}
	r.queue = append(r.queue, o)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return h
}

// stop stops the ring once, with err as the reason. graceful asks the link
// to deliver what was sent before ending the streams.
func (r *Ring) stop(err error, graceful bool) {
	r.stopOnce.Do(func() {
		r.err = err
		close(r.stopped)
		if r.link != nil {
			r.link.Close(graceful)
		}
	})
}

// fail breaks the ring because of err.
func (r *Ring) fail(err error) {
	r.stop(fmt.Errorf("%w: %w", ErrBroken, err), false)
}

func (r *Ring) execLoop() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		var o *op
		if len(r.queue) > 0 {
			o = r.queue[0]
			r.queue[0] = nil
			r.queue = r.queue[1:]
			r.running = true
			o.started = true
		}
		r.mu.Unlock()
		if o == nil {
			select {
			case <-r.wake:
				continue
			case <-r.stopped:
			}
			r.mu.Lock()
			if len(r.queue) > 0 {
				r.mu.Unlock()
				continue // fail what is left
			}
			r.closing = true
			r.mu.Unlock()
			return
		}
		var err error
		select {
		case <-r.stopped:
			err = r.err
		default:
			err = r.run(o)
			if err != nil {
				r.fail(err)
				err = r.Err() // the first failure, which may be another's
				r.awaitRelease(o)
			}
		}
		o.err = err
		close(o.done)
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
	}
}

// awaitRelease waits a little for the transport to let go of o's buffer.
func (r *Ring) awaitRelease(o *op) {
	t := time.NewTimer(releaseGrace)
	defer t.Stop()
	for o.pending.Load() != 0 {
		select {
		case <-o.drained:
		case <-t.C:
			return
		}
	}
}

// run executes one operation: the pipelined reduce-scatter and all-gather.
func (r *Ring) run(o *op) error {
	if err := o.ctx.Err(); err != nil {
		return fmt.Errorf("op %d (bucket %d): %w", o.seq, o.bucket, err)
	}
	w := r.cfg.WorldSize
	n := o.len()
	if w == 1 || n == 0 {
		return nil // the mean of one rank is itself: multiplying by 1 is exact
	}
	s := r.sched
	s.n = n
	s.chunk = r.cfg.ChunkBytes / o.elemSize()
	want := Header{
		Generation: r.cfg.Generation,
		OpSeq:      o.seq,
		Bucket:     o.bucket,
		Total:      uint64(n),
		DType:      o.dtype(),
		Op:         o.kind.proto(),
		SenderRank: uint32(r.cfg.Rank),
	}
	tmpl := want
	// send queues chunk k of seg for step; stage, if not nil, holds its
	// bfloat16 encoding already (the receive of the step before wrote it).
	send := func(step, seg, k int, stage []uint16) {
		off, cnt := s.chunkRange(seg, k)
		h := tmpl
		h.Step, h.Offset, h.Count = uint32(step), uint64(off), uint32(cnt)
		o.pending.Add(1)
		rs := s.reducing(step)
		if rs {
			o.pendingRS.Add(1)
		}
		f := &OutFrame{Header: h}
		switch {
		case stage != nil:
			f.Data = u16Bytes(stage)
		case o.wire16 && cnt > 0:
			// Encoded by the send loop just before the link takes it,
			// into a chunk buffer that is still in cache when it is sent
			// (and that the release hands back).
			f.encode = func() {
				stage = r.getStage(cnt)
				encode16(stage, o.f32[off:off+cnt])
				f.Data = u16Bytes(stage)
			}
		default:
			f.Data = o.bytes(off, cnt)
		}
		f.Release = func() {
			if stage != nil {
				r.putStage(stage)
			}
			if rs && o.pendingRS.Add(-1) == 0 {
				notify(o.drained)
			}
			if o.pending.Add(-1) == 0 {
				notify(o.drained)
			}
		}
		r.enqueueSend(f)
	}
	// Receives block in the transport; the context's end breaks the ring,
	// which unblocks them.
	stop := context.AfterFunc(o.ctx, func() {
		r.fail(fmt.Errorf("op %d (bucket %d): %w", o.seq, o.bucket, o.ctx.Err()))
	})
	defer stop()

	seg0 := s.sendSeg(0)
	for k := range s.chunks(seg0) {
		send(0, seg0, k, nil)
	}
	want.SenderRank = uint32(mod(r.cfg.Rank-1, w))
	sk := &r.sink
	sk.elemSize, sk.wire16 = o.elemSize(), o.wire16
	sk.scale32, sk.scale64 = 1/float32(w), 1/float64(w)
	for step := range s.steps() {
		seg := s.recvSeg(step)
		sk.mode = modeAdd
		switch {
		case !s.reducing(step):
			sk.mode = modeCopy
		case s.final(step) && o.kind == Mean:
			sk.mode = modeAddScale
		case s.final(step) && o.wire16:
			sk.mode = modeAddRound
		}
		if step == w-1 {
			// The all-gather overwrites the segments of the
			// reduce-scatter's sends: the one of step s at step W−1+s.
			// Those of steps ≥ 1 have left before their segment can come
			// back completed (the owner adds them in), but only the
			// transport's release says so to the memory model, and a
			// bfloat16 send reads the buffer when it leaves.
			if err := r.awaitPending(o, &o.pendingRS); err != nil {
				return err
			}
		}
		for k := range s.chunks(seg) {
			off, cnt := s.chunkRange(seg, k)
			sk.want = want
			sk.want.Step, sk.want.Offset, sk.want.Count = uint32(step), uint64(off), uint32(cnt)
			sk.pos, sk.nc, sk.err = 0, 0, nil
			sk.f32, sk.f64 = nil, nil
			if o.isF64 {
				sk.f64 = o.f64[off : off+cnt]
			} else {
				sk.f32 = o.f32[off : off+cnt]
			}
			forward := step+1 < s.steps()
			sk.out16 = nil
			if o.wire16 && forward {
				// The sink writes the encoding of what is forwarded
				// while the block is in cache.
				sk.out16 = r.getStage(cnt)
			}
			if err := r.receive(sk); err != nil {
				if sk.out16 != nil {
					r.putStage(sk.out16)
				}
				return fmt.Errorf("op %d (bucket %d) step %d: %w", o.seq, o.bucket, step, err)
			}
			if forward {
				send(step+1, seg, k, sk.out16)
			}
		}
	}
	return r.awaitPending(o, &o.pending)
}

// awaitPending waits until the transport released the sends counted by c.
func (r *Ring) awaitPending(o *op, c *atomic.Int64) error {
	for c.Load() != 0 {
		select {
		case <-o.drained:
		case <-o.ctx.Done():
			return fmt.Errorf("op %d (bucket %d): waiting for sends: %w", o.seq, o.bucket, o.ctx.Err())
		case <-r.stopped:
			return r.err
		}
	}
	return nil
}

// getStage returns a free bfloat16 chunk buffer of n elements.
func (r *Ring) getStage(n int) []uint16 {
	r.stageMu.Lock()
	defer r.stageMu.Unlock()
	for len(r.stages) > 0 {
		b := r.stages[len(r.stages)-1]
		r.stages = r.stages[:len(r.stages)-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]uint16, n)
}

func (r *Ring) putStage(b []uint16) {
	r.stageMu.Lock()
	r.stages = append(r.stages, b)
	r.stageMu.Unlock()
}

// u16Bytes returns the bytes of b.
func u16Bytes(b []uint16) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), 2*len(b))
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (r *Ring) enqueueSend(f *OutFrame) {
	r.sendMu.Lock()
	if r.sendDone {
		r.sendMu.Unlock()
		f.Release()
		return
	}
	r.sendQ = append(r.sendQ, f)
	r.sendMu.Unlock()
	notify(r.sendWake)
}

// stopSending releases the frames that will never be sent.
func (r *Ring) stopSending(rest []*OutFrame) {
	r.sendMu.Lock()
	r.sendDone = true
	rest = append(rest, r.sendQ...)
	r.sendQ = nil
	r.sendMu.Unlock()
	for _, f := range rest {
		if f != nil {
			f.Release()
		}
	}
}

// sendLoop hands queued frames to the link in order. The queue is
// unbounded so that the operation loop never waits for the network, which
// could otherwise deadlock the ring.
func (r *Ring) sendLoop() {
	defer r.wg.Done()
	var batch []*OutFrame
	for {
		r.sendMu.Lock()
		batch, r.sendQ = r.sendQ, batch[:0]
		r.sendMu.Unlock()
		if len(batch) == 0 {
			select {
			case <-r.sendWake:
				continue
			case <-r.stopped:
				r.stopSending(nil)
				return
			}
		}
		for i, f := range batch {
			if f.encode != nil {
				f.encode()
			}
			if err := r.link.Send(f); err != nil {
				r.fail(fmt.Errorf("send to right neighbour (rank %d): %w", r.cfg.member().right(), err))
				r.stopSending(batch[i+1:])
				return
			}
			batch[i] = nil
		}
	}
}

// receive hands the expectation sk to recvLoop and waits for its chunk.
func (r *Ring) receive(sk *chunkSink) error {
	select {
	case r.expect <- sk:
	case <-r.recvOut:
		return r.recvErr
	case <-r.stopped:
		return r.err
	}
	select {
	case err := <-r.got:
		if err != nil && r.Err() != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrStaleGeneration) {
			err = r.Err() // the cause, not its symptom
		}
		return err
	case <-r.stopped:
		return r.err
	}
}

// recvLoop reads the left neighbour's stream for the ring's whole life, so
// that a failure or a graceful end is seen even between operations. Each
// frame's header waits for the operation loop's expectation (dispatcher),
// then the data goes straight into place.
func (r *Ring) recvLoop() {
	defer r.wg.Done()
	defer close(r.recvOut)
	left := r.cfg.member().left()
	d := dispatcher{r: r}
	for {
		err := r.link.Recv(&d)
		if cur := d.cur; cur != nil {
			d.cur = nil
			if err == nil {
				err = cur.done()
			}
			if cur.err != nil {
				err = cur.err
			}
			if err != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrStaleGeneration) {
				err = fmt.Errorf("receive from left neighbour (rank %d): %w", left, err)
			}
			r.got <- err
			if err != nil {
				r.recvErr = err
				return
			}
			continue
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			r.recvErr = fmt.Errorf("%w (rank %d)", ErrPeerClosed, left)
			return
		default:
			r.recvErr = fmt.Errorf("receive from left neighbour (rank %d): %w", left, err)
			r.fail(r.recvErr)
			return
		}
	}
}

// dispatcher is recvLoop's Sink: it routes a frame to the expectation the
// operation loop hands over, waiting for one if the frame is early.
type dispatcher struct {
	r   *Ring
	cur *chunkSink
}

func (d *dispatcher) Header(h Header, n int) error {
	select {
	case d.cur = <-d.r.expect:
		return d.cur.Header(h, n)
	case <-d.r.stopped:
		return d.r.err
	}
}

func (d *dispatcher) Data(p []byte) { d.cur.Data(p) }

// Dest implements destSink.
func (d *dispatcher) Dest() []byte { return d.cur.Dest() }
