package coordinator

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Phase is the job's phase as the coordinator sees it.
type Phase string

// The phases of a job (spec section 1).
const (
	PhaseWaiting       Phase = "waiting"       // not enough workers for a generation
	PhaseRunning       Phase = "running"       // a generation is training
	PhaseCheckpointing Phase = "checkpointing" // a checkpoint barrier is open
	PhaseRecovering    Phase = "recovering"    // a new generation replaces a broken one, from the last checkpoint
	PhaseDone          Phase = "done"          // the final checkpoint is committed
	PhaseFailed        Phase = "failed"        // a worker or the coordinator hit an error it cannot recover from
)

// Worker states shown in the status.
const (
	StateJoined        = "joined"        // registered, not in a generation yet
	StateSpare         = "spare"         // registered, waits outside the current generation
	StateStarting      = "starting"      // in the current generation, not ready yet
	StateTraining      = "training"      // in the current generation, reporting steps
	StateCheckpointing = "checkpointing" // wrote its part of an open checkpoint
	StateDone          = "done"
	StateFailed        = "failed"
	StateLost          = "lost" // its registration vanished (lease expired)
)

// Member is a registered worker: its name and the address its peers and
// the coordinator reach it on. Members are listed in registration order.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// RankedMember is a member of a generation.
type RankedMember struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Rank    int    `json:"rank"`
	// SeqLo and SeqHi bound this rank's slice of every step's global batch:
	// global sequences s·G+SeqLo … s·G+SeqHi−1 (spec section 4).
	SeqLo int `json:"seq_lo"`
	SeqHi int `json:"seq_hi"`
}

// ReportKind says what a worker reports.
type ReportKind int

// Kinds of worker reports.
const (
	ReportReady          ReportKind = iota + 1 // restored, about to train
	ReportStep                                 // finished a step; Step = steps completed
	ReportCheckpointPart                       // its part of the checkpoint at Step is durable
	ReportFailed                               // cannot go on; Err says why
	ReportRingFailed                           // the generation's ring broke; Err says how
)

// Report is one worker report, as the machine sees it.
type Report struct {
	Name       string
	Generation int64
	Rank       int
	Kind       ReportKind
	Step       int // steps completed
	Loss       float64
	LR         float64
	GradNorm   float64
	Tokens     int64 // tokens of the step, all ranks together
	StepTime   time.Duration
	HasVal     bool
	ValLoss    float64
	Err        string
}

// MachineConfig fixes what the decision logic needs of the job.
type MachineConfig struct {
	Job             string
	MinWorkers      int
	MaxWorkers      int
	MaxSteps        int
	GlobalBatch     int
	CheckpointEvery int // 0: only the final checkpoint
	// Settle is how long to wait for more workers once MinWorkers have
	// registered but fewer than MaxWorkers (torchrun's last call).
	Settle time.Duration
	// ValidWorld reports whether the job can run on w workers (for example
	// the global batch must divide by w). Nil accepts every w.
	ValidWorld func(w int) error
	// LastCheckpoint is the step of the newest committed checkpoint found
	// at start, or −1.
	LastCheckpoint int
	// FirstGeneration is the ID the first generation gets (one more than
	// any generation published before, so that workers see it as new).
	FirstGeneration int64
	// MaxRegroups is how many generations in a row may break without a
	// step of progress before the job fails (default 5).
	MaxRegroups int
	// RegroupDelay is how long a broken ring waits for a lost worker's
	// registration to expire before it is re-formed with the same workers
	// (default 6s; more than the workers' lease TTL).
	RegroupDelay time.Duration
	// StallTimeout is how long a member of the current generation may stay
	// silent (no report) before the generation is re-formed without
	// waiting for it (default 10m; the first step includes loading).
	StallTimeout time.Duration
}

// GenerationPlan is what the machine decides for a new generation; the
// runtime adds the job, the run dir and addresses and publishes it.
type GenerationPlan struct {
	ID         int64
	Members    []RankedMember
	StartStep  int // steps completed when it starts
	ResumeStep int // checkpoint to restore from, or −1 for a fresh start
}

