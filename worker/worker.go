package worker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/heal"
	"github.com/ringtrain/ringtrain/job"
	pb "github.com/ringtrain/ringtrain/proto"
	"github.com/ringtrain/ringtrain/trainer"
)

// Trainer is what the worker needs of one rank's training state
// (*trainer.Trainer).
type Trainer interface {
	TrainStep(ctx context.Context, r trainer.Reducer, vote func() bool) (trainer.Result, error)
	Eval(ctx context.Context, r trainer.Reducer) (float64, error)
	SetWorld(rank, world int) error
	Completed() int64
	Lineage() int64
	SetLineage(int64)
	Phase() trainer.Phase
	StateBuffers() [][]float32
	SetState(completed, lineage int64)
	StateHash() uint32
	Reset() error
	Restore(dir string) error
	SaveCheckpoint(w trainer.FileWriter, st trainer.State) error
	Close() error
}

// NewTrainer builds the trainer of a job, at rank 0 of 1 (each generation
// moves it).
type NewTrainer func(j *job.Job) (Trainer, error)

// Ring is a reducer bound to one generation (*allreduce.Ring).
type Ring interface {
	trainer.BucketReducer
	Done() <-chan struct{}
	Err() error
	Close() error
}

// Rings joins the ring of a generation: rank among the peers at addrs
// (by rank), float32 data travelling as wire says.
type Rings interface {
	Join(ctx context.Context, generation int64, rank int, addrs []string, wire allreduce.Wire) (Ring, error)
}

// Config configures a worker.
type Config struct {
	Etcd      *clientv3.Client
	Prefix    string // cluster.DefaultPrefix if empty
	Name      string
	Advertise string        // host:port its peers and the coordinator reach its gRPC server on
	TTL       time.Duration // registration lease TTL (default 5s)
	Trainer   NewTrainer
	Rings     Rings
	// State is the state-transfer server registered on this worker's gRPC
	// server (see NewGRPCServer).
	State *heal.Server
	// CoordinatorDial and PeerDial dial the coordinator and other workers
	// (transport credentials; PeerDial also the tuned stream options).
	CoordinatorDial, PeerDial []grpc.DialOption
	// ExitWhenDone makes Run return once a job it took part in is over.
	ExitWhenDone bool
	// Metrics, if set, records the worker's Prometheus metrics.
	Metrics *Metrics
	// StallBeforeStep, for tests, makes the worker hang (as if stuck in
	// compute) before this step (0: never).
	StallBeforeStep int
	// StepDelay, for tests, paces the worker: it waits this long before
	// each step, so that scenarios outlast their events on a fast machine.
	StepDelay time.Duration
	Logger    *slog.Logger
}

// Worker registers in etcd, follows the published generations and trains
// its rank of each generation it is a member of, keeping one trainer (the
// training state) across generations.
type Worker struct {
	cfg Config
	log *slog.Logger
	k   cluster.Keys
	rep *reporter
	reg *cluster.Registration

	mu  sync.Mutex
	rec *cluster.JobRecord // the job the trainer is for
	tr  Trainer
	inc atomic.Uint64

	coord cluster.Latest[*cluster.CoordinatorRecord]
}

// New checks cfg and returns a worker.
func New(cfg Config) (*Worker, error) {
	if cfg.Etcd == nil || cfg.Trainer == nil || cfg.Rings == nil || cfg.State == nil || cfg.Advertise == "" {
		return nil, errors.New("bad worker config: etcd client, trainer, rings, state server and advertise address are required")
	}
	if err := cluster.CheckName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = cluster.DefaultPrefix
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Worker{cfg: cfg, log: cfg.Logger.With("component", "worker", "worker", cfg.Name), k: cluster.Keys{Prefix: cfg.Prefix}}
	w.rep = newReporter(w.log, &w.coord, cfg.CoordinatorDial)
	return w, nil
}

func newIncarnation() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) >> 11 // below 2⁵³: exact in JSON numbers everywhere
}

func (w *Worker) incarnation() uint64 { return w.inc.Load() }

func (w *Worker) job() *job.Job {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rec.Job
}

func (w *Worker) runID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rec.Run
}

