package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/job"
)

// Config configures a coordinator.
type Config struct {
	Etcd   *clientv3.Client
	Prefix string   // etcd key prefix of the cluster; cluster.DefaultPrefix if empty
	Job    *job.Job // relative data and init paths are made absolute against the current directory
	RunDir string
	// Advertise is the gRPC address the workers report to.
	Advertise string
	// Settle is how long to wait for more workers once workers.min have
	// registered, and for more joiners before growing (default 2s).
	Settle time.Duration
	// SessionTTL is the lease TTL of the coordinator's election (default 5s).
	SessionTTL time.Duration
	// ReportWindow: see MachineConfig (default 2s).
	ReportWindow time.Duration
	// Dial are the options to dial workers' peer servers with (probes):
	// the transport credentials.
	Dial []grpc.DialOption
	// Extras are files copied into every checkpoint before it is committed
	// (name in the checkpoint → path here), e.g. the tokenizer.
	Extras map[string]string
	Logger *slog.Logger
}

// Errors of the coordinator runtime.
var (
	ErrJobFailed = errors.New("job failed")
	ErrBadConfig = errors.New("bad coordinator config")
	errNotLeader = errors.New("not the job's coordinator")
)

// Coordinator runs one job: it wins the election, forms generations from
// the registered workers, collects reports, writes the run directory and
// serves the job's status. Its decisions are a Machine's; it owns etcd, the
// clock, the files and the gRPC service. Losing the leadership (an etcd
// outage longer than the lease) is not fatal: it campaigns again and, once
// leader, takes over the generation in force, which the workers never
// stopped training.
type Coordinator struct {
	cfg Config
	log *slog.Logger
	k   cluster.Keys
	run RunInfo

	calls    chan call     // into the leader's loop
	stop     chan struct{} // graceful stop requested
	stopped  sync.Once
	hub      hub
	history  *History
	counters *counters

	mu     sync.Mutex
	leader bool
}

// New checks cfg and returns a coordinator in standby.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Etcd == nil || cfg.Job == nil || cfg.RunDir == "" || cfg.Advertise == "" {
		return nil, fmt.Errorf("%w: etcd client, job, run dir and advertise address are required", ErrBadConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = cluster.DefaultPrefix
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
	for _, p := range []*string{&j.Data.Train, &j.Data.Val, &j.Init, &j.Tokenizer} {
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
		cfg:      cfg,
		log:      cfg.Logger.With("component", "coordinator", "job", j.Name),
		k:        cluster.Keys{Prefix: cfg.Prefix},
		calls:    make(chan call),
		stop:     make(chan struct{}),
		counters: newCounters(),
	}
	c.hub.init(Status{Job: j.Name, Phase: PhaseWaiting, MaxSteps: j.Train.MaxSteps, LastCheckpoint: -1,
		Err: "standby: waiting to become the job's coordinator"})
	return c, nil
}

// Status returns the newest status snapshot.
func (c *Coordinator) Status() Status { s, _, _ := c.hub.get(); return s }

// RunDir returns the absolute run directory.
func (c *Coordinator) RunDir() string { return c.cfg.RunDir }

// Run returns the run's id (after Run has started).
func (c *Coordinator) RunID() string { return c.run.ID }

// Stop asks for a graceful stop: the workers finish the step in flight, its
// checkpoint is committed, and Run returns nil. Idempotent.
func (c *Coordinator) Stop() { c.stopped.Do(func() { close(c.stop) }) }

func (c *Coordinator) isLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// call is f to run on the leader's machine; done is closed once its
// actions are carried out (a report is acknowledged only once its history
// line is written).
type call struct {
	f    func(now time.Time, m *Machine) []Action
	done chan struct{}
}

