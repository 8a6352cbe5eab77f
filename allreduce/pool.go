package allreduce

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// dirtyPool is a mem.BufferPool that does not clear the buffers it hands
// out. grpc fills every byte of a buffer it gets (socket reads, frame
// assembly) before anyone reads it, so grpc's default zeroing is pure cost:
// a memclr of every received byte.
type dirtyPool struct {
	tiers [maxTier + 1]sync.Pool // tier t holds buffers of capacity 1<<t
}

const (
	minTier = 8  // 256 B
	maxTier = 21 // 2 MiB
)

var peerBufferPool = &dirtyPool{}

var _ mem.BufferPool = (*dirtyPool)(nil)

func tierOf(size int) int {
	if size <= 1<<minTier {
		return minTier
	}
	return bits.Len(uint(size - 1))
}

func (p *dirtyPool) Get(size int) *[]byte {
	t := tierOf(size)
	if t > maxTier {
		b := make([]byte, size)
		return &b
	}
	if b, ok := p.tiers[t].Get().(*[]byte); ok {
		*b = (*b)[:size]
		return b
	}
	b := make([]byte, size, 1<<t)
	return &b
}

func (p *dirtyPool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minTier || c&(c-1) != 0 || c > 1<<maxTier {
		return // not one of ours
	}
	p.tiers[bits.Len(uint(c))-1].Put(b)
}
