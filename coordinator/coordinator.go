package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/ringtrain/ringtrain/job"
)

// Checkpoints is what the coordinator needs of the checkpoint store.
type Checkpoints interface {
	// Latest returns the newest committed checkpoint of runDir and its step
	// (steps completed), or step −1 when there is none.
	Latest(runDir string) (dir string, step int, err error)
	// Commit writes the commit marker of dir once every part is durable.
	Commit(dir string) error
	// Prune removes all but the newest keep committed checkpoints.
	Prune(runDir string, keep int) error
}

// Config configures a coordinator.
type Config struct {
	Etcd    *clientv3.Client
	Prefix  string   // etcd key prefix of the cluster; DefaultPrefix if empty
	Job     *job.Job // data paths are made absolute against the current directory
	JobFile string
	JobText string // the job file as given (for checkpoints' state.json)
	RunDir  string
	// Advertise is the gRPC address the workers report to.
	Advertise string
	// Settle is how long to wait for more workers once workers.min have
	// registered (default 2s).
	Settle time.Duration
	// SessionTTL is the lease TTL of the coordinator's election (default 5s).
	SessionTTL time.Duration
	// RegroupDelay is how long a broken ring waits for a lost worker's
	// registration to expire before it is re-formed with the same workers
	// (default 6s: more than the workers' default lease TTL).
	RegroupDelay time.Duration
	// StallTimeout: a generation member silent this long gets the
	// generation re-formed (default 10m).
	StallTimeout time.Duration
	Checkpoints  Checkpoints
	Logger       *slog.Logger
}

// Errors of the coordinator runtime.
var (
	ErrNotLeader  = errors.New("lost coordinator leadership")
	ErrJobFailed  = errors.New("job failed")
	ErrBadConfig  = errors.New("bad coordinator config")
	errStopped    = errors.New("coordinator stopped")
	errNoCkptImpl = errors.New("no checkpoint store configured")
)

// Coordinator runs one job: it wins the election, forms generations from
// the registered workers, collects reports, commits checkpoints and serves
// the job's status. Its decisions are a Machine's; it owns etcd, the clock
// and the gRPC service.
type Coordinator struct {
	cfg Config
	log *slog.Logger
	k   Keys

	reports chan reportReq
	hub     hub
}

type reportReq struct {
	r     Report
	reply chan reportReply
}

type reportReply struct {
	stale bool
	gen   int64
}

// New checks cfg and returns a coordinator in standby.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Etcd == nil || cfg.Job == nil || cfg.RunDir == "" || cfg.Advertise == "" {
		return nil, fmt.Errorf("%w: etcd client, job, run dir and advertise address are required", ErrBadConfig)
	}
	if cfg.Checkpoints == nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, errNoCkptImpl)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Settle == 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	j := *cfg.Job
	for _, p := range []*string{&j.Data.Train, &j.Data.Val, &j.Init} {
		if *p != "" && !filepath.IsAbs(*p) {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, fmt.Errorf("job path %s: %w", *p, err)
			}
			*p = abs
		}
	}
	cfg.Job = &j
	runDir, err := filepath.Abs(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("run dir %s: %w", cfg.RunDir, err)
	}
	cfg.RunDir = runDir
	c := &Coordinator{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "coordinator", "job", j.Name),
		k:       Keys{Prefix: cfg.Prefix},
		reports: make(chan reportReq),
	}
	c.hub.init(Status{Job: j.Name, Phase: PhaseWaiting, MaxSteps: j.Train.MaxSteps, LastCheckpoint: -1,
		Err: "standby: waiting to become the job's coordinator"})
	return c, nil
}

// Status returns the newest status snapshot.
func (c *Coordinator) Status() Status { s, _, _ := c.hub.get(); return s }

// RunDir returns the absolute run directory.
func (c *Coordinator) RunDir() string { return c.cfg.RunDir }

