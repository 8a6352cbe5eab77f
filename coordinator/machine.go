package coordinator

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/runmetrics"
)

// Phase is the job's phase as the coordinator sees it.
type Phase string

// The phases of a job (docs/cluster.md).
const (
	PhaseWaiting       Phase = "waiting"       // not enough workers for a generation
	PhaseRunning       Phase = "running"       // a generation is training
	PhaseCheckpointing Phase = "checkpointing" // a checkpoint is being written, or the job drains to one
	PhaseRecovering    Phase = "recovering"    // a new generation replaces a broken one
	PhaseDone          Phase = "done"          // the final checkpoint is committed
	PhaseFailed        Phase = "failed"        // an error nothing can recover from
)

// Worker states shown in the status.
const (
	StateJoined        = "joined"        // registered, not in a generation yet
	StateSpare         = "spare"         // registered, waits outside the current generation (workers.max reached)
	StateStarting      = "starting"      // in the current generation, not ready yet
	StateTraining      = "training"      // in the current generation, reporting steps
	StateCheckpointing = "checkpointing" // uploading a checkpoint
	StateStalled       = "stalled"       // made no progress for workers.stall_timeout; dropped
	StateSuspect       = "suspect"       // did not answer after its ring broke; dropped until it speaks again
	StateLeaving       = "leaving"       // stopped at a step boundary to leave (SIGTERM)
	StateRefused       = "refused"       // its data differs from the coordinator's
	StateLost          = "lost"          // its registration vanished
	StateDone          = "done"
	StateFailed        = "failed"
)

// ReportKind says what a worker reports.
type ReportKind int

// Kinds of worker reports (proto WorkerReport.Kind).
const (
	ReportReady      ReportKind = iota + 1 // joined the generation with the state it starts from
	ReportStep                             // finished a step; Step = steps completed
	ReportFailed                           // cannot go on; Err says why
	ReportRingFailed                       // the generation's ring broke; Err says how
	ReportStandby                          // alive, outside any ring
	ReportLeaving                          // stopped at a boundary to leave the cluster
	ReportHeartbeat                        // busy with a long step (Phase)
	ReportDrained                          // stopped at the boundary Step of a drain
)

// Report is one worker report, as the machine sees it.
type Report struct {
	Name        string
	Incarnation uint64
	Generation  int64
	Rank        int
	Kind        ReportKind
	Step        int   // steps completed
	Lineage     int64 // generation that computed Step
	Loss        float64
	LR          float64
	GradNorm    float64
	Tokens      int64 // tokens of the step, all ranks together
	World       int   // world size of the generation that ran the step
	StepTime    time.Duration
	Compute     time.Duration // forward + backward
	ReduceWait  time.Duration
	Optimizer   time.Duration
	HasVal      bool
	ValLoss     float64
	Err         string
	Phase       string  // heartbeat: what the worker is busy with
	HealSeconds float64 // ready: time spent getting the state
	HealSource  int     // ready: the rank the state came from, −1 none
	HealBytes   int64   // ready
	Loaded      bool    // ready: the state came from the checkpoint
}

// MachineConfig fixes what the decision logic needs of the job.
type MachineConfig struct {
	Job             string
	MinWorkers      int
	MaxWorkers      int
	MaxSteps        int
	CheckpointEvery int // 0: only the final checkpoint
	// Settle is how long to wait for more workers before forming a
	// generation of fewer than MaxWorkers, and for more joiners before
	// growing a running one (torchrun's last call).
	Settle time.Duration
	// ReportWindow is how long the members of a broken ring have to speak
	// up before those silent are dropped (default 2s), and how long a
	// member whose registration vanished may keep reporting before it is
	// taken for gone (an etcd outage deletes registrations of live
	// workers, who register again).
	ReportWindow time.Duration
	// StallTimeout: a member of the current generation that completes no
	// step for this long is dropped (default 60s).
	StallTimeout time.Duration
	// DataDigest is the digest of the shard manifest; members that checked
	// other data are refused.
	DataDigest string
	// LastCheckpoint is the newest committed checkpoint at start, or nil.
	LastCheckpoint *cluster.Version
	// Written are the steps already in metrics.jsonl, and LastLoss the
	// loss of the newest.
	Written  []int
	LastLoss float64
	// FirstGeneration is the ID the first generation gets (one more than
	// any generation published before).
	FirstGeneration int64
	// Adopt is the generation in force in etcd when this coordinator took
	// over (of the same run), or nil: its members keep training.
	Adopt *cluster.Generation
	// MaxRegroups is how many generations in a row may break without a
	// step of progress before the job fails (default 10).
	MaxRegroups int
}

// Actions the machine asks its runtime to carry out.
type (
	// Action is one of the types below.
	Action interface{ isAction() }
	// Publish a generation (the runtime adds the run id).
	Publish struct{ Gen cluster.Generation }
	// Probe asks whether a member is alive (a health check of its peer
	// server); the answer comes back as Probed.
	Probe struct {
		Name, Address string
		Incarnation   uint64
	}
	// Commit the checkpoint at Step, whose files are all in place; then
	// call Committed.
	Commit struct {
		Step    int
		Lineage int64
	}
	// Record appends a line to RUN/metrics.jsonl.
	Record struct{ Line Line }
	// Finish: the job is over (Err nil: done, or stopped when Stopped).
	Finish struct {
		Err     error
		Stopped bool
	}
)