// do runs f on the leader's machine, carries out its actions and returns;
// errNotLeader when this coordinator does not lead.
func (c *Coordinator) do(ctx context.Context, f func(now time.Time, m *Machine) []Action) error {
	if !c.isLeader() {
		return errNotLeader
	}
	done := make(chan struct{})
	select {
	case c.calls <- call{f, done}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.hub.closed():
		return errNotLeader
	case <-time.After(5 * time.Second):
		return errNotLeader // the loop is gone (leadership lost meanwhile)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run campaigns for the job's election and, once leader, runs the job to
// its end. It returns nil when the job is done or was stopped gracefully,
// an error wrapping ErrJobFailed when it failed, or ctx's error.
func (c *Coordinator) Run(ctx context.Context) error {
	defer c.hub.close()
	if err := os.MkdirAll(c.cfg.RunDir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	var err error
	if c.run, err = loadRun(c.cfg.RunDir, c.cfg.Job.Name); err != nil {
		return err
	}
	if c.history, err = OpenHistory(c.cfg.RunDir); err != nil {
		return err
	}
	defer c.history.Close()
	manifest, err := cluster.BuildManifest(c.cfg.Job)
	if err != nil {
		return fmt.Errorf("job data: %w", err)
	}
	c.log.Info("data manifest", "manifest", manifest.String())
	for n := 1; ; n++ {
		done, err := c.term(ctx, manifest)
		if done || ctx.Err() != nil {
			return err
		}
		c.log.Warn("not the coordinator any more; campaigning again", "err", err)
		c.hub.set(Status{Job: c.cfg.Job.Name, Phase: PhaseWaiting, MaxSteps: c.cfg.Job.Train.MaxSteps, LastCheckpoint: -1,
			Err: fmt.Sprintf("standby: %v", err)})
		select {
		case <-time.After(cluster.Backoff(min(n, 3))):
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stop:
			return nil
		}
	}
}

// term is one term as candidate and leader. done is true when the job
// ended (err is then the job's result) or a stop was asked while standby.
func (c *Coordinator) term(ctx context.Context, manifest cluster.Manifest) (done bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Until elected, a graceful stop is a stop: there is nothing to finish.
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	go func() {
		select {
		case <-c.stop:
			pcancel()
		case <-pctx.Done():
		}
	}()
	stopped := func(err error) (bool, error) {
		select {
		case <-c.stop:
			return true, nil
		default:
			return true, err
		}
	}
	var lease clientv3.LeaseID
	if err := cluster.Retry(pctx, c.cfg.Etcd, c.log, "coordinator session", func(actx context.Context) error {
		g, err := c.cfg.Etcd.Grant(actx, int64(max(c.cfg.SessionTTL.Seconds(), 1)))
		if err == nil {
			lease = g.ID
		}
		return err
	}); err != nil {
		return stopped(err)
	}
	sess, err := concurrency.NewSession(c.cfg.Etcd, concurrency.WithLease(lease), concurrency.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, c.k.Election())
	c.log.Info("campaigning", "election", c.k.Election())
	won := make(chan error, 1)
	go func() { won <- el.Campaign(pctx, c.cfg.Advertise) }()
	select {
	case err := <-won:
		if err != nil {
			if pctx.Err() != nil {
				return stopped(ctx.Err())
			}
			return false, fmt.Errorf("campaign: %w", err)
		}
	case <-c.stop:
		return true, nil
	case <-sess.Done():
		return false, errors.New("etcd session expired while campaigning")
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer rcancel()
		_ = el.Resign(rctx)
	}()
	c.log.Info("elected coordinator", "advertise", c.cfg.Advertise)
	leader := clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())

	// What is in force: the job, the generation, the newest generation id.
	var rec *cluster.JobRecord
	var cur *cluster.Generation
	var lastID int64
	if err := cluster.Retry(ctx, c.cfg.Etcd, c.log, "read the cluster state", func(actx context.Context) error {
		var err error
		if lastID, err = cluster.ReadGenerationID(actx, c.cfg.Etcd, c.k); err != nil {
			return err
		}
		if cur, err = cluster.ReadGeneration(actx, c.cfg.Etcd, c.k); err != nil {
			return err
		}
		resp, err := c.cfg.Etcd.Get(actx, c.k.Job())
		if err != nil {
			return err
		}
		rec = nil
		if len(resp.Kvs) == 1 {
			rec = new(cluster.JobRecord)
			if json.Unmarshal(resp.Kvs[0].Value, rec) != nil {
				rec = nil
			}
		}
		return nil
	}); err != nil {
		return true, err
	}
	// A standby (perhaps with a run dir of its own) that takes over the
	// same job continues its run.
	var adopt *cluster.Generation
	if rec != nil && cur != nil && cur.Run == rec.Run && !cur.Over() && reflect.DeepEqual(rec.Job, c.cfg.Job) {
		if rec.Run != c.run.ID {
			c.log.Info("continuing the run of the previous coordinator", "run", rec.Run)
			c.run.ID = rec.Run
			if err := saveRun(c.cfg.RunDir, c.run); err != nil {
				return true, err
			}
		}
		adopt = cur
	}
	newRec := cluster.JobRecord{Run: c.run.ID, Job: c.cfg.Job, Manifest: manifest}
	recJSON, _ := json.Marshal(newRec)
	coordJSON, _ := json.Marshal(cluster.CoordinatorRecord{Address: c.cfg.Advertise, Run: c.run.ID})
	if err := cluster.Retry(ctx, c.cfg.Etcd, c.log, "publish the job", func(actx context.Context) error {
		resp, err := c.cfg.Etcd.Txn(actx).If(leader).Then(
			clientv3.OpPut(c.k.Job(), string(recJSON)),
			clientv3.OpPut(c.k.Coordinator(), string(coordJSON), clientv3.WithLease(sess.Lease())),
			clientv3.OpDelete(c.k.Result()),
		).Commit()
		if err == nil && !resp.Succeeded {
			return cluster.Final(errNotLeader)
		}
		return err
	}); err != nil {
		return false, err
	}

	ckpt, err := latestCheckpoint(c.cfg.RunDir)
	if err != nil {
		return true, fmt.Errorf("find checkpoint in %s: %w", c.cfg.RunDir, err)
	}
	if ckpt != nil {
		c.log.Info("newest checkpoint", "step", ckpt.Step)
	}
	written, lastLoss, err := writtenSteps(c.cfg.RunDir)
	if err != nil {
		c.log.Warn("reading the run's metrics", "err", err)
	}
	j := c.cfg.Job
	m := NewMachine(MachineConfig{
		Job: j.Name, MinWorkers: j.Workers.Min, MaxWorkers: j.Workers.Max, MaxSteps: j.Train.MaxSteps,
		CheckpointEvery: j.Checkpoint.Every, Settle: c.cfg.Settle, ReportWindow: c.cfg.ReportWindow,
		StallTimeout: j.Workers.StallTimeout.D(), DataDigest: manifest.Digest, LastCheckpoint: ckpt,
		Written: written, LastLoss: lastLoss, FirstGeneration: lastID + 1, Adopt: adopt,
	})
	return c.lead(ctx, sess, leader, m)
}

// lead runs the machine as leader until the job ends or the leadership is lost.
func (c *Coordinator) lead(ctx context.Context, sess *concurrency.Session, leader clientv3.Cmp, m *Machine) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	c.mu.Lock()
	c.leader = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.leader = false
		c.mu.Unlock()
	}()

	var members cluster.Latest[[]cluster.Member]
	wg.Go(func() { _ = cluster.WatchMembers(ctx, c.cfg.Etcd, c.log, c.k, &members) })
	_, _, membersChanged := members.Get()

	type commitReq struct {
		step    int
		lineage int64
	}
	type commitRes struct {
		commitReq
		err error
	}
	commits := make(chan commitReq, 16)
	committed := make(chan commitRes, 16)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case r := <-commits:
				err := c.commit(r.step)
				c.counters.checkpointEnded(r.step, err == nil, time.Now())
				select {
				case committed <- commitRes{r, err}:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	type probeRes struct {
		name  string
		inc   uint64
		alive bool
	}
	probes := make(chan probeRes, 16)

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var result error
	finished, lost := false, false
	apply := func(acts []Action) {
		for _, a := range acts {
			switch a := a.(type) {
			case Publish:
				a.Gen.Run = c.run.ID
				if err := c.publish(ctx, leader, &a.Gen); err != nil {
					c.log.Warn("publish generation", "generation", a.Gen.ID, "err", err)
					if errors.Is(err, errNotLeader) {
						lost = true
					}
				}
			case Probe:
				wg.Go(func() {
					alive := c.probe(ctx, a.Address)
					select {
					case probes <- probeRes{a.Name, a.Incarnation, alive}:
					case <-ctx.Done():
					}
				})
			case Commit:
				select {
				case commits <- commitReq{a.Step, a.Lineage}:
				case <-ctx.Done():
				}
			case Record:
				if err := c.history.Append(a.Line); err != nil {
					c.log.Warn("metrics.jsonl", "err", err)
				}
				if e := a.Line.Event; e != nil {
					c.counters.event(e)
					c.log.Info("event", "event", e.Event, "step", e.Step, "generation", e.Generation, "worker", e.Worker, "seconds", e.Seconds, "detail", e.Detail)
				}
			case Finish:
				finished = true
				switch {
				case a.Err != nil:
					result = fmt.Errorf("%w: %v", ErrJobFailed, a.Err)
					c.log.Error("job failed", "err", a.Err)
				case a.Stopped:
					c.log.Info("job stopped", "step", m.Status(time.Now()).Step)
				default:
					c.log.Info("job done", "step", m.Status(time.Now()).Step)
				}
				_ = c.history.Sync()
			}
		}
	}
	apply(m.Start(time.Now()))
	prev := m.Status(time.Now())
	c.publishStatus(prev)
	stopCh := c.stop
	for !finished {
		if lost {
			return false, errNotLeader
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-sess.Done():
			return false, errors.New("etcd session expired (etcd unreachable for longer than the lease)")
		case <-membersChanged:
			var ms []cluster.Member
			ms, _, membersChanged = members.Get()
			apply(m.SetMembers(time.Now(), ms))
		case cl := <-c.calls:
			apply(cl.f(time.Now(), m))
			close(cl.done)
		case r := <-committed:
			apply(m.Committed(time.Now(), r.step, r.lineage, r.err))
		case p := <-probes:
			apply(m.Probed(time.Now(), p.name, p.inc, p.alive))
		case <-stopCh:
			stopCh = nil
			c.log.Info("stopping: the workers finish the step in flight, then the checkpoint of it is committed")
			apply(m.Stop(time.Now()))
		case now := <-tick.C:
			apply(m.Tick(now))
		}
		st := m.Status(time.Now())
		if st.Phase != prev.Phase || st.Err != prev.Err {
			switch {
			case st.Err != "" && st.Phase != PhaseRunning:
				c.log.Warn("phase", "phase", st.Phase, "step", st.Step, "why", st.Err)
			default:
				c.log.Info("phase", "phase", st.Phase, "step", st.Step)
			}
		}
		prev = st
		c.publishStatus(st)
	}
	if lost {
		// The job's end was not published: the next leader (this one,
		// elected again) publishes it.
		return false, errNotLeader
	}
	st := m.Status(time.Now())
	c.publishStatus(st)
	c.writeResult(ctx, leader, st)
	return true, result
}

// writeResult leaves the job's final state in etcd (PREFIX/result, no
// lease) for `ringtrain status --etcd` once this coordinator is gone.
func (c *Coordinator) writeResult(ctx context.Context, leader clientv3.Cmp, st Status) {
	r := cluster.Result{Run: c.run.ID, Job: st.Job, Phase: string(st.Phase), Step: int64(st.Step), MaxSteps: int64(st.MaxSteps),
		Loss: st.Loss, LastCheckpoint: int64(st.LastCheckpoint), RunDir: c.cfg.RunDir, Note: st.Err,
		Coordinator: c.cfg.Advertise, Time: time.Now().UTC()}
	if st.HasVal {
		v := st.ValLoss
		r.ValLoss, r.ValStep = &v, int64(st.ValStep)
	}
	data, err := json.Marshal(r)
	if err != nil {
		c.log.Warn("encode the job's result", "err", err)
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := c.cfg.Etcd.Txn(wctx).If(leader).Then(clientv3.OpPut(c.k.Result(), string(data))).Commit(); err != nil {
		c.log.Warn("write the job's result", "key", c.k.Result(), "err", err)
	}
}

func (c *Coordinator) publishStatus(s Status) { c.hub.set(s) }

// copyFile copies src into dir/name atomically.
func copyFile(dir, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return checkpoint.WriteFile(dir, name, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

// commit copies the extras into checkpoint step, writes its COMMIT marker
// and prunes old checkpoints.
func (c *Coordinator) commit(step int) error {
	dir := checkpoint.Dir(c.cfg.RunDir, int64(step))
	for name, src := range c.cfg.Extras {
		if err := copyFile(dir, name, src); err != nil {
			return fmt.Errorf("copy %s into the checkpoint: %w", src, err)
		}
	}
	if err := checkpoint.Commit(dir); err != nil {
		return err
	}
	c.log.Info("checkpoint committed", "step", step, "dir", dir)
	if err := c.history.Sync(); err != nil {
		c.log.Warn("metrics.jsonl", "err", err)
	}
	if err := checkpoint.Prune(c.cfg.RunDir, c.cfg.Job.Checkpoint.Keep); err != nil {
		c.log.Warn("prune checkpoints", "err", err)
	}
	return nil
}

// probe health-checks a worker's peer server.
func (c *Coordinator) probe(ctx context.Context, addr string) bool {
	cc, err := grpc.NewClient(addr, c.cfg.Dial...)
	if err != nil {
		return false
	}
	defer cc.Close()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(pctx, &healthpb.HealthCheckRequest{})
	return err == nil
}

// publish writes g if this coordinator still leads the election. The
// generation key has no lease: it outlives this coordinator, so that the
// workers keep training while a new one takes over.
func (c *Coordinator) publish(ctx context.Context, leader clientv3.Cmp, g *cluster.Generation) error {
	data, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode generation: %w", err)
	}
	return cluster.Retry(ctx, c.cfg.Etcd, c.log, "publish generation "+strconv.FormatInt(g.ID, 10), func(actx context.Context) error {
		resp, err := c.cfg.Etcd.Txn(actx).If(leader).Then(
			clientv3.OpPut(c.k.Generation(), string(data)),
			clientv3.OpPut(c.k.GenerationID(), strconv.FormatInt(g.ID, 10)),
		).Commit()
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return cluster.Final(errNotLeader)
		}
		c.log.Info("published generation", "generation", g.ID, "world", len(g.Members), "mode", g.Mode, "abort", g.Abort)
		return nil
	})
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