// report hands a worker report to the event loop.
func (c *Coordinator) report(ctx context.Context, r Report) (reportReply, error) {
	req := reportReq{r: r, reply: make(chan reportReply, 1)}
	select {
	case c.reports <- req:
	case <-ctx.Done():
		return reportReply{}, ctx.Err()
	case <-c.hub.closed():
		return reportReply{stale: true}, nil
	}
	select {
	case rep := <-req.reply:
		return rep, nil
	case <-ctx.Done():
		return reportReply{}, ctx.Err()
	}
}

// Run campaigns for the job's election and, once leader, runs the job to
// its end. It returns nil when the job is done, an error wrapping
// ErrJobFailed when it failed, or the error that stopped it.
func (c *Coordinator) Run(ctx context.Context) (err error) {
	defer func() { c.hub.close() }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sess, err := concurrency.NewSession(c.cfg.Etcd, concurrency.WithTTL(int(max(c.cfg.SessionTTL.Seconds(), 1))))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, c.k.Election())
	c.log.Info("campaigning", "election", c.k.Election())
	if err := el.Campaign(ctx, c.cfg.Advertise); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer rcancel()
		_ = el.Resign(rctx)
	}()
	c.log.Info("elected coordinator", "advertise", c.cfg.Advertise)

	lastID, err := LastGenerationID(ctx, c.cfg.Etcd, c.k)
	if err != nil {
		return err
	}
	firstID := lastID + 1
	_, last, err := c.cfg.Checkpoints.Latest(c.cfg.RunDir)
	if err != nil {
		return fmt.Errorf("find checkpoint in %s: %w", c.cfg.RunDir, err)
	}
	if last >= 0 {
		c.log.Info("resuming", "step", last)
	}
	j := c.cfg.Job
	m := NewMachine(MachineConfig{
		Job: j.Name, MinWorkers: j.Workers.Min, MaxWorkers: j.Workers.Max, MaxSteps: j.Train.MaxSteps,
		GlobalBatch: j.Train.GlobalBatch, CheckpointEvery: j.Checkpoint.Every, Settle: c.cfg.Settle,
		ValidWorld: j.Validate, LastCheckpoint: last, FirstGeneration: firstID, RegroupDelay: c.cfg.RegroupDelay,
		StallTimeout: c.cfg.StallTimeout,
	})

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	membersCh := make(chan []Member, 1)
	watchErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchErr <- WatchMembers(ctx, c.cfg.Etcd, c.k, membersCh)
	}()

	// The committer writes commit markers (hashing every file of the
	// checkpoint) and prunes, one checkpoint at a time, so that reports
	// are not held up by the I/O.
	type commitResult struct {
		step int
		err  error
	}
	commitReq := make(chan int, 64)
	commitDone := make(chan commitResult, 64)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case step := <-commitReq:
				dir := CheckpointDir(c.cfg.RunDir, step)
				err := c.cfg.Checkpoints.Commit(dir)
				if err == nil {
					c.log.Info("checkpoint committed", "step", step, "dir", dir)
					if perr := c.cfg.Checkpoints.Prune(c.cfg.RunDir, j.Checkpoint.Keep); perr != nil {
						c.log.Warn("prune checkpoints", "err", perr)
					}
				}
				select {
				case commitDone <- commitResult{step, err}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()

	var result error
	finished := false
	var apply func(acts []Action)
	apply = func(acts []Action) {
		for _, a := range acts {
			switch a := a.(type) {
			case Publish:
				if err := c.publish(ctx, sess, el, c.generation(a.Plan)); err != nil {
					apply(m.Fail(err))
				}
			case Commit:
				select {
				case commitReq <- a.Step: // the committer hashes off the event loop
				case <-ctx.Done():
				}
			case Finish:
				finished = true
				g := m.Generation()
				final := &Generation{Job: j, JobFile: c.cfg.JobFile, JobText: c.cfg.JobText, RunDir: c.cfg.RunDir, Coordinator: c.cfg.Advertise, Done: true}
				if g != nil {
					final = c.generation(*g)
					final.Done = true
				}
				if a.Err != nil {
					result = fmt.Errorf("%w: %v", ErrJobFailed, a.Err)
					final.Failed = a.Err.Error()
					c.log.Error("job failed", "err", a.Err)
				} else {
					c.log.Info("job done", "step", m.Status().Step)
				}
				if err := c.publish(ctx, sess, el, final); err != nil {
					c.log.Warn("publish end of job", "err", err)
				}
			}
		}
	}
	apply(m.Start())
	prev := m.Status()
	c.hub.set(prev)
	for !finished {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.Done():
			return fmt.Errorf("%w: etcd session expired", ErrNotLeader)
		case err := <-watchErr:
			apply(m.Fail(err))
		case ms := <-membersCh:
			apply(m.SetMembers(time.Now(), ms))
		case rq := <-c.reports:
			stale, acts := m.Report(time.Now(), rq.r)
			var gen int64
			if g := m.Generation(); g != nil {
				gen = g.ID
			}
			rq.reply <- reportReply{stale: stale, gen: gen}
			apply(acts)
		case cr := <-commitDone:
			apply(m.Committed(time.Now(), cr.step, cr.err))
		case now := <-tick.C:
			apply(m.Tick(now))
		}
		st := m.Status()
		if st.Phase != prev.Phase || st.Err != prev.Err {
			switch {
			case st.Err != "":
				c.log.Warn("phase", "phase", st.Phase, "step", st.Step, "why", st.Err)
			case st.Phase == PhaseCheckpointing || prev.Phase == PhaseCheckpointing:
				c.log.Debug("phase", "phase", st.Phase, "step", st.Step)
			default:
				c.log.Info("phase", "phase", st.Phase, "step", st.Step)
			}
		}
		prev = st
		c.hub.set(st)
	}
	c.hub.set(m.Status())
	return result
}