func (Publish) isAction() {}
func (Probe) isAction()   {}
func (Commit) isAction()  {}
func (Record) isAction()  {}
func (Finish) isAction()  {}

// Errors of the decision logic.
var (
	ErrWorkerFailed = errors.New("worker failed")
	ErrNoProgress   = errors.New("no progress")
)

// WorkerView is the coordinator's view of one worker.
type WorkerView struct {
	Name        string
	Incarnation uint64
	Rank        int // −1 outside the current generation
	Address     string
	State       string
	Detail      string
	Step        int
	LastReport  time.Time
	StepTime    time.Duration
	Compute     time.Duration
	ReduceWait  time.Duration
	Optimizer   time.Duration
	TokensPerS  float64
	Phase       string // of its last heartbeat

	lastProgress time.Time // newest step report (or joining the generation)
	suspect      bool      // silent after a ring break: not eligible until it reports
	stalls       int       // times it was dropped as stalled
	heldUntil    time.Time // a stalled one is not taken back before this
	gaveUp       bool      // a stalled one said it gave up its run
	refused      bool
	failed       bool
	leaving      bool
	registered   bool
	goneSince    time.Time // when its registration vanished
}

// Event is something that happened, for the status and metrics.jsonl.
type Event struct {
	Time       time.Time
	Kind       string
	Step       int
	Generation int64
	World      int
	Worker     string
	Seconds    float64
	Detail     string
	Redone     int // completed steps trained again ("recovered")
}

// Status is a snapshot of the job.
type Status struct {
	Job            string
	Phase          Phase
	Step           int
	MaxSteps       int
	Loss           float64
	ValLoss        float64
	HasVal         bool
	ValStep        int  // steps completed when ValLoss was measured
	Reported       bool // LR and GradNorm are of a reported step (not known after a restart until one is)
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
	Events         []Event
}

// change is a membership change in progress: when it started, whether it
// was planned (a join or a graceful leave, which lose no step) or a
// failure, and what it was, for the "recovered" event that times it.
type change struct {
	at      time.Time
	planned bool
	what    string
	highest int   // the most steps any state held when it began
	gen     int64 // the generation it formed (0: none yet)
}

// begin records a change, a failure taking precedence over a planned one.
func (m *Machine) begin(at time.Time, planned bool, what string) {
	if m.change.at.IsZero() || (m.change.planned && !planned) {
		m.change = change{at: at, planned: planned, what: what, highest: max(m.step, m.written.max+1)}
	}
}

// broken is the state of a generation whose ring broke.
type broken struct {
	at    time.Time
	why   string
	heard map[string]bool // members that spoke since
}

const maxEvents = 20

// historyGrace is how long a done job waits for step reports that are
// still on their way before it ends without them.
const historyGrace = 10 * time.Second

// Machine is the coordinator's decision logic: generation formation, rank
// assignment, recovery of broken rings, joins and leaves, stalls, the
// checkpoint commits and the metrics history. It does no I/O and reads no
// clock: every event carries the time, and the actions it returns are
// carried out by its owner.
type Machine struct {
	cfg MachineConfig

	phase        Phase
	err          string
	members      []cluster.Member // registered, in registration order
	membersKnown bool             // SetMembers was called once
	views        map[string]*WorkerView

	nextID     int64
	gen        *cluster.Generation
	brk        *broken
	change     change    // the membership change whose first step is still to come
	readySince time.Time // when enough workers first registered while no generation runs
	joinSince  time.Time // when eligible non-members first waited while W < max

	step      int // steps completed, newest known
	loss      float64
	valLoss   float64
	hasVal    bool
	valStep   int
	reported  bool // a step was reported to this machine: lr and gradNorm are known
	lr        float64
	gradNorm  float64
	tokens    int64
	tokPerS   float64
	stepTime  time.Duration // moving average
	lastCkpt  *cluster.Version
	written   stepSet // steps whose line is in the history
	uploading map[int]bool
	worlds    map[int64]int // world size of the newest generations

	draining    bool
	drainedStep int       // newest boundary a drained member reported, −1 none
	finalAt     time.Time // the final checkpoint was committed
	finished    bool

	regroups    int
	regroupStep int
	events      []Event
}

// NewMachine returns a machine waiting for workers, or following the
// adopted generation.
func NewMachine(cfg MachineConfig) *Machine {
	if cfg.MaxRegroups == 0 {
		cfg.MaxRegroups = 10
	}
	if cfg.ReportWindow == 0 {
		cfg.ReportWindow = 2 * time.Second
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 60 * time.Second
	}
	m := &Machine{
		cfg: cfg, phase: PhaseWaiting, nextID: max(cfg.FirstGeneration, 1), views: map[string]*WorkerView{},
		lastCkpt: cfg.LastCheckpoint, written: newStepSet(cfg.Written), uploading: map[int]bool{}, drainedStep: -1,
		worlds: map[int64]int{}, loss: cfg.LastLoss,
	}
	if m.lastCkpt != nil {
		m.step = int(m.lastCkpt.Step)
	}
	return m
}