// Actions the machine asks its runtime to carry out.
type (
	// Action is one of the types below.
	Action interface{ isAction() }
	// Publish a new generation.
	Publish struct{ Plan GenerationPlan }
	// Commit the checkpoint at Step: every part is durable; write the
	// commit marker and prune old checkpoints, then call Committed.
	Commit struct {
		Step       int
		Generation int64
	}
	// Finish: the job is over; Err is nil when it is done.
	Finish struct{ Err error }
)

func (Publish) isAction() {}
func (Commit) isAction()  {}
func (Finish) isAction()  {}

// Errors of the decision logic.
var (
	ErrWorkerFailed = errors.New("worker failed")
	ErrNoWorldSize  = errors.New("no valid world size")
	ErrCommit       = errors.New("checkpoint commit failed")
	ErrNoProgress   = errors.New("no progress")
)

// WorkerView is the coordinator's view of one worker.
type WorkerView struct {
	Name          string
	Rank          int // −1 outside the current generation
	Address       string
	State         string
	Step          int
	LastHeartbeat time.Time
	StepTime      time.Duration
	TokensPerS    float64
}

// Status is a snapshot of the job.
type Status struct {
	Job            string
	Phase          Phase
	Step           int
	MaxSteps       int
	Loss           float64
	ValLoss        float64
	LR             float64
	GradNorm       float64
	TokensPerS     float64
	Tokens         int64
	Generation     int64
	World          int
	ETA            time.Duration
	LastCheckpoint int
	Err            string
	Workers        []WorkerView
}

// Machine is the coordinator's decision logic: generation formation, rank
// assignment, the checkpoint barrier and the phase. It does no I/O and
// reads no clock: every event carries the time, and the actions it returns
// are carried out by its owner.
type Machine struct {
	cfg MachineConfig

	phase      Phase
	err        string
	lossMsg    string    // why the last generation broke, until a new one runs
	members    []Member  // registered, in registration order
	readySince time.Time // when len(members) first reached MinWorkers while waiting

	nextID   int64
	gen      *GenerationPlan
	ready    map[int]bool         // ranks of gen that reported ready or a step
	parts    map[int]map[int]bool // checkpoint step → ranks whose part is durable
	commits  map[int]bool         // steps whose commit was requested
	lastCkpt int

	step     int
	loss     float64
	valLoss  float64
	lr       float64
	gradNorm float64
	tokens   int64
	tokPerS  float64
	stepTime time.Duration // moving average of rank 0's step time
	views    map[string]*WorkerView
	finished bool

	regroups    int       // generations broken since the last progress
	regroupStep int       // the step the newest regroup restarted from
	brokenAt    time.Time // when the current generation's ring broke
	brokenWhy   string
}

// NewMachine returns a machine in phase waiting, or done when the newest
// checkpoint is already the final one.
func NewMachine(cfg MachineConfig) *Machine {
	m := &Machine{
		cfg:      cfg,
		phase:    PhaseWaiting,
		nextID:   cfg.FirstGeneration,
		lastCkpt: cfg.LastCheckpoint,
		views:    map[string]*WorkerView{},
		commits:  map[int]bool{},
		parts:    map[int]map[int]bool{},
	}
	if m.nextID < 1 {
		m.nextID = 1
	}
	if m.cfg.MaxRegroups == 0 {
		m.cfg.MaxRegroups = 5
	}
	if m.cfg.RegroupDelay == 0 {
		m.cfg.RegroupDelay = 6 * time.Second
	}
	if m.cfg.StallTimeout == 0 {
		m.cfg.StallTimeout = 10 * time.Minute
	}
	if cfg.LastCheckpoint > 0 {
		m.step = cfg.LastCheckpoint
	}
	return m
}

// Start returns the actions due before any event: Finish when the job was
// already done at start.
func (m *Machine) Start() []Action {
	if m.lastCkpt >= m.cfg.MaxSteps {
		m.phase = PhaseDone
		m.finished = true
		return []Action{Finish{}}
	}
	return nil
}

// Phase returns the current phase.
func (m *Machine) Phase() Phase { return m.phase }

// Generation returns the current generation plan, or nil.
func (m *Machine) Generation() *GenerationPlan { return m.gen }