// generation completes a plan into the generation the workers read.
func (c *Coordinator) generation(p GenerationPlan) *Generation {
	g := &Generation{
		ID: p.ID, Job: c.cfg.Job, JobFile: c.cfg.JobFile, JobText: c.cfg.JobText, RunDir: c.cfg.RunDir,
		Coordinator: c.cfg.Advertise, Members: p.Members, StartStep: p.StartStep,
	}
	if p.ResumeStep >= 0 {
		g.Resume = CheckpointDir(c.cfg.RunDir, p.ResumeStep)
	}
	return g
}

// publish writes g, bound to the session's lease, if this coordinator
// still leads the election.
func (c *Coordinator) publish(ctx context.Context, sess *concurrency.Session, el *concurrency.Election, g *Generation) error {
	data, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode generation: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	leader := clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())
	resp, err := c.cfg.Etcd.Txn(ctx).If(leader).Then(
		clientv3.OpPut(c.k.Generation(), string(data), clientv3.WithLease(sess.Lease())),
		clientv3.OpPut(c.k.GenerationID(), strconv.FormatInt(g.ID, 10)),
	).Commit()
	if err != nil {
		return fmt.Errorf("publish generation %d: %w", g.ID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("publish generation %d: %w", g.ID, ErrNotLeader)
	}
	c.log.Info("published generation", "generation", g.ID, "world", len(g.Members), "start_step", g.StartStep, "resume", g.Resume, "done", g.Done)
	return nil
}

// hub holds the newest status and wakes watchers on change.
type hub struct {
	mu      sync.Mutex
	status  Status
	version uint64
	changed chan struct{} // closed and replaced on every change
	done    chan struct{}
	once    sync.Once
}

func (h *hub) init(s Status) {
	h.status = s
	h.changed = make(chan struct{})
	h.done = make(chan struct{})
}

func (h *hub) set(s Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = s
	h.version++
	close(h.changed)
	h.changed = make(chan struct{})
}

// get returns the status, its version and a channel closed on the next change.
func (h *hub) get() (Status, uint64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status, h.version, h.changed
}

func (h *hub) close()                  { h.once.Do(func() { close(h.done) }) }
func (h *hub) closed() <-chan struct{} { return h.done }