// Start returns the actions due before any event: Finish when the job was
// already done; it takes over an adopted generation.
func (m *Machine) Start(now time.Time) []Action {
	if m.lastCkpt != nil && int(m.lastCkpt.Step) >= m.cfg.MaxSteps {
		return m.finish(now)
	}
	if m.lastCkpt != nil && m.cfg.Adopt == nil {
		m.begin(now, true, fmt.Sprintf("a restart from the checkpoint of step %d", m.lastCkpt.Step))
	}
	if a := m.cfg.Adopt; a != nil && !a.Over() {
		g := *a
		g.Members = slices.Clone(a.Members)
		m.gen = &g
		m.worlds[g.ID] = len(g.Members)
		m.nextID = max(m.nextID, g.ID+1)
		for _, rm := range g.Members {
			v := m.view(rm.Name)
			v.Incarnation, v.Address, v.Rank, v.State = rm.Incarnation, rm.Address, rm.Rank, StateTraining
			v.LastReport, v.lastProgress = now, now
		}
		m.phase = PhaseRunning
		m.err = fmt.Sprintf("took over generation %d; waiting for its workers' reports", g.ID)
		return m.event(now, Event{Kind: "adopted", Generation: g.ID, World: len(g.Members), Detail: "a new coordinator took over the running generation"})
	}
	return nil
}

// Generation returns the current generation, or nil.
func (m *Machine) Generation() *cluster.Generation { return m.gen }

func (m *Machine) view(name string) *WorkerView {
	v := m.views[name]
	if v == nil {
		v = &WorkerView{Name: name, Rank: -1, State: StateJoined}
		m.views[name] = v
	}
	return v
}

func (m *Machine) event(now time.Time, e Event) []Action {
	e.Time = now
	if e.Step == 0 {
		e.Step = m.step
	}
	m.events = append(m.events, e)
	if len(m.events) > maxEvents {
		m.events = m.events[len(m.events)-maxEvents:]
	}
	return []Action{Record{Line: eventLine(e)}}
}

// SetMembers records the registered workers (in registration order).
func (m *Machine) SetMembers(now time.Time, members []cluster.Member) []Action {
	if m.finished {
		return nil
	}
	var acts []Action
	m.members = slices.Clone(members)
	m.membersKnown = true
	present := map[string]cluster.Member{}
	for _, mb := range members {
		present[mb.Name] = mb
		v, known := m.views[mb.Name]
		if !known {
			v = m.view(mb.Name)
		}
		if !known || v.Incarnation != mb.Incarnation || !v.registered {
			fresh := !known || v.Incarnation != mb.Incarnation
			if fresh {
				inc := v.Incarnation
				*v = WorkerView{Name: mb.Name, Rank: v.Rank, State: StateJoined, LastReport: now, Incarnation: mb.Incarnation}
				if m.gen != nil && v.Rank >= 0 && m.gen.Members[v.Rank].Incarnation != mb.Incarnation {
					v.Rank = -1 // a new incarnation: its predecessor's rank is not its
				}
				detail := "registered"
				if inc != 0 && inc != mb.Incarnation {
					detail = "registered again as a new incarnation"
				}
				if m.cfg.DataDigest != "" && mb.Data != m.cfg.DataDigest {
					v.refused, v.State = true, StateRefused
					v.Detail = "its data differs from the coordinator's (see the worker's log for the shard)"
					detail = v.Detail
					acts = append(acts, m.event(now, Event{Kind: "refused", Worker: mb.Name, Detail: detail})...)
				} else {
					acts = append(acts, m.event(now, Event{Kind: "joined", Worker: mb.Name, Detail: detail})...)
				}
			}
			v.registered, v.goneSince = true, time.Time{}
		}
		v.Address = mb.Address
	}
	for name, v := range m.views {
		if _, ok := present[name]; ok || !v.registered {
			continue
		}
		v.registered, v.goneSince = false, now
		if v.Rank < 0 && !v.leaving {
			delete(m.views, name) // a spare left: forget it
			continue
		}
	}
	return append(acts, m.decide(now)...)
}

// eligible reports whether a registered worker may be a member.
func (m *Machine) eligible(v *WorkerView) bool {
	return v != nil && v.registered && !v.suspect && !v.refused && !v.failed && !v.leaving
}

// gone reports why a member of the current generation is gone, or "".
func (m *Machine) gone(now time.Time, rm cluster.RankedMember) (why string, silent bool) {
	v := m.views[rm.Name]
	switch {
	case v == nil:
		return "unknown", true
	case v.Incarnation != rm.Incarnation:
		return "restarted (a new incarnation registered)", true
	case v.leaving:
		return "left", false
	case v.failed:
		return "failed", true
	case v.refused:
		return "refused", true
	case v.suspect:
		return "did not answer after the ring broke", true
	case !v.registered && m.membersKnown && now.Sub(v.goneSince) >= m.cfg.ReportWindow && now.Sub(v.LastReport) >= m.cfg.ReportWindow:
		return "its registration expired", true
	}
	return "", false
}

