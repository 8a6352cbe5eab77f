package allreduce

// schedule is the ring algorithm for one operation, free of I/O: which
// segment a rank sends and receives at each step, and how segments split
// into chunks.
//
// The buffer of n elements splits into W segments; segment j starts at
// j·⌊n/W⌋ + min(j, n mod W) and the first n mod W segments are one element
// longer. There are 2(W−1) steps. At step s rank r sends segment (r−s) mod W
// to its right neighbour and receives segment (r−s−1) mod W from its left
// neighbour: steps 0 … W−2 are the reduce-scatter (the receiver adds its own
// values to what arrives), steps W−1 … 2W−3 the all-gather (the receiver
// stores what arrives). What a rank receives at step s it sends at step s+1,
// chunk by chunk, which pipelines the ring. Segment c is summed along the
// ring starting at rank c, in the order x_c + x_{c+1} + … + x_{c−1}, and
// completed by rank c−1, which scales it (for a mean) before the all-gather
// sends the same bits to everyone.
type schedule struct {
	n, w, rank int
	chunk      int // elements per chunk
}

// steps is the number of ring steps, 2(W−1).
func (s schedule) steps() int { return 2 * (s.w - 1) }

// sendSeg is the segment rank sends at step.
func (s schedule) sendSeg(step int) int { return mod(s.rank-step, s.w) }

// recvSeg is the segment rank receives at step.
func (s schedule) recvSeg(step int) int { return mod(s.rank-step-1, s.w) }

// reducing reports whether step belongs to the reduce-scatter.
func (s schedule) reducing(step int) bool { return step < s.w-1 }

// final reports whether the segment received at step is complete after the
// receiver's add: the last reduce-scatter step.
func (s schedule) final(step int) bool { return step == s.w-2 }

// segment returns the element range [off, off+n) of segment j.
func (s schedule) segment(j int) (off, n int) {
	q, r := s.n/s.w, s.n%s.w
	off = j*q + min(j, r)
	n = q
	if j < r {
		n++
	}
	return off, n
}

// chunks returns the number of chunks of segment j.
func (s schedule) chunks(j int) int {
	_, n := s.segment(j)
	return (n + s.chunk - 1) / s.chunk
}

// chunkRange returns the element range of chunk k of segment j.
func (s schedule) chunkRange(j, k int) (off, n int) {
	off, segN := s.segment(j)
	start := k * s.chunk
	return off + start, min(s.chunk, segN-start)
}

func mod(a, m int) int {
	a %= m
	if a < 0 {
		a += m
	}
	return a
}
