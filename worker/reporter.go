package worker

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/cluster"
	pb "github.com/ringtrain/ringtrain/proto"
)

// refusedFor is how long a refused report is offered again before it is
// dropped (the coordinator may not know this worker's incarnation yet).
const refusedFor = time.Minute

// maxBatch is the most reports sent in one call (the coordinator's limit).
const maxBatch = 1000

// maxQueued bounds the reports kept while no coordinator answers (the
// oldest step reports go first): hours of steps at a few hundred bytes each.
const maxQueued = 50000

// reporter sends reports to whichever coordinator leads, in order, off the
// training path: training never waits for it. Reports wait while there is
// no coordinator (it died, etcd is away) and go to the next one.
type reporter struct {
	log  *slog.Logger
	dial []grpc.DialOption
	// coord holds the leader's record (nil: none).
	coord *cluster.Latest[*cluster.CoordinatorRecord]

	mu    sync.Mutex
	queue []*pb.WorkerReport
	wake  chan struct{} // cap 1
}

func newReporter(log *slog.Logger, coord *cluster.Latest[*cluster.CoordinatorRecord], dial []grpc.DialOption) *reporter {
	return &reporter{log: log, coord: coord, dial: dial, wake: make(chan struct{}, 1)}
}

// send queues r.
func (r *reporter) send(rep *pb.WorkerReport) {
	r.mu.Lock()
	if len(r.queue) >= maxQueued {
		r.queue = r.queue[1:]
	}
	r.queue = append(r.queue, rep)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run delivers queued reports until ctx ends, then tries for a moment to
// deliver what is left.
func (r *reporter) run(ctx context.Context) {
	var cc *grpc.ClientConn
	var addr string
	defer func() {
		if cc != nil {
			cc.Close()
		}
	}()
	fails := 0
	var refusedSince time.Time
	for {
		rec, _, changed := r.coord.Get()
		r.mu.Lock()
		batch := slices.Clone(r.queue[:min(len(r.queue), maxBatch)])
		r.mu.Unlock()
		if len(batch) == 0 || rec == nil {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			case <-changed:
			}
			continue
		}
		if rec.Address != addr || cc == nil {
			if cc != nil {
				cc.Close()
			}
			var err error
			if cc, err = grpc.NewClient(rec.Address, r.dial...); err != nil {
				r.log.Warn("coordinator address", "address", rec.Address, "err", err)
				cc = nil
				select {
				case <-changed:
				case <-ctx.Done():
					return
				}
				continue
			}
			addr = rec.Address
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		acks, err := pb.NewCoordinatorClient(cc).ReportBatch(sctx, &pb.WorkerReports{Reports: batch})
		cancel()
		done := 0 // reports delivered
		if err == nil {
			done = len(batch)
			// Delivered up to the first refusal: the coordinator does not
			// know this incarnation yet (the report overtook the
			// registration), or it never will: retry a few times.
			for i, ack := range acks.GetAcks() {
				if ack.GetRefused() == "" {
					continue
				}
				if refusedSince.IsZero() {
					refusedSince = time.Now()
				}
				if time.Since(refusedSince) > refusedFor {
					r.log.Warn("report refused for a minute; dropping it", "kind", batch[i].GetKind(), "why", ack.GetRefused())
					continue
				}
				r.log.Debug("report refused", "kind", batch[i].GetKind(), "why", ack.GetRefused())
				done, err = i, errRefused
				break
			}
			if err == nil {
				refusedSince = time.Time{}
			}
		}
		if done > 0 {
			r.mu.Lock()
			n := 0
			for n < done && n < len(r.queue) && r.queue[n] == batch[n] {
				n++
			}
			r.queue = r.queue[n:]
			r.mu.Unlock()
		}
		if err == nil {
			fails = 0
			continue
		}
		fails++
		if ctx.Err() != nil {
			return
		}
		if fails == 3 {
			r.log.Warn("coordinator does not answer; keeping reports until it does", "address", addr, "err", err)
		}
		select {
		case <-time.After(cluster.Backoff(min(fails, 4))):
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// drain waits up to d for the queue to empty (at exit).
func (r *reporter) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := len(r.queue)
		r.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