// decide forms a new generation when one is due.
func (m *Machine) decide(now time.Time) []Action {
	if m.finished {
		return nil
	}
	if !m.finalAt.IsZero() {
		// The final checkpoint is in: done once the history is complete
		// (reports queued while no coordinator led arrive late).
		if m.written.count >= m.cfg.MaxSteps || now.Sub(m.finalAt) >= historyGrace {
			return m.finish(now)
		}
		return nil
	}
	if m.gen == nil {
		return m.tryFirst(now)
	}
	g := m.gen
	for _, v := range m.views {
		if v.suspect && v.State == StateStalled && v.gaveUp && !now.Before(v.heldUntil) {
			v.suspect, v.gaveUp, v.Detail, v.State = false, false, "", StateJoined
		}
	}
	// Members gone: re-form without them.
	var whys []string
	abort := false
	for _, rm := range g.Members {
		if why, silent := m.gone(now, rm); why != "" {
			whys = append(whys, fmt.Sprintf("worker %s (rank %d) %s", rm.Name, rm.Rank, why))
			abort = abort || silent
			if v := m.views[rm.Name]; v != nil && why != "left" && v.State != StateSuspect && v.State != StateStalled {
				if v.refused {
					v.State = StateRefused
				} else if !v.registered {
					v.State = StateLost
				}
			}
		}
	}
	if len(whys) > 0 {
		var acts []Action
		kind := "left"
		if abort {
			kind = "lost"
		}
		for _, w := range whys {
			acts = append(acts, m.event(now, Event{Kind: kind, Generation: g.ID, Detail: w})...)
		}
		return append(acts, m.regroup(now, strings.Join(whys, "; "), abort)...)
	}
	// A broken ring: once every member spoke (or was found dead), or the
	// window is over.
	if b := m.brk; b != nil {
		complete := true
		for _, rm := range g.Members {
			if !b.heard[rm.Name] {
				complete = false
			}
		}
		if complete || now.Sub(b.at) >= m.cfg.ReportWindow {
			for _, rm := range g.Members {
				if v := m.views[rm.Name]; v != nil && !b.heard[rm.Name] {
					v.suspect, v.State, v.Detail = true, StateSuspect, "did not answer after the ring broke"
				}
			}
			return m.regroup(now, b.why, true)
		}
		return nil
	}
	// Stalls: members without a step for StallTimeout, unless they wait
	// in the all-reduce for a peer (the peer is the one stalled).
	if g.Mode == cluster.ModeTrain {
		var stalled []string
		for _, rm := range g.Members {
			v := m.views[rm.Name]
			if v == nil || now.Sub(v.lastProgress) < m.cfg.StallTimeout {
				continue
			}
			if waitingPhases[v.Phase] && now.Sub(v.LastReport) < m.cfg.StallTimeout/2 {
				continue
			}
			stalled = append(stalled, rm.Name)
		}
		if len(stalled) > 0 && len(stalled) < len(g.Members) || len(stalled) == 1 {
			var acts []Action
			for _, name := range stalled {
				v := m.views[name]
				// Held out for stall_timeout, doubling with each stall
				// (at most 16×): a worker that stalls again and again
				// must not stop the others for good.
				v.stalls++
				hold := m.cfg.StallTimeout << min(v.stalls-1, 4)
				v.suspect, v.State, v.gaveUp, v.heldUntil = true, StateStalled, false, now.Add(hold)
				v.Detail = fmt.Sprintf("no step for %s (workers.stall_timeout); held out for %s", m.cfg.StallTimeout, hold)
				acts = append(acts, m.event(now, Event{Kind: "stalled", Worker: name, Generation: g.ID, Detail: v.Detail})...)
			}
			return append(acts, m.regroup(now, fmt.Sprintf("%s stalled", strings.Join(stalled, ", ")), true)...)
		} else if len(stalled) > 1 {
			m.err = fmt.Sprintf("no step for %s from %s", m.cfg.StallTimeout, strings.Join(stalled, ", "))
		}
	}
	// A graceful stop: drain at the next boundary; and after one (a new
	// coordinator took over a drained generation), train on.
	if m.draining && g.Mode == cluster.ModeTrain {
		return m.form(now, "stopping", false)
	}
	if !m.draining && g.Mode == cluster.ModeDrain && m.membersKnown {
		return m.form(now, "resuming after a graceful stop", false)
	}
	// Joins: grow to workers.max once the joiners settled.
	if g.Mode == cluster.ModeTrain && len(g.Members) < m.cfg.MaxWorkers {
		waiting := 0
		for _, mb := range m.members {
			if v := m.views[mb.Name]; m.eligible(v) && g.Rank(mb.Name, mb.Incarnation) < 0 {
				waiting++
			}
		}
		if waiting == 0 {
			m.joinSince = time.Time{}
			return nil
		}
		if m.joinSince.IsZero() {
			m.joinSince = now
		}
		if waiting >= m.cfg.MaxWorkers-len(g.Members) || now.Sub(m.joinSince) >= m.cfg.Settle {
			m.begin(m.joinSince, true, "a join")
			return m.form(now, fmt.Sprintf("%d worker(s) joining", waiting), false)
		}
	}
	return nil
}

