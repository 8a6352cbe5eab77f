package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/ringtrain/ringtrain/cluster"
	pb "github.com/ringtrain/ringtrain/proto"
)

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
	for {
		rec, _, changed := r.coord.Get()
		r.mu.Lock()
		var next *pb.WorkerReport
		if len(r.queue) > 0 {
			next = r.queue[0]
		}
		r.mu.Unlock()
		if next == nil || rec == nil {
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
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ack, err := pb.NewCoordinatorClient(cc).Report(sctx, next)
		cancel()
		if err == nil && ack.GetRefused() != "" {
			// The coordinator does not know this incarnation yet (the report
			// overtook the registration), or it never will: retry a few times.
			r.log.Debug("report refused", "kind", next.GetKind(), "why", ack.GetRefused())
			err = errRefused
			if fails > 10 {
				r.log.Warn("report refused; dropping it", "kind", next.GetKind(), "why", ack.GetRefused())
				err = nil
			}
		}
		if err == nil {
			fails = 0
			r.mu.Lock()
			if len(r.queue) > 0 && r.queue[0] == next {
				r.queue = r.queue[1:]
			}
			r.mu.Unlock()
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

// clone copies a report template.
func clone(rep *pb.WorkerReport) *pb.WorkerReport { return proto.Clone(rep).(*pb.WorkerReport) }