// SetMembers records the registered workers (in registration order).
func (m *Machine) SetMembers(now time.Time, members []Member) []Action {
	if m.finished {
		return nil
	}
	m.members = append(m.members[:0:0], members...)
	present := map[string]bool{}
	for _, mb := range members {
		present[mb.Name] = true
		v := m.views[mb.Name]
		if v == nil {
			v = &WorkerView{Name: mb.Name, Rank: -1, State: StateJoined}
			m.views[mb.Name] = v
			if m.gen != nil {
				v.State = StateSpare
			}
		}
		v.Address = mb.Address
		if v.State == StateLost {
			v.State = StateJoined
			if m.gen != nil {
				v.State = StateSpare
			}
		}
		if v.LastHeartbeat.IsZero() {
			v.LastHeartbeat = now
		}
	}
	for name, v := range m.views {
		if !present[name] {
			if v.Rank < 0 && v.State != StateLost {
				delete(m.views, name) // a spare left: forget it
				continue
			}
			v.State = StateLost
		}
	}
	if m.gen != nil {
		var lost []string
		for _, rm := range m.gen.Members {
			if !present[rm.Name] {
				lost = append(lost, rm.Name)
			}
		}
		if len(lost) > 0 {
			return m.regroup(now, fmt.Sprintf("worker %s lost at step %d", lost[0], m.step))
		}
		return nil
	}
	return m.tryForm(now)
}

// regroup drops the broken generation and forms a new one from the last
// committed checkpoint if enough workers remain.
func (m *Machine) regroup(now time.Time, why string) []Action {
	m.regroups++
	if m.regroups > m.cfg.MaxRegroups {
		return m.fail(fmt.Errorf("%w: %d generations in a row broke without progress; last: %s", ErrNoProgress, m.regroups, why))
	}
	m.regroupStep = max(m.lastCkpt, 0)
	m.brokenAt, m.brokenWhy = time.Time{}, ""
	m.gen = nil
	m.parts = map[int]map[int]bool{}
	m.ready = nil
	for _, v := range m.views {
		if v.State != StateLost {
			v.State = StateJoined
		}
		v.Rank = -1
	}
	m.lossMsg = why
	m.err = why
	m.readySince = time.Time{}
	m.phase = PhaseRecovering
	acts := m.tryFormNow(now)
	if m.gen == nil {
		m.phase = PhaseWaiting
		acts = append(acts, m.tryForm(now)...)
	}
	return acts
}

// Tick advances the clock: the settle period ends; a broken ring whose
// workers all stayed registered is re-formed.
func (m *Machine) Tick(now time.Time) []Action {
	if m.finished {
		return nil
	}
	if m.gen != nil {
		if !m.brokenAt.IsZero() && now.Sub(m.brokenAt) >= m.cfg.RegroupDelay {
			return m.regroup(now, m.brokenWhy)
		}
		for _, rm := range m.gen.Members {
			if v := m.views[rm.Name]; v != nil && now.Sub(v.LastHeartbeat) >= m.cfg.StallTimeout {
				return m.regroup(now, fmt.Sprintf("worker %s (rank %d) sent no report for %s", rm.Name, rm.Rank, m.cfg.StallTimeout))
			}
		}
		return nil
	}
	return m.tryForm(now)
}

func (m *Machine) tryForm(now time.Time) []Action {
	n := len(m.members)
	if n < m.cfg.MinWorkers || n == 0 {
		m.readySince = time.Time{}
		m.err = fmt.Sprintf("%d of %d workers (workers.min) registered", n, m.cfg.MinWorkers)
		if m.lossMsg != "" {
			m.err = m.lossMsg + "; " + m.err + fmt.Sprintf(", resuming from step %d", max(m.lastCkpt, 0))
		}
		return nil
	}
	if n < m.cfg.MaxWorkers {
		if m.readySince.IsZero() {
			m.readySince = now
		}
		if now.Sub(m.readySince) < m.cfg.Settle {
			if m.lossMsg == "" {
				m.err = fmt.Sprintf("%d workers registered; waiting %s for up to %d (workers.max)", n, m.cfg.Settle, m.cfg.MaxWorkers)
			}
			return nil
		}
	}
	return m.tryFormNow(now)
}

