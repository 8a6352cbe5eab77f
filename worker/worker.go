package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/coordinator"
	"github.com/ringtrain/ringtrain/job"
	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/trainer"
)

// Reducer reduces buffers across the ranks of a generation, in place.
type Reducer = trainer.Reducer

// Ring is a reducer bound to one generation.
type Ring interface {
	trainer.BucketReducer
	Err() error
	Close() error
}

// Rings joins the ring of a generation: rank among the peers at addrs
// (by rank).
type Rings interface {
	Join(ctx context.Context, generation int64, rank int, addrs []string) (Ring, error)
}

// StepResult is what one optimizer step reports.
type StepResult struct {
	Step     int // steps completed after this one
	Loss     float64
	LR       float64
	GradNorm float64
	Tokens   int64 // tokens of the step, all ranks together
	Duration time.Duration
}

// Trainer trains one rank's part of a generation.
type Trainer interface {
	// Step runs the next optimizer step.
	Step(ctx context.Context, r Reducer) (StepResult, error)
	// Eval returns the validation loss, averaged over the ranks.
	Eval(ctx context.Context, r Reducer) (float64, error)
	// SaveCheckpoint makes this rank's part of the checkpoint in dir
	// durable (the coordinator writes the commit marker).
	SaveCheckpoint(dir string, part int) error
	Close() error
}

// TrainerConfig says what to train.
type TrainerConfig struct {
	Job       *job.Job
	JobFile   string
	JobText   string // the job file as given
	RunDir    string
	Rank      int
	World     int
	StartStep int    // steps completed at start
	Resume    string // checkpoint dir to restore from; "" for a fresh start
	// BucketBytes is the gradient bucket size (see Config.BucketBytes).
	BucketBytes int
}

// NewTrainer builds a rank's trainer for a generation, restored from
// cfg.Resume when set.
type NewTrainer func(ctx context.Context, cfg TrainerConfig) (Trainer, error)

// Config configures a worker.
type Config struct {
	Etcd      *clientv3.Client
	Prefix    string // coordinator.DefaultPrefix if empty
	Name      string
	Advertise string        // host:port its peers reach its gRPC server on
	TTL       time.Duration // registration lease TTL (default 5s)
	Trainer   NewTrainer
	Rings     Rings
	// ExitWhenDone makes Run return once a job it took part in is over.
	ExitWhenDone bool
	// BucketBytes is the gradient bucket size for reducing while backward
	// runs (0: one all-reduce after backward).
	BucketBytes int
	Logger      *slog.Logger
}

// Errors of the worker.
var (
	ErrBadConfig = errors.New("bad worker config")
	ErrLeaseLost = errors.New("worker registration lease lost")
	ErrNameTaken = errors.New("worker name already registered")
	ErrJobFailed = errors.New("job failed")
	// ErrRing marks a failure of the generation's ring (a peer gone or
	// unreachable): the coordinator re-forms the ring rather than failing.
	ErrRing       = errors.New("ring failed")
	errSuperseded = errors.New("generation superseded")
)

// Worker registers in etcd, follows the published generations and trains
// its rank of each generation it is a member of.
type Worker struct {
	cfg Config
	log *slog.Logger
	k   coordinator.Keys
}

// New checks cfg and returns a worker.
func New(cfg Config) (*Worker, error) {
	if cfg.Etcd == nil || cfg.Trainer == nil || cfg.Rings == nil || cfg.Advertise == "" {
		return nil, fmt.Errorf("%w: etcd client, trainer, rings and advertise address are required", ErrBadConfig)
	}
	if err := coordinator.CheckName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = coordinator.DefaultPrefix
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{cfg: cfg, log: cfg.Logger.With("component", "worker", "worker", cfg.Name), k: coordinator.Keys{Prefix: cfg.Prefix}}, nil
}

