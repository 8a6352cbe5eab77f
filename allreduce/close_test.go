package allreduce

import (
	"fmt"
	"testing"
	"time"
)

// TestCloseIdlePrompt: closing an idle ring returns at once on every rank,
// whether all ranks close at the same time (the end of a generation) or
// one rank closes while its neighbours stay open. A graceful close waits
// for the right neighbour to have read the stream to its end, which that
// neighbour's receive loop acknowledges as soon as it reads the end, not
// after its own close; were the acknowledgement tied to the neighbour's
// close, simultaneous closes would wait on each other around the ring for
// the whole Config.CloseTimeout. The bound is a hang check far below that
// timeout, not a benchmark.
func TestCloseIdlePrompt(t *testing.T) {
	const (
		closeTimeout = 10 * time.Second
		bound        = 5 * time.Second
	)
	type tc struct {
		w       int
		afterOp bool // an operation ran before the close
		all     bool // every rank closes at once; else only rank 0
	}
	var cases []tc
	for _, w := range []int{2, 3, 4} {
		for _, afterOp := range []bool{false, true} {
			for _, all := range []bool{true, false} {
				cases = append(cases, tc{w, afterOp, all})
			}
		}
	}
	for _, kind := range transportKinds {
		for _, c := range cases {
			name := fmt.Sprintf("%s/W=%d/afterOp=%v/all=%v", kind.name, c.w, c.afterOp, c.all)
			t.Run(name, func(t *testing.T) {
				cl := kind.build(t, Config{Generation: 1, WorldSize: c.w, ChunkBytes: 64, CloseTimeout: closeTimeout}, nil)
				if c.afterOp {
					ctx := testCtx(t)
					xs := inputs(11, c.w, 300)
					bufs := clone(xs)
					for rank, err := range cl.each(func(rank int, r *Ring) error { return r.AllReduce(ctx, bufs[rank]) }) {
						if err != nil {
							t.Fatalf("rank %d: %v", rank, err)
						}
						sameBits(t, fmt.Sprintf("rank %d", rank), bufs[rank], reference(xs, Mean))
					}
				}
				took := make([]time.Duration, c.w)
				for rank, err := range cl.each(func(rank int, r *Ring) error {
					if rank != 0 && !c.all {
						return nil
					}
					t0 := time.Now()
					err := r.Close()
					took[rank] = time.Since(t0)
					return err
				}) {
					if err != nil {
						t.Fatalf("rank %d: Close: %v", rank, err)
					}
					if rank != 0 && !c.all {
						continue
					}
					t.Logf("rank %d: Close took %v", rank, took[rank])
					if took[rank] >= bound {
						t.Errorf("rank %d: Close of an idle ring took %v (CloseTimeout %v): it waited for a neighbour's close", rank, took[rank], closeTimeout)
					}
				}
				if !c.all {
					// The neighbours learn of it: their next operation fails.
					ctx := testCtx(t)
					for rank, err := range cl.each(func(rank int, r *Ring) error {
						if rank == 0 {
							return nil
						}
						return r.AllReduce(ctx, make([]float32, 100))
					})[1:] {
						if err == nil {
							t.Errorf("rank %d: no error after rank 0 closed", rank+1)
						}
					}
				}
			})
		}
	}
}