func (m *Machine) tryFormNow(now time.Time) []Action {
	n := min(len(m.members), m.cfg.MaxWorkers)
	w := 0
	var lastErr error
	for c := n; c >= max(m.cfg.MinWorkers, 1); c-- {
		if m.cfg.ValidWorld != nil {
			if err := m.cfg.ValidWorld(c); err != nil {
				lastErr = err
				continue
			}
		}
		w = c
		break
	}
	if w == 0 {
		if lastErr != nil {
			m.err = fmt.Sprintf("%v: %d workers registered: %v", ErrNoWorldSize, len(m.members), lastErr)
		}
		return nil
	}
	plan := GenerationPlan{ID: m.nextID, StartStep: max(m.lastCkpt, 0), ResumeStep: m.lastCkpt}
	m.nextID++
	g := m.cfg.GlobalBatch
	for r := 0; r < w; r++ {
		mb := m.members[r]
		plan.Members = append(plan.Members, RankedMember{
			Name: mb.Name, Address: mb.Address, Rank: r,
			SeqLo: r * g / w, SeqHi: (r + 1) * g / w,
		})
		v := m.views[mb.Name]
		v.Rank, v.State, v.Step, v.LastHeartbeat = r, StateStarting, plan.StartStep, now
	}
	for _, mb := range m.members[w:] {
		m.views[mb.Name].State = StateSpare
	}
	m.gen = &plan
	m.ready = map[int]bool{}
	m.step = plan.StartStep
	if m.phase == PhaseWaiting {
		m.phase = PhaseRunning
		if m.lossMsg != "" {
			m.phase = PhaseRecovering
		}
	}
	m.err = m.lossMsg
	return []Action{Publish{Plan: plan}}
}

func (m *Machine) recovered() {
	m.phase = PhaseRunning
	m.err, m.lossMsg = "", ""
}

// IsCheckpointStep reports whether a checkpoint is due after step
// completed steps (spec section 6: every checkpoint.every steps and at the end).
func IsCheckpointStep(completed, every, maxSteps int) bool {
	if completed <= 0 {
		return false
	}
	return completed == maxSteps || (every > 0 && completed%every == 0)
}

// Report handles a worker report. stale is true when the report belongs to
// another generation and was ignored.
func (m *Machine) Report(now time.Time, r Report) (stale bool, acts []Action) {
	if m.gen == nil || r.Generation != m.gen.ID || r.Rank < 0 || r.Rank >= len(m.gen.Members) ||
		m.gen.Members[r.Rank].Name != r.Name {
		return true, nil
	}
	if m.finished {
		return false, nil
	}
	v := m.views[r.Name]
	if v == nil { // registration not seen yet; the report still counts
		v = &WorkerView{Name: r.Name, Rank: r.Rank, Address: m.gen.Members[r.Rank].Address}
		m.views[r.Name] = v
	}
	v.LastHeartbeat = now
	switch r.Kind {
	case ReportReady:
		m.ready[r.Rank] = true
		v.State = StateTraining
		if len(m.ready) == len(m.gen.Members) && m.phase == PhaseRecovering {
			m.recovered()
		}
	case ReportStep:
		m.ready[r.Rank] = true
		v.State, v.Step = StateTraining, r.Step
		v.StepTime = r.StepTime
		if r.StepTime > 0 {
			v.TokensPerS = float64(r.Tokens) / float64(len(m.gen.Members)) / r.StepTime.Seconds()
		}
		if m.phase == PhaseRecovering {
			m.recovered()
		}
		if r.Step > m.regroupStep {
			m.regroups = 0
		}
		if r.Rank == 0 {
			m.step = r.Step
			m.loss, m.lr, m.gradNorm = r.Loss, r.LR, r.GradNorm
			m.tokens += r.Tokens
			if r.HasVal {
				m.valLoss = r.ValLoss
			}
			if r.StepTime > 0 {
				m.tokPerS = float64(r.Tokens) / r.StepTime.Seconds()
				if m.stepTime == 0 {
					m.stepTime = r.StepTime
				} else {
					m.stepTime = (m.stepTime*4 + r.StepTime) / 5
				}
			}
		}
	case ReportCheckpointPart:
		if !IsCheckpointStep(r.Step, m.cfg.CheckpointEvery, m.cfg.MaxSteps) || r.Step <= m.lastCkpt || m.commits[r.Step] {
			return false, nil
		}
		v.State = StateCheckpointing
		ranks := m.parts[r.Step]
		if ranks == nil {
			ranks = map[int]bool{}
			m.parts[r.Step] = ranks
		}
		ranks[r.Rank] = true
		if m.phase == PhaseRunning {
			m.phase = PhaseCheckpointing
		}
		if len(ranks) == len(m.gen.Members) {
			m.commits[r.Step] = true
			return false, []Action{Commit{Step: r.Step, Generation: m.gen.ID}}
		}
	case ReportRingFailed:
		// A lost worker shows up as a deleted registration once its lease
		// expires; wait for that (SetMembers regroups) or re-form the ring
		// with the same workers after RegroupDelay.
		if m.brokenAt.IsZero() {
			m.brokenAt = now
			m.brokenWhy = fmt.Sprintf("ring of generation %d broke at step %d (reported by %s): %s", m.gen.ID, m.step, r.Name, r.Err)
			m.phase = PhaseRecovering
			m.err = m.brokenWhy
		}
	case ReportFailed:
		v.State = StateFailed
		return false, m.fail(fmt.Errorf("%w: %s (rank %d) at step %d: %s", ErrWorkerFailed, r.Name, r.Rank, v.Step, r.Err))
	}
	return false, nil
}