// Run registers the worker and trains every generation it is a member of,
// until ctx ends, the lease is lost, or (with ExitWhenDone) its job ends.
func (w *Worker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess, err := concurrency.NewSession(w.cfg.Etcd, concurrency.WithTTL(int(max(w.cfg.TTL.Seconds(), 1))))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	reg, _ := json.Marshal(coordinator.Member{Name: w.cfg.Name, Address: w.cfg.Advertise})
	key := w.k.Member(w.cfg.Name)
	if err := w.register(ctx, key, string(reg), sess.Lease()); err != nil {
		return err
	}
	w.log.Info("registered", "key", key, "advertise", w.cfg.Advertise, "ttl", w.cfg.TTL)

	gens := make(chan *coordinator.Generation, 1)
	watchErr := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchErr <- w.watchGenerations(ctx, gens)
	}()

	var (
		cur      *coordinator.Generation
		runStop  context.CancelFunc
		runDone  chan error
		seen     int64
		tookPart bool
	)
	stopRun := func() {
		if runStop != nil {
			runStop()
			<-runDone
			runStop, runDone = nil, nil
		}
	}
	defer stopRun()
	for {
		var doneCh chan error = runDone
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.Done():
			return ErrLeaseLost
		case err := <-watchErr:
			return err
		case err := <-doneCh:
			runStop()
			runStop, runDone = nil, nil
			if err != nil && !errors.Is(err, context.Canceled) {
				w.log.Error("generation ended with an error", "generation", cur.ID, "err", err)
			}
		case g := <-gens:
			if g.ID == 0 { // the generation key vanished with its coordinator
				if runStop != nil {
					w.log.Warn("coordinator gone; abandoning the generation", "generation", cur.ID)
				}
				stopRun()
				if cur != nil && cur.Done && w.cfg.ExitWhenDone && tookPart {
					if cur.Failed != "" {
						return fmt.Errorf("%w: %s", ErrJobFailed, cur.Failed)
					}
					return nil
				}
				cur = nil
				continue
			}
			if g.ID < seen || (g.ID == seen && cur != nil && cur.Done == g.Done) {
				continue
			}
			seen = g.ID
			if g.Done {
				// The final checkpoint is committed; a run still open can
				// only be waiting for nothing.
				stopRun()
				cur = g
				if g.Failed != "" {
					w.log.Warn("job failed", "generation", g.ID, "err", g.Failed)
				} else {
					w.log.Info("job done", "generation", g.ID)
				}
				if w.cfg.ExitWhenDone && tookPart {
					if g.Failed != "" {
						return fmt.Errorf("%w: %s", ErrJobFailed, g.Failed)
					}
					return nil
				}
				continue
			}
			stopRun()
			cur = g
			rank := g.Rank(w.cfg.Name)
			if rank < 0 {
				w.log.Info("spare in generation", "generation", g.ID, "world", len(g.Members))
				continue
			}
			tookPart = true
			rctx, rcancel := context.WithCancel(ctx)
			runStop, runDone = rcancel, make(chan error, 1)
			done := runDone
			wg.Add(1)
			go func() {
				defer wg.Done()
				done <- w.runGeneration(rctx, g, rank)
			}()
		}
	}
}

