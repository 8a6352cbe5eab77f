package worker

import (
	"errors"
	"fmt"

	"github.com/ringtrain/ringtrain/cluster"
)

// Outcome is how a run of one generation ended.
type Outcome int

// Outcomes of a run.
const (
	// OutcomeBoundary: the ranks agreed to stop after a step (a newer
	// generation, a leaving member, the end of the job) and stopped there.
	OutcomeBoundary Outcome = iota + 1
	// OutcomeDrained: a drain generation's checkpoint is taken care of.
	OutcomeDrained
	// OutcomeRingFailed: the ring broke (a peer died or was cut off); the
	// step in flight is lost (or finished here but not on all ranks).
	OutcomeRingFailed
	// OutcomeAborted: the run was told to abandon the step in flight.
	OutcomeAborted
	// OutcomeFatal: an error no new generation can mend (bad data, a NaN).
	OutcomeFatal
)

func (o Outcome) String() string {
	return [...]string{"?", "boundary", "drained", "ring failed", "aborted", "fatal"}[o]
}

// Actions the machine asks its runtime to carry out.
type (
	// Action is one of the types below.
	Action interface{ isAction() }
	// StartRun trains Rank of Gen.
	StartRun struct {
		Gen  *cluster.Generation
		Rank int
	}
	// StopAtBoundary makes the running generation vote to stop after the
	// step in flight (every rank stops after the same step).
	StopAtBoundary struct{}
	// AbortRun abandons the step in flight.
	AbortRun struct{}
	// Send a report of Kind about generation Gen (0: none).
	Send struct {
		Kind ReportKind
		Gen  int64
		Err  string
	}
	// Deregister removes the registration (a graceful leave).
	Deregister struct{}
	// Exit ends the worker with Err (nil: 0).
	Exit struct{ Err error }
)

func (StartRun) isAction()       {}
func (StopAtBoundary) isAction() {}
func (AbortRun) isAction()       {}
func (Send) isAction()           {}
func (Deregister) isAction()     {}
func (Exit) isAction()           {}

// ReportKind is what a Send reports (the rest of a report, steps and
// errors, is the runtime's).
type ReportKind int

// Kinds a Send asks for.
const (
	SendStandby ReportKind = iota + 1
	SendLeaving
	SendFailed
)

// Errors of the worker.
var (
	ErrJobFailed = errors.New("job failed")
)

// Machine is the worker's decision logic: which generation to train, when
// to stop a run at a step boundary or abandon it, when to leave. It does
// no I/O: the runtime feeds it the generations it sees, the end of each
// run, its registration's incarnation and SIGTERM, and carries out the
// actions.
type Machine struct {
	name         string
	inc          uint64
	exitWhenDone bool

	newest   *cluster.Generation // newest generation seen
	running  *cluster.Generation // generation of the run in progress
	stopping bool                // the run was asked to stop or abort
	leaving  bool
	tookPart bool  // trained in a generation of this job
	ran      int64 // newest generation a run was started for
	standby  int64 // generation a standby report was sent for
	exited   bool
}

// NewMachine returns the machine of worker name with incarnation inc.
func NewMachine(name string, inc uint64, exitWhenDone bool) *Machine {
	return &Machine{name: name, inc: inc, exitWhenDone: exitWhenDone}
}

// Running returns the generation of the run in progress, or nil.
func (m *Machine) Running() *cluster.Generation { return m.running }

// Incarnation returns the incarnation the machine acts as.
func (m *Machine) Incarnation() uint64 { return m.inc }

// Generation handles a generation seen in etcd.
func (m *Machine) Generation(g *cluster.Generation) []Action {
	if m.exited || g == nil || (m.newest != nil && g.ID <= m.newest.ID) {
		return nil
	}
	m.newest = g
	if m.running != nil {
		if m.stopping {
			return nil
		}
		m.stopping = true
		if g.Abort || g.Over() {
			return []Action{AbortRun{}}
		}
		return []Action{StopAtBoundary{}}
	}
	return m.idle()
}

// idle decides what to do without a run: start the newest generation if
// this worker is a member, else wait as a spare (or end).
func (m *Machine) idle() []Action {
	g := m.newest
	if m.leaving {
		m.exited = true
		return []Action{Send{Kind: SendLeaving}, Deregister{}, Exit{}}
	}
	if g == nil {
		return nil
	}
	if g.Over() {
		if m.exitWhenDone && m.tookPart {
			m.exited = true
			if g.Mode == cluster.ModeFailed {
				return []Action{Exit{Err: fmt.Errorf("%w: %s", ErrJobFailed, g.Failed)}}
			}
			return []Action{Exit{}}
		}
		return nil
	}
	if r := g.Rank(m.name, m.inc); r >= 0 && g.ID > m.ran {
		m.running, m.stopping, m.tookPart, m.ran = g, false, true, g.ID
		return []Action{StartRun{Gen: g, Rank: r}}
	}
	if m.standby == g.ID {
		return nil
	}
	m.standby = g.ID
	return []Action{Send{Kind: SendStandby, Gen: g.ID}}
}

// RunEnded handles the end of the run in progress; err is set for
// OutcomeFatal.
func (m *Machine) RunEnded(o Outcome, err error) []Action {
	if m.exited {
		return nil
	}
	ran := m.running
	m.running, m.stopping = nil, false
	if o == OutcomeFatal {
		m.exited = true
		return []Action{Send{Kind: SendFailed, Gen: ran.ID, Err: err.Error()}, Exit{Err: err}}
	}
	if o == OutcomeBoundary || o == OutcomeDrained {
		m.standby = 0 // say where we are, once the next generation is known
	}
	return m.idle()
}

// Leave asks for a graceful leave: finish the step in flight, then
// deregister and exit.
func (m *Machine) Leave() []Action {
	if m.exited || m.leaving {
		return nil
	}
	m.leaving = true
	if m.running != nil {
		if m.stopping {
			return nil
		}
		m.stopping = true
		return []Action{StopAtBoundary{}}
	}
	return m.idle()
}

// Registered handles the incarnation the registration holds now: a new
// one means this worker's old membership is over (its registration had
// vanished), so a run of the old incarnation is abandoned.
func (m *Machine) Registered(inc uint64) []Action {
	if m.exited || inc == m.inc {
		return nil
	}
	m.inc = inc
	m.standby = 0
	if m.running != nil {
		if !m.stopping {
			m.stopping = true
			return []Action{AbortRun{}}
		}
		return nil
	}
	return m.idle()
}