// Committed records the outcome of a Commit action.
func (m *Machine) Committed(now time.Time, step int, err error) []Action {
	if m.finished {
		return nil
	}
	delete(m.parts, step)
	if err != nil {
		return m.fail(fmt.Errorf("%w: step %d: %v", ErrCommit, step, err))
	}
	if step > m.lastCkpt {
		m.lastCkpt = step
	}
	if m.gen != nil {
		for _, rm := range m.gen.Members {
			if v := m.views[rm.Name]; v != nil && v.State == StateCheckpointing {
				v.State = StateTraining
			}
		}
	}
	if m.phase == PhaseCheckpointing && len(m.parts) == 0 {
		m.phase = PhaseRunning
	}
	if step >= m.cfg.MaxSteps {
		m.phase = PhaseDone
		m.finished = true
		m.step = step
		for _, v := range m.views {
			if v.Rank >= 0 {
				v.State = StateDone
			}
		}
		return []Action{Finish{}}
	}
	return nil
}

// Fail ends the job with err (an error of the runtime, say etcd).
func (m *Machine) Fail(err error) []Action {
	if m.finished {
		return nil
	}
	return m.fail(err)
}

func (m *Machine) fail(err error) []Action {
	m.phase = PhaseFailed
	m.err = err.Error()
	m.finished = true
	return []Action{Finish{Err: err}}
}

// Status returns a snapshot of the job.
func (m *Machine) Status() Status {
	s := Status{
		Job: m.cfg.Job, Phase: m.phase, Step: m.step, MaxSteps: m.cfg.MaxSteps,
		Loss: m.loss, ValLoss: m.valLoss, LR: m.lr, GradNorm: m.gradNorm,
		TokensPerS: m.tokPerS, Tokens: m.tokens, LastCheckpoint: m.lastCkpt, Err: m.err,
	}
	if m.gen != nil {
		s.Generation = m.gen.ID
		s.World = len(m.gen.Members)
	}
	if m.stepTime > 0 && m.phase != PhaseDone {
		s.ETA = time.Duration(m.cfg.MaxSteps-m.step) * m.stepTime
	}
	for _, v := range m.views {
		s.Workers = append(s.Workers, *v)
	}
	sort.Slice(s.Workers, func(i, j int) bool {
		a, b := s.Workers[i], s.Workers[j]
		if (a.Rank < 0) != (b.Rank < 0) {
			return a.Rank >= 0
		}
		if a.Rank != b.Rank {
			return a.Rank < b.Rank
		}
		return a.Name < b.Name
	})
	return s
}