// register puts the worker's key with its lease. If the name is still
// registered (a previous process of the same name whose lease has not
// expired yet), it waits for the old key to go.
func (w *Worker) register(ctx context.Context, key, val string, lease clientv3.LeaseID) error {
	for {
		resp, err := w.cfg.Etcd.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return fmt.Errorf("register %s: %w", key, err)
		}
		if resp.Succeeded {
			return nil
		}
		rev := resp.Header.Revision
		w.log.Warn("worker name still registered, waiting for its lease to expire", "key", key, "err", ErrNameTaken)
		wctx, cancel := context.WithCancel(ctx)
		wch := w.cfg.Etcd.Watch(wctx, key, clientv3.WithRev(rev+1), clientv3.WithFilterPut())
		select {
		case <-wch:
		case <-ctx.Done():
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// watchGenerations sends every generation value on out, in order, and a
// zero Generation when the key is deleted (its coordinator is gone).
func (w *Worker) watchGenerations(ctx context.Context, out chan *coordinator.Generation) error {
	send := func(g *coordinator.Generation) {
		select {
		case out <- g:
		case <-ctx.Done():
		}
	}
	g, rev, err := coordinator.ReadGeneration(ctx, w.cfg.Etcd, w.k)
	if err != nil {
		return err
	}
	if g != nil && !g.Done {
		send(g)
	}
	for wr := range w.cfg.Etcd.Watch(clientv3.WithRequireLeader(ctx), w.k.Generation(), clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch generation: %w", err)
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				send(&coordinator.Generation{})
				continue
			}
			var g coordinator.Generation
			if err := json.Unmarshal(ev.Kv.Value, &g); err != nil {
				w.log.Warn("bad generation value", "err", err)
				continue
			}
			send(&g)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("watch generation: channel closed")
}

// ringReducer marks the ring's errors with ErrRing.
type ringReducer struct{ r Ring }

var _ trainer.BucketReducer = ringReducer{}

func (rr ringReducer) AllReduceOp(ctx context.Context, buf []float32, op allreduce.Op) error {
	return rr.mark(ctx, rr.r.AllReduceOp(ctx, buf, op))
}

func (rr ringReducer) AllReduceFloat64(ctx context.Context, buf []float64, op allreduce.Op) error {
	return rr.mark(ctx, rr.r.AllReduceFloat64(ctx, buf, op))
}

// StartOp reduces buf in the background.
func (rr ringReducer) StartOp(ctx context.Context, bucket int, buf []float32, op allreduce.Op) *allreduce.Handle {
	return rr.r.StartOp(ctx, bucket, buf, op)
}

func (rr ringReducer) mark(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRing, err)
}

// reporter sends reports to the coordinator of a generation.
type reporter struct {
	cc   *grpc.ClientConn
	cli  pb.CoordinatorClient
	base *pb.WorkerReport
	log  *slog.Logger
}

func (r *reporter) send(ctx context.Context, rep *pb.WorkerReport) error {
	rep.Name, rep.Generation, rep.Rank = r.base.Name, r.base.Generation, r.base.Rank
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var ack *pb.ReportAck
		ack, err = r.cli.Report(cctx, rep)
		cancel()
		if err == nil {
			if ack.GetStale() {
				return errSuperseded
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("report to coordinator: %w", err)
}

// runGeneration trains rank of g until the job's last step, ctx ends, or an
// error. Errors are reported to the coordinator, which decides.
func (w *Worker) runGeneration(ctx context.Context, g *coordinator.Generation, rank int) (err error) {
	log := w.log.With("generation", g.ID, "rank", rank, "world", len(g.Members))
	cc, err := grpc.NewClient(g.Coordinator, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("coordinator address %s: %w", g.Coordinator, err)
	}
	defer cc.Close()
	rep := &reporter{cc: cc, cli: pb.NewCoordinatorClient(cc), log: log,
		base: &pb.WorkerReport{Name: w.cfg.Name, Generation: g.ID, Rank: int32(rank)}}
	var ringErr func() error
	defer func() {
		if err != nil && ctx.Err() == nil && !errors.Is(err, errSuperseded) {
			kind := pb.WorkerReport_KIND_FAILED
			if errors.Is(err, ErrRing) || (ringErr != nil && ringErr() != nil) {
				kind = pb.WorkerReport_KIND_RING_FAILED
				log.Warn("ring failed; the coordinator will re-form it", "err", err)
			} else {
				log.Error("training failed", "err", err)
			}
			_ = rep.send(ctx, &pb.WorkerReport{Kind: kind, Error: err.Error()})
		}
	}()
	if g.Job == nil {
		return errors.New("generation without a job")
	}
	j := g.Job
	log.Info("joining generation", "start_step", g.StartStep, "resume", g.Resume)
	tr, err := w.cfg.Trainer(ctx, TrainerConfig{Job: j, JobFile: g.JobFile, JobText: g.JobText, RunDir: g.RunDir, Rank: rank,
		World: len(g.Members), StartStep: g.StartStep, Resume: g.Resume, BucketBytes: w.cfg.BucketBytes})
	if err != nil {
		return fmt.Errorf("start trainer: %w", err)
	}
	defer tr.Close()
	joined, err := w.cfg.Rings.Join(ctx, g.ID, rank, g.Addresses())
	if err != nil {
		return fmt.Errorf("%w: join ring of generation %d: %w", ErrRing, g.ID, err)
	}
	ringErr = joined.Err
	defer joined.Close()
	ring := ringReducer{joined}

	var metrics *MetricsWriter
	if rank == 0 {
		metrics, err = OpenMetrics(g.RunDir, g.StartStep)
		if err != nil {
			return err
		}
		defer metrics.Close()
	}
	if err := rep.send(ctx, &pb.WorkerReport{Kind: pb.WorkerReport_KIND_READY, Step: int64(g.StartStep)}); err != nil {
		return err
	}
	maxSteps := j.Train.MaxSteps
	for step := g.StartStep; step < maxSteps; {
		res, err := tr.Step(ctx, ring)
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		if res.Step != step+1 {
			return fmt.Errorf("trainer reported step %d after step %d", res.Step, step)
		}
		step = res.Step
		r := &pb.WorkerReport{Kind: pb.WorkerReport_KIND_STEP, Step: int64(step), Loss: res.Loss, Lr: res.LR,
			GradNorm: res.GradNorm, Tokens: res.Tokens, StepTimeS: res.Duration.Seconds()}
		if j.Eval.Every > 0 && j.Data.Val != "" && (step%j.Eval.Every == 0 || step == maxSteps) {
			val, err := tr.Eval(ctx, ring)
			if err != nil {
				return fmt.Errorf("eval after step %d: %w", step, err)
			}
			r.HasValLoss, r.ValLoss = true, val
		}
		if metrics != nil {
			if err := metrics.Write(step-1, res, len(g.Members), r.HasValLoss, r.ValLoss); err != nil {
				return err
			}
		}
		if err := rep.send(ctx, r); err != nil {
			return err
		}
		if coordinator.IsCheckpointStep(step, j.Checkpoint.Every, maxSteps) {
			dir := coordinator.CheckpointDir(g.RunDir, step)
			if err := tr.SaveCheckpoint(dir, rank); err != nil {
				return fmt.Errorf("checkpoint at step %d: %w", step, err)
			}
			if metrics != nil {
				if err := metrics.Sync(); err != nil {
					return err
				}
			}
			if err := rep.send(ctx, &pb.WorkerReport{Kind: pb.WorkerReport_KIND_CHECKPOINT_PART, Step: int64(step)}); err != nil {
				return err
			}
		}
	}
	log.Info("trained to the last step; waiting for the coordinator", "step", maxSteps)
	<-ctx.Done()
	return nil
}
