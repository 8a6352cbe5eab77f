package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/heal"
	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/trainer"
)

// Bounds of a generation's start.
const (
	joinTimeout     = 15 * time.Second // all neighbours connected
	transferTimeout = 5 * time.Minute  // a state transfer or checkpoint load
)

// run is one generation's run: its ring, the opening handshake and heal,
// and the steps, until the ranks agree to stop or the ring breaks.
type run struct {
	w    *Worker
	g    *cluster.Generation
	rank int
	log  *slog.Logger
	tr   Trainer
	ring Ring

	stop     chan struct{} // closed by StopAtBoundary: vote to stop after the step in flight
	stopOnce sync.Once
	phase    phaseNote
}

// phaseNote is what the run does, for heartbeats.
type phaseNote struct {
	mu    sync.Mutex
	what  string
	since time.Time
}

func (p *phaseNote) set(what string) {
	p.mu.Lock()
	p.what, p.since = what, time.Now()
	p.mu.Unlock()
}

func (p *phaseNote) get() (string, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.what, p.since
}

func (r *run) stopRequested() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

func (r *run) version() cluster.Version {
	return cluster.Version{Step: r.tr.Completed(), Generation: r.tr.Lineage()}
}

// report queues a report about this run.
func (r *run) report(kind pb.WorkerReport_Kind, fill func(*pb.WorkerReport)) {
	v := r.version()
	rep := &pb.WorkerReport{Name: r.w.cfg.Name, Incarnation: r.w.incarnation(), Generation: r.g.ID, Rank: int32(r.rank),
		Kind: kind, Step: v.Step, Lineage: v.Generation, WorldSize: int32(len(r.g.Members))}
	if fill != nil {
		fill(rep)
	}
	r.w.rep.send(rep)
}

// execute runs the generation. The returned error is set for
// OutcomeFatal (and describes a ring failure).
func (r *run) execute(ctx context.Context) (Outcome, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, tr := r.g, r.tr
	world := len(g.Members)
	r.log.Info("joining generation", "mode", g.Mode, "state", r.version())
	r.w.cfg.Metrics.joined(g.ID, r.rank, world)
	r.phase.set("join")
	if err := tr.SetWorld(r.rank, world); err != nil {
		return OutcomeFatal, err
	}
	// Until the first step, the ranks are at a step boundary: a newer
	// generation abandons the start at once (nothing is lost), where during
	// training it waits for the step in flight.
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go func() {
		select {
		case <-r.stop:
			scancel()
		case <-sctx.Done():
		}
	}()
	wire, err := allreduce.ParseWire(r.w.job().Train.AllReduce)
	if err != nil {
		return OutcomeFatal, fmt.Errorf("train.allreduce: %w", err)
	}
	jctx, jcancel := context.WithTimeout(sctx, joinTimeout)
	ring, err := r.w.cfg.Rings.Join(jctx, g.ID, r.rank, g.Addresses(), wire)
	jcancel()
	if err != nil {
		if r.stopRequested() {
			return OutcomeBoundary, nil
		}
		return r.ringFailed(ctx, fmt.Errorf("join the ring of generation %d: %w", g.ID, err))
	}
	defer ring.Close()
	r.ring = ring
	// A broken stream is known at once: report it while this rank may
	// still be computing, so the coordinator re-forms without delay.
	watchDone := make(chan struct{})
	defer close(watchDone)
	go func() {
		select {
		case <-ring.Done():
			if err := ring.Err(); err != nil && ctx.Err() == nil {
				r.report(pb.WorkerReport_KIND_RING_FAILED, func(rep *pb.WorkerReport) { rep.Error = err.Error() })
			}
		case <-watchDone:
		}
	}()
	hb := r.heartbeats(ctx)
	defer hb()

	start := time.Now()
	healed, err := r.start(sctx)
	scancel()
	if err != nil {
		if ctx.Err() != nil {
			return OutcomeAborted, nil
		}
		if r.stopRequested() {
			return OutcomeBoundary, nil
		}
		if ring.Err() != nil || errors.Is(err, heal.ErrNotOffered) {
			return OutcomeRingFailed, err
		}
		if coordinatorAway(err) { // the checkpoint could not be had: the next generation tries again
			return r.ringFailed(ctx, err)
		}
		return OutcomeFatal, err
	}
	r.report(pb.WorkerReport_KIND_READY, func(rep *pb.WorkerReport) {
		rep.HealSeconds, rep.HealSource, rep.HealBytes, rep.LoadedCheckpoint = healed.seconds, int32(healed.source), healed.bytes, healed.loaded
	})
	r.log.Info("ready", "state", r.version(), "plan", healed.plan, "seconds", time.Since(start).Seconds())
	if g.Mode == cluster.ModeDrain {
		if err := r.checkpointIfDue(ctx, true); err != nil {
			return r.failedOr(ctx, err)
		}
		r.report(pb.WorkerReport_KIND_DRAINED, nil)
		return OutcomeDrained, nil
	}
	return r.train(ctx)
}