// tryFirst forms the first generation (or one after all were lost) once
// enough workers are registered and settled.
func (m *Machine) tryFirst(now time.Time) []Action {
	n := 0
	for _, mb := range m.members {
		if m.eligible(m.views[mb.Name]) {
			n++
		}
	}
	if n < max(m.cfg.MinWorkers, 1) {
		m.readySince = time.Time{}
		m.phase = PhaseWaiting
		m.err = fmt.Sprintf("%d of %d workers (workers.min) registered", n, m.cfg.MinWorkers)
		return nil
	}
	if n < m.cfg.MaxWorkers {
		if m.readySince.IsZero() {
			m.readySince = now
		}
		if now.Sub(m.readySince) < m.cfg.Settle {
			m.err = fmt.Sprintf("%d workers registered; waiting %s for up to %d (workers.max)", n, m.cfg.Settle, m.cfg.MaxWorkers)
			return nil
		}
	}
	m.err = ""
	return m.form(now, "start", false)
}

// regroup replaces the current generation after a loss or a broken ring.
func (m *Machine) regroup(now time.Time, why string, abort bool) []Action {
	if m.step > m.regroupStep {
		m.regroups = 0
	}
	m.regroups++
	m.regroupStep = m.step
	if m.regroups > m.cfg.MaxRegroups {
		return m.fail(now, fmt.Errorf("%w: %d generations in a row broke without a step of progress; last: %s", ErrNoProgress, m.regroups-1, why))
	}
	m.begin(now, !abort, why)
	if abort {
		m.err = why
	}
	return m.form(now, why, abort)
}

// form publishes a new generation of the eligible workers: the current
// generation's members first (they hold the state), then others in
// registration order, up to workers.max. Survivors keep their ranks when
// the world size stays the same (a replacement takes the rank of the one
// it replaces), so that the reduction order, hence every bit, stays.
func (m *Machine) form(now time.Time, why string, abort bool) []Action {
	var keep []cluster.RankedMember
	if m.gen != nil {
		for _, rm := range m.gen.Members {
			if v := m.views[rm.Name]; m.eligible(v) && v.Incarnation == rm.Incarnation {
				keep = append(keep, rm)
			}
		}
	}
	var fresh []cluster.Member
	for _, mb := range m.members {
		v := m.views[mb.Name]
		if !m.eligible(v) || v.Incarnation != mb.Incarnation {
			continue
		}
		if slices.ContainsFunc(keep, func(rm cluster.RankedMember) bool { return rm.Name == mb.Name }) {
			continue
		}
		fresh = append(fresh, mb)
	}
	w := min(len(keep)+len(fresh), m.cfg.MaxWorkers)
	if len(keep) > w {
		keep = keep[:w]
	}
	fresh = fresh[:w-len(keep)]
	prev := m.gen
	m.brk, m.joinSince, m.readySince = nil, time.Time{}, time.Time{}
	for _, v := range m.views {
		v.Rank = -1
		if m.eligible(v) {
			v.State = StateSpare
		}
	}
	if w < max(m.cfg.MinWorkers, 1) {
		if m.draining { // stopping, and nobody left to stop: done
			m.gen = nil
			return m.finishStopped(now)
		}
		m.gen = nil
		m.phase = PhaseWaiting
		m.err = fmt.Sprintf("%s; %d of %d workers (workers.min) left", why, w, m.cfg.MinWorkers)
		for _, v := range m.views {
			if m.eligible(v) {
				v.State = StateJoined
			}
		}
		return nil
	}
	members := make([]cluster.RankedMember, 0, w)
	if prev != nil && len(prev.Members) == w {
		taken := map[int]bool{}
		for _, rm := range keep {
			taken[rm.Rank] = true
		}
		members = append(members, keep...)
		r := 0
		for _, mb := range fresh {
			for taken[r] {
				r++
			}
			taken[r] = true
			members = append(members, cluster.RankedMember{Name: mb.Name, Address: mb.Address, Incarnation: mb.Incarnation, Rank: r})
		}
		sort.Slice(members, func(i, j int) bool { return members[i].Rank < members[j].Rank })
	} else {
		for _, rm := range keep {
			members = append(members, cluster.RankedMember{Name: rm.Name, Address: m.views[rm.Name].Address, Incarnation: rm.Incarnation})
		}
		for _, mb := range fresh {
			members = append(members, cluster.RankedMember{Name: mb.Name, Address: mb.Address, Incarnation: mb.Incarnation})
		}
		for r := range members {
			members[r].Rank = r
		}
	}
	for i := range members {
		members[i].Address = m.views[members[i].Name].Address
	}
	mode := cluster.ModeTrain
	if m.draining {
		mode = cluster.ModeDrain
	}
	g := cluster.Generation{ID: m.nextID, Members: members, Mode: mode, Abort: abort && prev != nil}
	if m.lastCkpt != nil {
		c := *m.lastCkpt
		g.Checkpoint = &c
	}
	m.nextID++
	m.gen = &g
	if !m.change.at.IsZero() {
		m.change.gen = g.ID
	}
	m.worlds[g.ID] = w
	delete(m.worlds, g.ID-3)
	for _, rm := range members {
		v := m.views[rm.Name]
		v.Rank, v.State, v.lastProgress = rm.Rank, StateStarting, now
	}
	switch {
	case m.draining:
		m.phase = PhaseCheckpointing
	case !m.change.at.IsZero() && !m.change.planned && prev != nil:
		m.phase = PhaseRecovering
	case prev == nil || m.phase == PhaseWaiting:
		m.phase = PhaseRunning
	}
	names := make([]string, len(members))
	for i, rm := range members {
		names[i] = rm.Name
	}
	acts := []Action{Publish{Gen: g}}
	return append(acts, m.event(now, Event{Kind: "generation", Generation: g.ID, World: w,
		Detail: fmt.Sprintf("%s: %s", why, strings.Join(names, " "))})...)
}

