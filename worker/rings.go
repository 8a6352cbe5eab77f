package worker

import (
	"cmp"
	"context"
	"time"

	"github.com/ringtrain/ringtrain/allreduce"
)

// AllreduceRings joins rings of package allreduce over a transport (the
// gRPC one in a cluster, the in-memory one in tests).
type AllreduceRings struct {
	Transport allreduce.Transport
	// CloseTimeout bounds the graceful close of a ring at the end of a
	// generation (default 500ms: nothing is pending then, and a neighbour
	// that is gone must not hold the next generation up).
	CloseTimeout time.Duration
}

var (
	_ Rings = AllreduceRings{}
	_ Ring  = (*allreduce.Ring)(nil)
)

// Join implements Rings.
func (a AllreduceRings) Join(ctx context.Context, generation int64, rank int, addrs []string, wire allreduce.Wire) (Ring, error) {
	return allreduce.New(ctx, a.Transport, allreduce.Config{
		Generation: uint64(generation), Rank: rank, WorldSize: len(addrs), Peers: addrs, Wire: wire,
		CloseTimeout: cmp.Or(a.CloseTimeout, 500*time.Millisecond),
	})
}