type healInfo struct {
	plan    heal.Plan
	source  int // −1: nothing fetched
	seconds float64
	bytes   uint64
	loaded  bool
}

// start makes every rank hold the same state: the newest any rank holds
// (or the checkpoint, if it is newer), fetched by the ranks that are
// behind from the one that has it, then checked by comparing hashes.
func (r *run) start(ctx context.Context) (healInfo, error) {
	g, tr, world := r.g, r.tr, len(r.g.Members)
	hs := make([]float64, 3*world)
	heal.Encode(hs, r.rank, heal.Peer{Version: r.version(), Hash: tr.StateHash()})
	hctx, cancel := context.WithTimeout(ctx, joinTimeout)
	err := r.ring.AllReduceFloat64(hctx, hs, opSum)
	cancel()
	if err != nil {
		return healInfo{}, fmt.Errorf("handshake: %w", err)
	}
	peers := heal.DecodeAll(hs)
	plan := heal.Decide(peers, g.Checkpoint)
	info := healInfo{plan: plan, source: -1}
	t0 := time.Now()
	if plan.LoadCheckpoint && r.rank == plan.Source {
		r.phase.set("load checkpoint")
		n, err := r.w.loadCheckpoint(ctx, tr, plan.Target)
		if err != nil {
			return info, r.discard(fmt.Errorf("load the checkpoint of %v: %w", plan.Target, err))
		}
		info.source, info.loaded, info.bytes = plan.Source, true, n
	}
	offering := r.rank == plan.Source && len(plan.Heal) > 0
	if offering {
		r.w.cfg.State.Offer(g.ID, heal.Header{Step: tr.Completed(), Lineage: tr.Lineage(), Hash: tr.StateHash(), Run: r.w.runID()}, tr.StateBuffers())
		defer r.w.cfg.State.Withdraw()
	}
	if slices.Contains(plan.Heal, r.rank) {
		r.phase.set("heal")
		n, err := r.fetchState(ctx, plan.Source)
		if err != nil {
			return info, r.discard(err)
		}
		info.source, info.bytes, info.loaded = plan.Source, n, plan.LoadCheckpoint
	}
	info.seconds = time.Since(t0).Seconds()
	switch {
	case info.loaded && info.source == r.rank:
		r.w.cfg.Metrics.transfer("checkpoint", info.seconds, info.bytes)
	case info.source >= 0:
		r.w.cfg.Metrics.transfer("peer", info.seconds, info.bytes)
	}
	// Everyone holds the state now: check it, and release the source.
	r.phase.set("check")
	check := make([]float64, world)
	check[r.rank] = float64(tr.StateHash())
	bctx, cancel := context.WithTimeout(ctx, transferTimeout)
	err = r.ring.AllReduceFloat64(bctx, check, opSum)
	cancel()
	if err != nil {
		return info, fmt.Errorf("check the state: %w", err)
	}
	for q := range check {
		if check[q] != check[0] {
			return info, fmt.Errorf("ranks hold different states after the start of generation %d: rank %d hash %08x, rank 0 %08x (%s)",
				g.ID, q, uint32(check[q]), uint32(check[0]), plan)
		}
	}
	if want := plan.Target.Step; tr.Completed() != want {
		return info, fmt.Errorf("after the start of generation %d at %v this rank is at step %d", g.ID, plan.Target, tr.Completed())
	}
	return info, nil
}

// discard resets the trainer after a state transfer or checkpoint load
// that failed halfway: its buffers hold a mix of two states, which must
// never be offered as the version it claims.
func (r *run) discard(err error) error {
	if rerr := r.tr.Reset(); rerr != nil {
		return fmt.Errorf("%w (and resetting the state failed: %v)", err, rerr)
	}
	r.log.Warn("state transfer failed; this rank starts over from the initial state until it fetches another", "err", err)
	return err
}