// memberOf returns the view of a report's sender if it is a member of the
// current generation (its name, incarnation and rank), else nil.
func (m *Machine) memberOf(r Report) *WorkerView {
	if m.gen == nil || r.Generation != m.gen.ID || r.Rank < 0 || r.Rank >= len(m.gen.Members) {
		return nil
	}
	rm := m.gen.Members[r.Rank]
	if rm.Name != r.Name || rm.Incarnation != r.Incarnation {
		return nil
	}
	return m.views[r.Name]
}

// ReportAck is the machine's answer to a report.
type ReportAck struct {
	Generation int64
	Stale      bool   // the report was for another generation and changed nothing
	Refused    string // the report is not from the member it names
}

// Report handles a worker report.
func (m *Machine) Report(now time.Time, r Report) (ReportAck, []Action) {
	ack := ReportAck{}
	if m.gen != nil {
		ack.Generation = m.gen.ID
	}
	v := m.views[r.Name]
	if v == nil || v.Incarnation != r.Incarnation {
		// Not a registered incarnation: a process from before a restart
		// (or this one before it lost its registration), a report that
		// overtook the registration, or a forged one. Its steps were
		// trained all the same (the service checked where it comes from):
		// they go into the history; nothing else counts.
		ack.Refused = fmt.Sprintf("worker %s incarnation %d is not registered", r.Name, r.Incarnation)
		if r.Kind == ReportStep && v != nil && !m.finished && r.Step <= m.step+1 { // from the past, not ahead of the live members

			ack.Refused = ""
			ack.Stale = true
			return ack, m.record(now, r)
		}
		return ack, nil
	}
	if m.finished {
		return ack, nil
	}
	v.LastReport = now
	if v.suspect && v.State == StateStalled && r.Kind == ReportStandby {
		v.gaveUp = true // eligible once held out long enough (decide)
	} else if v.suspect && v.State != StateStalled {
		v.suspect, v.Detail = false, "" // it spoke again: eligible
		v.State = StateJoined
	}
	member := m.memberOf(r)
	var acts []Action
	switch r.Kind {
	case ReportReady:
		if member == nil {
			ack.Stale = true
			return ack, nil
		}
		member.State, member.Step, member.lastProgress = StateTraining, r.Step, now
		if r.HealSource >= 0 && r.Rank != r.HealSource {
			detail := fmt.Sprintf("state of step %d from rank %d (%.1f MB)", r.Step, r.HealSource, float64(r.HealBytes)/1e6)
			if r.Loaded {
				detail = fmt.Sprintf("state of step %d from the checkpoint", r.Step)
			}
			acts = append(acts, m.event(now, Event{Kind: "healed", Worker: r.Name, Generation: m.gen.ID, Step: r.Step, Seconds: r.HealSeconds, Detail: detail})...)
		}
	case ReportStep:
		acts = append(acts, m.record(now, r)...)
		if member == nil {
			ack.Stale = true
			return ack, acts
		}
		member.State, member.Step, member.lastProgress, member.Phase = StateTraining, r.Step, now, ""
		member.StepTime, member.Compute, member.ReduceWait, member.Optimizer = r.StepTime, r.Compute, r.ReduceWait, r.Optimizer
		if r.StepTime > 0 {
			member.TokensPerS = float64(r.Tokens) / float64(len(m.gen.Members)) / r.StepTime.Seconds()
		}
		if r.Step >= m.step {
			m.step, m.loss, m.lr, m.gradNorm, m.reported = r.Step, r.Loss, r.LR, r.GradNorm, true
			if r.HasVal {
				m.valLoss, m.hasVal, m.valStep = r.ValLoss, true, r.Step
			}
			if r.Rank == 0 {
				m.tokens += r.Tokens
				if r.StepTime > 0 {
					m.tokPerS = float64(r.Tokens) / r.StepTime.Seconds()
					m.stepTime = (m.stepTime*4 + r.StepTime) / 5
					if m.stepTime == 0 || m.stepTime > 4*r.StepTime {
						m.stepTime = r.StepTime
					}
				}
			}
		}
		if c := m.change; !c.at.IsZero() && member != nil && c.gen != 0 && r.Generation >= c.gen {
			redone := max(0, c.highest-(r.Step-1))
			acts = append(acts, m.event(now, Event{Kind: "recovered", Generation: m.gen.ID, World: len(m.gen.Members),
				Seconds: now.Sub(c.at).Seconds(), Redone: redone,
				Detail: fmt.Sprintf("training again after %s; %d completed steps redone", c.what, redone)})...)
			m.change = change{}
		}
		if m.brk == nil && m.change.at.IsZero() && (m.phase == PhaseRecovering || (m.phase == PhaseWaiting && m.gen != nil)) {
			m.phase = PhaseRunning
		}
		if m.phase == PhaseRunning && m.change.at.IsZero() {
			m.err = ""
		}
	case ReportHeartbeat:
		if member != nil {
			member.Phase = r.Phase
			if r.Phase == phaseCheckpoint {
				member.State = StateCheckpointing
			}
		}
	case ReportRingFailed, ReportStandby:
		if member == nil {
			if r.Kind == ReportStandby {
				v.Step = r.Step
			}
			ack.Stale = r.Kind == ReportRingFailed
			break
		}
		member.Step = r.Step
		if r.Kind == ReportStandby {
			if m.brk != nil {
				m.brk.heard[r.Name] = true
			}
			break
		}
		if m.brk == nil {
			m.brk = &broken{at: now, heard: map[string]bool{},
				why: fmt.Sprintf("ring of generation %d broke at step %d (reported by %s): %s", m.gen.ID, m.step, r.Name, r.Err)}
			m.begin(now, false, "the ring broke")
			m.phase, m.err = PhaseRecovering, m.brk.why
			for _, rm := range m.gen.Members {
				if rm.Name != r.Name {
					acts = append(acts, Probe{Name: rm.Name, Address: rm.Address, Incarnation: rm.Incarnation})
				}
			}
		}
		m.brk.heard[r.Name] = true
	case ReportLeaving:
		v.leaving, v.State, v.Detail = true, StateLeaving, "stopped at a step boundary to leave"
		acts = append(acts, m.event(now, Event{Kind: "leaving", Worker: r.Name, Step: r.Step, Detail: "graceful leave (SIGTERM)"})...)
	case ReportDrained:
		if member != nil {
			member.State, member.Step = StateDone, r.Step
		}
		m.drainedStep = max(m.drainedStep, r.Step)
		m.step = max(m.step, r.Step)
		if m.draining && m.lastCkpt != nil && int(m.lastCkpt.Step) >= m.drainedStep {
			return ack, append(acts, m.finishStopped(now)...)
		}
	case ReportFailed:
		v.failed, v.State, v.Detail = true, StateFailed, r.Err
		return ack, append(acts, m.fail(now, fmt.Errorf("%w: %s (rank %d) at step %d: %s", ErrWorkerFailed, r.Name, r.Rank, r.Step, r.Err))...)
	}
	return ack, append(acts, m.decide(now)...)
}