// Run waits for the job, checks this machine's data against its manifest,
// registers and trains every generation it is a member of, until ctx ends
// (a hard stop), it leaves (Leave), the job ends (with ExitWhenDone), or
// an error no generation can mend.
func (w *Worker) Run(ctx context.Context, leave <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	rctx, rcancel := context.WithCancel(context.Background()) // the reporter outlives ctx for a moment
	var (
		cur     *run
		runDone = make(chan runResult, 1)
		runStop context.CancelFunc
	)
	defer func() {
		w.rep.drain(2 * time.Second)
		cancel()
		if cur != nil {
			<-runDone
		}
		rcancel()
		wg.Wait()
		if w.tr != nil {
			w.tr.Close()
		}
	}()

	// The job: wait for a coordinator to publish it, then check the data.
	var jobs cluster.Latest[*cluster.JobRecord]
	wg.Go(func() { _ = cluster.WatchJSON(ctx, w.cfg.Etcd, w.log, w.k.Job(), &jobs) })
	wg.Go(func() { _ = cluster.WatchJSON(ctx, w.cfg.Etcd, w.log, w.k.Coordinator(), &w.coord) })
	rec, err := w.waitJob(ctx, &jobs, leave)
	if err != nil || rec == nil {
		return err
	}

	w.reg = cluster.NewRegistration(w.cfg.Etcd, w.k, cluster.Member{Name: w.cfg.Name, Address: w.cfg.Advertise, Data: rec.Manifest.Digest},
		w.cfg.TTL, newIncarnation, w.log)
	w.inc.Store(w.reg.Member().Incarnation)
	regErr := make(chan error, 1)
	regCtx, regStop := context.WithCancel(ctx)
	regDone := make(chan struct{})
	wg.Go(func() {
		defer close(regDone)
		if err := w.reg.Run(regCtx); regCtx.Err() == nil {
			regErr <- err
		}
	})
	wg.Go(func() { w.rep.run(rctx) })

	var gens cluster.Latest[*cluster.Generation]
	wg.Go(func() { _ = cluster.WatchJSON(ctx, w.cfg.Etcd, w.log, w.k.Generation(), &gens) })
	m := NewMachine(w.cfg.Name, w.incarnation(), w.cfg.ExitWhenDone)
	_, _, genChanged := gens.Get()
	_, _, regChanged := w.reg.Current.Get()
	_, _, jobChanged := jobs.Get()
	apply := func(acts []Action) error {
		for _, a := range acts {
			switch a := a.(type) {
			case StartRun:
				runCtx, stop := context.WithCancel(ctx)
				cur = &run{w: w, g: a.Gen, rank: a.Rank, tr: w.tr, stop: make(chan struct{}),
					log: w.log.With("generation", a.Gen.ID, "rank", a.Rank, "world", len(a.Gen.Members))}
				runStop = stop
				r := cur
				wg.Go(func() {
					o, err := r.execute(runCtx)
					runDone <- runResult{r, o, err}
				})
			case StopAtBoundary:
				if cur != nil {
					cur.stopOnce.Do(func() { close(cur.stop) })
				}
			case AbortRun:
				if runStop != nil {
					runStop()
				}
			case Send:
				rep := &pb.WorkerReport{Name: w.cfg.Name, Incarnation: w.incarnation(), Generation: a.Gen, Rank: -1, Error: a.Err}
				if w.tr != nil {
					rep.Step, rep.Lineage = w.tr.Completed(), w.tr.Lineage()
				}
				switch a.Kind {
				case SendStandby:
					rep.Kind = pb.WorkerReport_KIND_STANDBY
				case SendLeaving:
					rep.Kind = pb.WorkerReport_KIND_LEAVING
				case SendFailed:
					rep.Kind = pb.WorkerReport_KIND_FAILED
				}
				w.rep.send(rep)
			case Deregister:
				regStop() // no registering again once the key is gone
				<-regDone
				if err := w.reg.Deregister(ctx); err != nil {
					w.log.Warn("deregister", "err", err)
				}
				w.log.Info("left the cluster")
			case Exit:
				return exitErr{a.Err}
			}
		}
		return nil
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-leave:
			leave = nil
			w.log.Info("leaving: finishing the step in flight")
			err = apply(m.Leave())
		case err := <-regErr:
			return fmt.Errorf("registration: %w", err)
		case <-regChanged:
			var cur *cluster.Member
			cur, _, regChanged = w.reg.Current.Get()
			if cur != nil {
				w.inc.Store(cur.Incarnation)
				err = apply(m.Registered(cur.Incarnation))
			}
		case <-jobChanged:
			var r *cluster.JobRecord
			r, _, jobChanged = jobs.Get()
			if r != nil && r.Run != w.runID() {
				return fmt.Errorf("the coordinator now runs another job (run %s, job %q); restart this worker to join it", r.Run, r.Job.Name)
			}
		case <-genChanged:
			var g *cluster.Generation
			g, _, genChanged = gens.Get()
			if g != nil && g.Run == w.runID() {
				err = apply(m.Generation(g))
			}
		case res := <-runDone:
			if res.r == cur {
				cur, runStop = nil, nil
			}
			switch res.o {
			case OutcomeRingFailed:
				res.r.log.Warn("ring failed; waiting for the coordinator to re-form it", "err", res.err)
			case OutcomeFatal:
				res.r.log.Error("training failed", "err", res.err)
			default:
				res.r.log.Info("run ended", "outcome", res.o, "state", res.r.version())
			}
			err = apply(m.RunEnded(res.o, res.err))
		}
		if err != nil {
			var ex exitErr
			if errors.As(err, &ex) {
				return ex.err
			}
			return err
		}
	}
}

type runResult struct {
	r   *run
	o   Outcome
	err error
}

type exitErr struct{ err error }

func (e exitErr) Error() string { return fmt.Sprint(e.err) }

// waitJob waits for the coordinator's job record, checks this machine's
// data against its manifest and builds the trainer. It returns nil
// without error when asked to leave first.
func (w *Worker) waitJob(ctx context.Context, jobs *cluster.Latest[*cluster.JobRecord], leave <-chan struct{}) (*cluster.JobRecord, error) {
	logged := false
	for {
		rec, _, changed := jobs.Get()
		if rec != nil && rec.Job != nil {
			if err := rec.Manifest.Check(rec.Job); err != nil {
				return nil, fmt.Errorf("refused: %w", err)
			}
			tr, err := w.cfg.Trainer(rec.Job)
			if err != nil {
				return nil, fmt.Errorf("job %q: %w", rec.Job.Name, err)
			}
			w.mu.Lock()
			w.rec, w.tr = rec, tr
			w.mu.Unlock()
			w.log.Info("job", "name", rec.Job.Name, "run", rec.Run, "data", rec.Manifest.String())
			return rec, nil
		}
		if !logged {
			w.log.Info("waiting for a coordinator to publish its job", "key", w.k.Job())
			logged = true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-leave:
			return nil, nil
		}
	}
}

// TrainerPackage is the NewTrainer of package trainer.
func TrainerPackage(bucketBytes int) NewTrainer {
	return func(j *job.Job) (Trainer, error) {
		return trainer.New(trainer.Options{Job: j, Rank: 0, World: 1, BucketBytes: bucketBytes})
	}
}