// fetchState copies the state from rank src.
func (r *run) fetchState(ctx context.Context, src int) (uint64, error) {
	tr := r.tr
	addr := r.g.Members[src].Address
	cc, err := grpc.NewClient(addr, r.w.cfg.PeerDial...)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	fctx, cancel := context.WithTimeout(ctx, transferTimeout)
	defer cancel()
	// The source offers once it has the state (it may load the checkpoint
	// first): retry while it does not offer yet.
	for attempt := 0; ; attempt++ {
		h, err := heal.Fetch(fctx, cc, r.g.ID, r.w.cfg.Name, r.rank, tr.StateBuffers())
		if errors.Is(err, heal.ErrNotOffered) && fctx.Err() == nil && r.ring.Err() == nil {
			select {
			case <-time.After(cluster.Backoff(min(attempt+1, 3))):
				continue
			case <-fctx.Done():
			}
		}
		if err != nil {
			return 0, fmt.Errorf("fetch the state from rank %d (%s): %w", src, addr, err)
		}
		if h.Run != r.w.runID() {
			return 0, fmt.Errorf("rank %d offers a state of run %s, not %s", src, h.Run, r.w.runID())
		}
		tr.SetState(h.Step, h.Lineage)
		if got := tr.StateHash(); got != h.Hash {
			return 0, fmt.Errorf("%w: the state from rank %d has hash %08x, the sender's is %08x", heal.ErrCorrupt, src, got, h.Hash)
		}
		var n uint64
		for _, b := range tr.StateBuffers() {
			n += 4 * uint64(len(b))
		}
		return n, nil
	}
}

// train runs steps until the ranks agree to stop, the ring breaks, or
// (after the last step, with its checkpoint taken care of) the run is
// asked to stop.
func (r *run) train(ctx context.Context) (Outcome, error) {
	tr, j := r.tr, r.w.job()
	maxSteps := int64(j.Train.MaxSteps)
	meter := &meteredRing{Ring: r.ring}
	if tr.Completed() == maxSteps {
		// A generation formed after the last step, its checkpoint perhaps
		// lost with the coordinator that took it (an etcd outage that
		// outlived the coordinator's lease): this rank 0 sends it.
		if err := r.checkpointIfDue(ctx, false); err != nil {
			return r.failedOr(ctx, err)
		}
	}
	for tr.Completed() < maxSteps {
		if fp := r.w.cfg.StallBeforeStep; fp > 0 && tr.Completed() == int64(fp) {
			r.log.Warn("failpoint: stalling before step", "step", fp)
			r.phase.set("compute")
			<-ctx.Done()
			return OutcomeAborted, nil
		}
		if d := r.w.cfg.StepDelay; d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return OutcomeAborted, nil
			}
		}
		r.phase.set("step")
		res, err := tr.TrainStep(ctx, meter, r.stopRequested)
		if err != nil {
			if res.Completed > 0 { // a NaN: the step was taken, the loss is garbage
				return OutcomeFatal, fmt.Errorf("step %d: %w", res.Completed-1, err)
			}
			return r.failedOr(ctx, fmt.Errorf("step %d: %w", tr.Completed(), err))
		}
		tr.SetLineage(r.g.ID)
		elems, span := meter.take()
		r.w.cfg.Metrics.step(res, elems, span, len(r.g.Members))
		completed := int(res.Completed)
		rep := &pb.WorkerReport{Loss: res.Loss, Lr: res.LR, GradNorm: res.GradNorm, Tokens: res.Tokens,
			StepTimeS: res.Duration.Seconds(), ComputeS: (res.Forward + res.Backward).Seconds(),
			AllreduceWaitS: res.ReduceWait.Seconds(), OptimizerS: res.Optimizer.Seconds()}
		if j.EvalDue(completed) {
			r.phase.set("eval")
			val, err := tr.Eval(ctx, r.ring)
			if err != nil {
				return r.failedOr(ctx, fmt.Errorf("eval after step %d: %w", completed, err))
			}
			rep.HasValLoss, rep.ValLoss = true, val
		}
		r.report(pb.WorkerReport_KIND_STEP, func(p *pb.WorkerReport) {
			p.Loss, p.Lr, p.GradNorm, p.Tokens, p.StepTimeS = rep.Loss, rep.Lr, rep.GradNorm, rep.Tokens, rep.StepTimeS
			p.ComputeS, p.AllreduceWaitS, p.OptimizerS = rep.ComputeS, rep.AllreduceWaitS, rep.OptimizerS
			p.HasValLoss, p.ValLoss = rep.HasValLoss, rep.ValLoss
		})
		if err := r.checkpointIfDue(ctx, false); err != nil {
			return r.failedOr(ctx, err)
		}
		if res.Votes > 0 {
			r.log.Info("stopping at the step boundary the ranks agreed on", "step", completed, "votes", res.Votes)
			return OutcomeBoundary, nil
		}
	}
	// The last step is done and its checkpoint taken care of: wait for the
	// end of the job (or a new generation).
	r.phase.set("done")
	r.log.Info("trained to the last step; waiting for the coordinator", "step", maxSteps)
	select {
	case <-r.stop:
		return OutcomeBoundary, nil
	case <-ctx.Done():
		return OutcomeAborted, nil
	}
}