// record writes the history line of a step report the first time the step
// is reported (all ranks report it; the first report wins), whichever
// generation trained it and in whatever order the reports arrive: a report
// that waited while no coordinator led, or that comes from a member since
// dropped, is history all the same.
func (m *Machine) record(now time.Time, r Report) []Action {
	idx := r.Step - 1
	if idx < 0 || idx >= m.cfg.MaxSteps || !m.written.add(idx) {
		return nil
	}
	line := runmetrics.Step{Step: idx, Loss: r.Loss, LR: r.LR, GradNorm: r.GradNorm, Tokens: r.Tokens, WorldSize: r.World, Time: now}
	if line.WorldSize == 0 {
		line.WorldSize = m.worlds[r.Generation]
	}
	if r.StepTime > 0 {
		line.TokensPerS = float64(r.Tokens) / r.StepTime.Seconds()
	}
	if r.HasVal {
		val := r.ValLoss
		line.ValLoss = &val
	}
	return []Action{Record{Line: Line{Step: &line}}}
}

// Probed records the answer to a Probe.
func (m *Machine) Probed(now time.Time, name string, incarnation uint64, alive bool) []Action {
	if m.finished || m.brk == nil {
		return nil
	}
	v := m.views[name]
	if v == nil || v.Incarnation != incarnation {
		return nil
	}
	if !alive {
		v.suspect, v.State, v.Detail = true, StateSuspect, "its peer server does not answer"
		m.brk.heard[name] = true // accounted for
	}
	return m.decide(now)
}

// Tick advances the clock.
func (m *Machine) Tick(now time.Time) []Action { return m.decide(now) }

// WantCheckpoint reports whether an upload of the checkpoint after step
// completed steps is welcome: newer than the last one and due (by
// checkpoint.every, at the end, or as the boundary of a drain).
func (m *Machine) WantCheckpoint(step int) bool {
	if m.finished || step <= 0 || m.uploading[step] || (m.lastCkpt != nil && step <= int(m.lastCkpt.Step)) {
		return false
	}
	due := step == m.cfg.MaxSteps || (m.cfg.CheckpointEvery > 0 && step%m.cfg.CheckpointEvery == 0)
	return due || m.draining
}

// Uploading records that the upload of checkpoint step began (true) or
// ended without success (false, with the error).
func (m *Machine) Uploading(now time.Time, step int, began bool, err error) []Action {
	if began {
		m.uploading[step] = true
		if m.phase == PhaseRunning {
			m.phase = PhaseCheckpointing
		}
		return nil
	}
	delete(m.uploading, step)
	if m.phase == PhaseCheckpointing && len(m.uploading) == 0 && !m.draining {
		m.phase = PhaseRunning
	}
	if err == nil {
		return nil
	}
	return m.event(now, Event{Kind: "checkpoint_failed", Step: step, Detail: err.Error()})
}

// Uploaded records that every file of checkpoint step is durable: commit it.
func (m *Machine) Uploaded(now time.Time, step int, lineage int64) []Action {
	if m.finished || (m.lastCkpt != nil && step <= int(m.lastCkpt.Step)) {
		delete(m.uploading, step)
		return nil
	}
	return []Action{Commit{Step: step, Lineage: lineage}}
}

