package allreduce

import "errors"

// Errors of the ring. Every error an operation returns wraps one of these
// (or the context's error), so callers can branch with errors.Is.
var (
	// ErrClosed: the ring was closed (for example on a generation change).
	ErrClosed = errors.New("allreduce: ring closed")
	// ErrBroken: an earlier failure broke the ring; it accepts no more
	// operations. The wrapped cause says what failed first.
	ErrBroken = errors.New("allreduce: ring broken")
	// ErrStaleGeneration: a peer or a frame belongs to another (older)
	// generation than the ring.
	ErrStaleGeneration = errors.New("allreduce: stale generation")
	// ErrMismatch: the ranks disagree on the operation (sequence number,
	// bucket, length, element type or reduction), or on the ring's shape.
	ErrMismatch = errors.New("allreduce: ranks disagree")
	// ErrProtocol: a frame arrived out of schedule (wrong step, offset,
	// length or sender).
	ErrProtocol = errors.New("allreduce: protocol violation")
	// ErrPeerClosed: the left neighbour closed its stream while an operation
	// still expected data from it.
	ErrPeerClosed = errors.New("allreduce: neighbour closed the ring")
)