// checkpointIfDue has rank 0 upload the checkpoint of the state it holds
// when one is due and not committed yet. A cadence checkpoint that fails
// is skipped (the next is due soon); the last step's (and a drain's) is
// retried until it is in.
func (r *run) checkpointIfDue(ctx context.Context, drain bool) error {
	tr, j := r.tr, r.w.job()
	completed := int(tr.Completed())
	if r.rank != 0 || completed == 0 || (!drain && !j.CheckpointDue(completed)) {
		return nil
	}
	if c := r.g.Checkpoint; c != nil && c.Step >= int64(completed) {
		return nil
	}
	must := drain || completed == j.Train.MaxSteps
	r.phase.set("checkpoint")
	for attempt := 1; ; attempt++ {
		t0 := time.Now()
		n, err := r.w.uploadCheckpoint(ctx, r.g.ID, tr)
		if err == nil {
			r.w.cfg.Metrics.checkpoint(time.Since(t0), n)
			r.log.Info("checkpoint uploaded", "step", completed, "seconds", time.Since(t0).Seconds(), "bytes", n)
			return nil
		}
		if errors.Is(err, errNotWanted) {
			r.log.Debug("checkpoint not wanted", "step", completed, "err", err)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !must {
			r.log.Warn("checkpoint upload failed; skipping it", "step", completed, "err", err)
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			r.log.Warn("checkpoint upload failed; retrying", "step", completed, "err", err)
		}
		select {
		case <-time.After(cluster.Backoff(min(attempt, 4))):
		case <-ctx.Done():
			return ctx.Err()
		case <-r.stop:
			if !drain {
				return nil // a new generation: its rank 0 takes it over
			}
		}
	}
}

// failedOr classifies an error of the run: a broken ring (or an abort)
// is for the coordinator to mend; anything else is fatal.
func (r *run) failedOr(ctx context.Context, err error) (Outcome, error) {
	if ctx.Err() != nil {
		return OutcomeAborted, nil
	}
	if r.ring != nil && r.ring.Err() != nil {
		return OutcomeRingFailed, err
	}
	return OutcomeFatal, err
}

// ringFailed reports a ring that could not even be formed.
func (r *run) ringFailed(ctx context.Context, err error) (Outcome, error) {
	if ctx.Err() != nil {
		return OutcomeAborted, nil
	}
	r.report(pb.WorkerReport_KIND_RING_FAILED, func(rep *pb.WorkerReport) { rep.Error = err.Error() })
	return OutcomeRingFailed, err
}

// heartbeatEvery is the heartbeat period for a stall timeout: several
// heartbeats per timeout, so that the coordinator knows who waits for whom
// before it drops anyone.
func heartbeatEvery(stall time.Duration) time.Duration {
	return min(max(stall/6, 200*time.Millisecond), 5*time.Second)
}

// heartbeats reports what the run does every few seconds while a step
// takes long, so that the coordinator can tell a rank waiting for its
// peers from one that is stuck.
func (r *run) heartbeats(ctx context.Context) (stop func()) {
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := heartbeatEvery(r.w.job().Workers.StallTimeout.D())
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				what, since := r.phase.get()
				if time.Since(since) < every {
					continue
				}
				if what == "step" {
					what = r.tr.Phase().String()
				}
				r.report(pb.WorkerReport_KIND_HEARTBEAT, func(rep *pb.WorkerReport) { rep.Phase = what })
			}
		}
	}()
	return func() { cancel(); <-done }
}

// ensure the run's trainer is the real one's shape.
var _ Trainer = (*trainer.Trainer)(nil)

const opSum = allreduce.Sum
