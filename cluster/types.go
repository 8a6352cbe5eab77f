package cluster

import (
	"fmt"
	"time"

	"github.com/ringtrain/ringtrain/job"
)

// Member is a worker's registration.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address"` // host:port of its peer gRPC server
	// Incarnation tells processes of the same name apart: a new process,
	// or one whose registration vanished while it was away (paused, cut
	// off), registers with a new one, and whatever belonged to the old
	// incarnation (its rank, its ring, its reports) is refused.
	Incarnation uint64 `json:"incarnation"`
	// Data is the digest of the shard manifest this worker checked its
	// own copy of the data against (Manifest.Digest).
	Data string `json:"data,omitempty"`
}

// Version names a training state: Step steps completed, the newest of
// them computed by the ring of generation Generation (0 for the initial
// state and states of a single process). All holders of one Version hold
// the same bits; a larger Version is newer.
type Version struct {
	Step       int64 `json:"step"`
	Generation int64 `json:"generation"`
}

// Less orders versions by step, then by generation: at equal steps the
// later generation's state supersedes a state it did not continue.
func (v Version) Less(o Version) bool {
	if v.Step != o.Step {
		return v.Step < o.Step
	}
	return v.Generation < o.Generation
}

func (v Version) String() string { return fmt.Sprintf("step %d (generation %d)", v.Step, v.Generation) }

// RankedMember is a member of a generation.
type RankedMember struct {
	Name        string `json:"name"`
	Address     string `json:"address"`
	Incarnation uint64 `json:"incarnation"`
	Rank        int    `json:"rank"`
}

// Mode says what the members of a generation do.
type Mode string

const (
	// ModeTrain: train to the last step.
	ModeTrain Mode = "train"
	// ModeDrain: stop at the next step boundary, after a checkpoint of it
	// (a graceful stop of the job); the members stay registered.
	ModeDrain Mode = "drain"
	// ModeDone: the job's final checkpoint is committed.
	ModeDone Mode = "done"
	// ModeFailed: the job failed (Generation.Failed says why).
	ModeFailed Mode = "failed"
)

// Generation is what the coordinator publishes for the workers. A member
// trains its rank; a newer generation replaces it at the next step boundary
// (the members finish the step in flight and agree on the boundary through
// the ring), or at once when Abort is set.
type Generation struct {
	ID      int64          `json:"id"`
	Run     string         `json:"run"`     // the run it belongs to (JobRecord.Run)
	Members []RankedMember `json:"members"` // by rank
	Mode    Mode           `json:"mode"`
	// Abort tells the members of the generation before to abandon the
	// step in flight instead of finishing it: a member they are waiting
	// for is gone without notice.
	Abort bool `json:"abort,omitempty"`
	// Checkpoint is the version of the newest committed checkpoint (nil:
	// none); the members load it only if no live member holds a newer
	// state.
	Checkpoint *Version `json:"checkpoint,omitempty"`
	Failed     string   `json:"failed,omitempty"`
}

// Rank returns the rank of the named worker's incarnation, or −1.
func (g *Generation) Rank(name string, incarnation uint64) int {
	for _, m := range g.Members {
		if m.Name == name && m.Incarnation == incarnation {
			return m.Rank
		}
	}
	return -1
}

// Addresses returns the members' addresses by rank.
func (g *Generation) Addresses() []string {
	a := make([]string, len(g.Members))
	for i, m := range g.Members {
		a[i] = m.Address
	}
	return a
}

// Over reports whether the job is over (done or failed).
func (g *Generation) Over() bool { return g.Mode == ModeDone || g.Mode == ModeFailed }

// JobRecord is the job the leader runs: the workers read it before they
// register, check their data against its manifest, and build their trainer
// from it.
type JobRecord struct {
	// Run identifies the run (a run directory's lifetime): training
	// states of another run count as none.
	Run string `json:"run"`
	// Job is the job as the coordinator runs it: defaults filled in,
	// command-line overrides applied, data paths absolute.
	Job      *job.Job `json:"job"`
	Manifest Manifest `json:"manifest"`
}

// CoordinatorRecord is the leader's record: where workers report.
type CoordinatorRecord struct {
	Address string `json:"address"`
	Run     string `json:"run"`
}

// Result is the final state of a job, written (without a lease) by its
// coordinator when the job ends: done, failed, or stopped gracefully. It
// answers `ringtrain status --etcd` once no coordinator is left. A
// coordinator that becomes the leader deletes it.
type Result struct {
	Run            string    `json:"run"`
	Job            string    `json:"job"`
	Phase          string    `json:"phase"` // the coordinator's last phase: done, failed, or waiting after a graceful stop
	Step           int64     `json:"step"`  // steps completed
	MaxSteps       int64     `json:"max_steps"`
	Loss           float64   `json:"loss"`               // of the newest step
	ValLoss        *float64  `json:"val_loss,omitempty"` // the newest evaluation, if any
	ValStep        int64     `json:"val_step,omitempty"`
	LastCheckpoint int64     `json:"last_checkpoint_step"` // −1: none
	RunDir         string    `json:"run_dir"`              // on the coordinator's machine
	Note           string    `json:"note,omitempty"`       // why it failed or stopped
	Coordinator    string    `json:"coordinator"`          // the address of the coordinator that wrote it
	Time           time.Time `json:"time"`
}