// Committed records the outcome of a Commit action.
func (m *Machine) Committed(now time.Time, step int, lineage int64, err error) []Action {
	delete(m.uploading, step)
	if m.phase == PhaseCheckpointing && len(m.uploading) == 0 && !m.draining {
		m.phase = PhaseRunning
	}
	if m.finished {
		return nil
	}
	if err != nil {
		return m.event(now, Event{Kind: "checkpoint_failed", Step: step, Detail: err.Error()})
	}
	if m.lastCkpt == nil || step > int(m.lastCkpt.Step) {
		m.lastCkpt = &cluster.Version{Step: int64(step), Generation: lineage}
	}
	acts := m.event(now, Event{Kind: "checkpoint", Step: step, Detail: fmt.Sprintf("checkpoint of step %d committed", step)})
	switch {
	case step >= m.cfg.MaxSteps:
		m.step = max(m.step, step)
		m.finalAt = now
		return append(acts, m.decide(now)...)
	case m.draining && m.drainedStep >= 0 && step >= m.drainedStep:
		return append(acts, m.finishStopped(now)...)
	}
	return acts
}

// Stop asks for a graceful stop: the members finish the step in flight,
// the checkpoint of that boundary is committed, then Finish{Stopped}.
func (m *Machine) Stop(now time.Time) []Action {
	if m.finished || m.draining {
		return nil
	}
	m.draining = true
	if m.gen == nil { // nobody trains: nothing to save
		return m.finishStopped(now)
	}
	return m.decide(now)
}

func (m *Machine) finishStopped(now time.Time) []Action {
	m.finished = true
	m.phase = PhaseWaiting
	m.err = fmt.Sprintf("stopped at step %d; start the coordinator again to resume", m.step)
	acts := m.event(now, Event{Kind: "stopped", Detail: "graceful stop"})
	return append(acts, Finish{Stopped: true})
}

func (m *Machine) fail(now time.Time, err error) []Action {
	m.phase = PhaseFailed
	m.err = err.Error()
	acts := m.event(now, Event{Kind: "failed", Detail: err.Error()})
	return append(acts, m.end(cluster.ModeFailed, err.Error())...)
}

func (m *Machine) finish(now time.Time) []Action {
	m.phase = PhaseDone
	m.err = ""
	for _, v := range m.views {
		if v.Rank >= 0 {
			v.State = StateDone
		}
	}
	acts := m.event(now, Event{Kind: "done", Detail: fmt.Sprintf("job done at step %d", m.step)})
	return append(acts, m.end(cluster.ModeDone, "")...)
}

// end publishes the last generation (the workers learn the job is over)
// and finishes.
func (m *Machine) end(mode cluster.Mode, failed string) []Action {
	m.finished = true
	g := cluster.Generation{ID: m.nextID, Mode: mode, Failed: failed}
	if m.gen != nil {
		g.Members = m.gen.Members
	}
	if m.lastCkpt != nil {
		c := *m.lastCkpt
		g.Checkpoint = &c
	}
	m.nextID++
	m.gen = &g
	var err error
	if failed != "" {
		err = errors.New(failed)
	}
	return []Action{Publish{Gen: g}, Finish{Err: err}}
}

// Status returns a snapshot of the job.
func (m *Machine) Status(now time.Time) Status {
	s := Status{
		Job: m.cfg.Job, Phase: m.phase, Step: m.step, MaxSteps: m.cfg.MaxSteps,
		Loss: m.loss, ValLoss: m.valLoss, HasVal: m.hasVal, ValStep: m.valStep, Reported: m.reported, LR: m.lr, GradNorm: m.gradNorm,
		TokensPerS: m.tokPerS, Tokens: m.tokens, LastCheckpoint: -1, Err: m.err,
		Events: slices.Clone(m.events),
	}
	if m.lastCkpt != nil {
		s.LastCheckpoint = int(m.lastCkpt.Step)
	}
	if m.gen != nil && !m.gen.Over() {
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

// Phases a worker's heartbeat names.
const phaseCheckpoint = "checkpoint"

// waitingPhases are the phases of a worker that waits for others (its
// peers in the all-reduce, a state transfer, the coordinator): a member
// that says so recently is not the one stalled.
var waitingPhases = map[string]bool{
	"allreduce": true, "join": true, "heal": true, "check": true, "load checkpoint": true, phaseCheckpoint: true, "done": true,
}

// stepSet is a set of step numbers (a bitmap) with its count and maximum.
type stepSet struct {
	bits  []uint64
	count int
	max   int // −1: empty
}

func newStepSet(steps []int) stepSet {
	s := stepSet{max: -1}
	for _, x := range steps {
		s.add(x)
	}
	return s
}

// add inserts x ≥ 0 and reports whether it was new.
func (s *stepSet) add(x int) bool {
	if x < 0 {
		return false
	}
	w := x / 64
	for len(s.bits) <= w {
		s.bits = append(s.bits, 0)
	}
	if s.bits[w]&(1<<(x%64)) != 0 {
		return false
	}
	s.bits[w] |= 1 << (x % 64)
	s.count++
	s.max = max(s.max, x)
	return true
}
