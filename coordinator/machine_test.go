package coordinator

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runScript drives a Machine with a script, one event per line, and returns
// what it did, one line per action plus the phase after each event:
//
//	members a b c       registered workers, in registration order
//	tick 2s             the clock advances
//	ready NAME          NAME reports ready in the current generation
//	step NAME N LOSS    NAME finished steps up to N (steps completed)
//	part NAME N         NAME's checkpoint part at N is durable
//	fail NAME MSG       NAME failed
//	ringfail NAME MSG   NAME's ring broke
//	stale NAME GEN N    a step report for generation GEN
//	committed N [ERR]   the runtime committed (or failed to commit) checkpoint N
func runScript(t *testing.T, cfg MachineConfig, script string) string {
	t.Helper()
	m := NewMachine(cfg)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out strings.Builder
	emit := func(acts []Action) {
		for _, a := range acts {
			switch a := a.(type) {
			case Publish:
				var ms []string
				for _, rm := range a.Plan.Members {
					ms = append(ms, fmt.Sprintf("%d=%s[%d:%d]", rm.Rank, rm.Name, rm.SeqLo, rm.SeqHi))
				}
				fmt.Fprintf(&out, "  publish gen=%d start=%d resume=%d %s\n", a.Plan.ID, a.Plan.StartStep, a.Plan.ResumeStep, strings.Join(ms, " "))
			case Commit:
				fmt.Fprintf(&out, "  commit step=%d gen=%d\n", a.Step, a.Generation)
			case Finish:
				fmt.Fprintf(&out, "  finish err=%v\n", a.Err)
			}
		}
	}
	emit(m.Start())
	rank := func(name string) int {
		if g := m.Generation(); g != nil {
			for _, rm := range g.Members {
				if rm.Name == name {
					return rm.Rank
				}
			}
		}
		return -1
	}
	gen := func() int64 {
		if g := m.Generation(); g != nil {
			return g.ID
		}
		return 0
	}
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		fmt.Fprintf(&out, "> %s\n", strings.TrimSpace(line))
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			return n
		}
		switch f[0] {
		case "members":
			var ms []Member
			for _, n := range f[1:] {
				ms = append(ms, Member{Name: n, Address: n + ":1"})
			}
			emit(m.SetMembers(now, ms))
		case "tick":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(d)
			emit(m.Tick(now))
		case "ready", "step", "part", "fail", "stale", "ringfail":
			r := Report{Name: f[1], Generation: gen(), Rank: rank(f[1])}
			switch f[0] {
			case "ready":
				r.Kind = ReportReady
			case "step":
				r.Kind, r.Step, r.Tokens, r.StepTime = ReportStep, atoi(f[2]), 1000, time.Second
				r.Loss, _ = strconv.ParseFloat(f[3], 64)
			case "part":
				r.Kind, r.Step = ReportCheckpointPart, atoi(f[2])
			case "fail":
				r.Kind, r.Err = ReportFailed, strings.Join(f[2:], " ")
			case "ringfail":
				r.Kind, r.Err = ReportRingFailed, strings.Join(f[2:], " ")
			case "stale":
				r.Kind, r.Generation, r.Step = ReportStep, int64(atoi(f[2])), atoi(f[3])
			}
			stale, acts := m.Report(now, r)
			if stale {
				fmt.Fprintf(&out, "  stale\n")
			}
			emit(acts)
		case "committed":
			var err error
			if len(f) > 2 {
				err = errors.New(strings.Join(f[2:], " "))
			}
			emit(m.Committed(now, atoi(f[1]), err))
		default:
			t.Fatalf("unknown script command %q", f[0])
		}
		s := m.Status()
		fmt.Fprintf(&out, "  phase=%s step=%d", s.Phase, s.Step)
		if s.Err != "" {
			fmt.Fprintf(&out, " err=%q", s.Err)
		}
		out.WriteString("\n")
	}
	return out.String()
}

func TestMachineScenarios(t *testing.T) {
	base := MachineConfig{
		Job: "t", MinWorkers: 2, MaxWorkers: 3, MaxSteps: 4, GlobalBatch: 12,
		CheckpointEvery: 2, Settle: 2 * time.Second, LastCheckpoint: -1, FirstGeneration: 1,
		ValidWorld: func(w int) error {
			if 12%w != 0 {
				return fmt.Errorf("train.global_batch 12 does not divide by %d workers", w)
			}
			return nil
		},
	}
	withCfg := func(f func(*MachineConfig)) MachineConfig { c := base; f(&c); return c }
	tests := []struct {
		name   string
		cfg    MachineConfig
		script string
		want   string
	}{
		{
			name: "full run with settle, checkpoints and done",
			cfg:  base,
			script: `
members a
members a b
tick 1s
tick 1s
members a b c d
ready a
ready b
step a 1 5.5
step b 1 5.5
part a 2
step a 2 5.0
part b 2
committed 2
step a 4 4.0
part b 4
part a 4
committed 4
`,
			want: `
> members a
  phase=waiting step=0 err="1 of 2 workers (workers.min) registered"
> members a b
  phase=waiting step=0 err="2 workers registered; waiting 2s for up to 3 (workers.max)"
> tick 1s
  phase=waiting step=0 err="2 workers registered; waiting 2s for up to 3 (workers.max)"
> tick 1s
  publish gen=1 start=0 resume=-1 0=a[0:6] 1=b[6:12]
  phase=running step=0
> members a b c d
  phase=running step=0
> ready a
  phase=running step=0
> ready b
  phase=running step=0
> step a 1 5.5
  phase=running step=1
> step b 1 5.5
  phase=running step=1
> part a 2
  phase=checkpointing step=1
> step a 2 5.0
  phase=checkpointing step=2
> part b 2
  commit step=2 gen=1
  phase=checkpointing step=2
> committed 2
  phase=running step=2
> step a 4 4.0
  phase=running step=4
> part b 4
  phase=checkpointing step=4
> part a 4
  commit step=4 gen=1
  phase=checkpointing step=4
> committed 4
  finish err=<nil>
  phase=done step=4
`,
		},
		{
			name: "max workers form at once; world must divide the batch",
			cfg:  withCfg(func(c *MachineConfig) { c.MaxWorkers = 5; c.MinWorkers = 1 }),
			script: `
members a b c d e
`,
			want: `
> members a b c d e
  publish gen=1 start=0 resume=-1 0=a[0:3] 1=b[3:6] 2=c[6:9] 3=d[9:12]
  phase=running step=0
`,
		},
		{
			name: "lost worker regroups from the last checkpoint with a spare",
			cfg:  base,
			script: `
members a b c
ready a
step a 2 5.0
part a 2
part b 2
part c 2
committed 2
step a 3 4.5
members a c d
stale a 1 4
ready a
step a 3 4.4
`,
			want: `
> members a b c
  publish gen=1 start=0 resume=-1 0=a[0:4] 1=b[4:8] 2=c[8:12]
  phase=running step=0
> ready a
  phase=running step=0
> step a 2 5.0
  phase=running step=2
> part a 2
  phase=checkpointing step=2
> part b 2
  phase=checkpointing step=2
> part c 2
  commit step=2 gen=1
  phase=checkpointing step=2
> committed 2
  phase=running step=2
> step a 3 4.5
  phase=running step=3
> members a c d
  publish gen=2 start=2 resume=2 0=a[0:4] 1=c[4:8] 2=d[8:12]
  phase=recovering step=2 err="worker b lost at step 3"
> stale a 1 4
  stale
  phase=recovering step=2 err="worker b lost at step 3"
> ready a
  phase=recovering step=2 err="worker b lost at step 3"
> step a 3 4.4
  phase=running step=3
`,
		},
		{
			name: "lost worker below min waits with a clear error, then resumes",
			cfg:  withCfg(func(c *MachineConfig) { c.MaxWorkers = 2 }),
			script: `
members a b
members a
members a e
`,
			want: `
> members a b
  publish gen=1 start=0 resume=-1 0=a[0:6] 1=b[6:12]
  phase=running step=0
> members a
  phase=waiting step=0 err="worker b lost at step 0; 1 of 2 workers (workers.min) registered, resuming from step 0"
> members a e
  publish gen=2 start=0 resume=-1 0=a[0:6] 1=e[6:12]
  phase=recovering step=0 err="worker b lost at step 0"
`,
		},
		{
			name: "a worker error fails the job",
			cfg:  withCfg(func(c *MachineConfig) { c.MaxWorkers = 2 }),
			script: `
members a b
fail b open shard x: no such file
step a 1 3
`,
			want: `
> members a b
  publish gen=1 start=0 resume=-1 0=a[0:6] 1=b[6:12]
  phase=running step=0
> fail b open shard x: no such file
  finish err=worker failed: b (rank 1) at step 0: open shard x: no such file
  phase=failed step=0 err="worker failed: b (rank 1) at step 0: open shard x: no such file"
> step a 1 3
  phase=failed step=0 err="worker failed: b (rank 1) at step 0: open shard x: no such file"
`,
		},
		{
			name: "a broken ring waits for a lost worker, or regroups after a delay until it makes no progress",
			cfg: withCfg(func(c *MachineConfig) {
				c.MaxWorkers, c.MaxRegroups, c.LastCheckpoint, c.RegroupDelay, c.MinWorkers = 3, 2, 2, 5*time.Second, 1
			}),
			script: `
members a b c
step a 3 2.0
ringfail a peer gone
ringfail b peer gone
tick 2s
members a b
step a 3 2.0
ringfail b peer gone
tick 4s
tick 1s
ringfail a again
tick 5s
ringfail a again
tick 5s
`,
			want: `
> members a b c
  publish gen=1 start=2 resume=2 0=a[0:4] 1=b[4:8] 2=c[8:12]
  phase=running step=2
> step a 3 2.0
  phase=running step=3
> ringfail a peer gone
  phase=recovering step=3 err="ring of generation 1 broke at step 3 (reported by a): peer gone"
> ringfail b peer gone
  phase=recovering step=3 err="ring of generation 1 broke at step 3 (reported by a): peer gone"
> tick 2s
  phase=recovering step=3 err="ring of generation 1 broke at step 3 (reported by a): peer gone"
> members a b
  publish gen=2 start=2 resume=2 0=a[0:6] 1=b[6:12]
  phase=recovering step=2 err="worker c lost at step 3"
> step a 3 2.0
  phase=running step=3
> ringfail b peer gone
  phase=recovering step=3 err="ring of generation 2 broke at step 3 (reported by b): peer gone"
> tick 4s
  phase=recovering step=3 err="ring of generation 2 broke at step 3 (reported by b): peer gone"
> tick 1s
  publish gen=3 start=2 resume=2 0=a[0:6] 1=b[6:12]
  phase=recovering step=2 err="ring of generation 2 broke at step 3 (reported by b): peer gone"
> ringfail a again
  phase=recovering step=2 err="ring of generation 3 broke at step 2 (reported by a): again"
> tick 5s
  publish gen=4 start=2 resume=2 0=a[0:6] 1=b[6:12]
  phase=recovering step=2 err="ring of generation 3 broke at step 2 (reported by a): again"
> ringfail a again
  phase=recovering step=2 err="ring of generation 4 broke at step 2 (reported by a): again"
> tick 5s
  finish err=no progress: 3 generations in a row broke without progress; last: ring of generation 4 broke at step 2 (reported by a): again
  phase=failed step=2 err="no progress: 3 generations in a row broke without progress; last: ring of generation 4 broke at step 2 (reported by a): again"
`,
		},
		{
			name: "a silent worker gets its generation re-formed",
			cfg:  withCfg(func(c *MachineConfig) { c.MaxWorkers, c.StallTimeout = 2, time.Minute }),
			script: `
members a b
tick 30s
step a 1 2.0
step b 1 2.0
tick 59s
step a 2 2.0
tick 1s
`,
			want: `
> members a b
  publish gen=1 start=0 resume=-1 0=a[0:6] 1=b[6:12]
  phase=running step=0
> tick 30s
  phase=running step=0
> step a 1 2.0
  phase=running step=1
> step b 1 2.0
  phase=running step=1
> tick 59s
  phase=running step=1
> step a 2 2.0
  phase=running step=2
> tick 1s
  publish gen=2 start=0 resume=-1 0=a[0:6] 1=b[6:12]
  phase=recovering step=0 err="worker b (rank 1) sent no report for 1m0s"
`,
		},
		{
			name: "failed commit fails the job",
			cfg:  withCfg(func(c *MachineConfig) { c.MinWorkers, c.MaxWorkers = 1, 1 }),
			script: `
members a
part a 2
committed 2 disk full
`,
			want: `
> members a
  publish gen=1 start=0 resume=-1 0=a[0:12]
  phase=running step=0
> part a 2
  commit step=2 gen=1
  phase=checkpointing step=0
> committed 2 disk full
  finish err=checkpoint commit failed: step 2: disk full
  phase=failed step=0 err="checkpoint commit failed: step 2: disk full"
`,
		},
		{
			name: "resume from a checkpoint; parts at other steps are ignored",
			cfg:  withCfg(func(c *MachineConfig) { c.MinWorkers, c.MaxWorkers, c.LastCheckpoint, c.FirstGeneration = 1, 1, 2, 7 }),
			script: `
members a
part a 2
part a 3
step a 3 1.0
part a 4
committed 4
`,
			want: `
> members a
  publish gen=7 start=2 resume=2 0=a[0:12]
  phase=running step=2
> part a 2
  phase=running step=2
> part a 3
  phase=running step=2
> step a 3 1.0
  phase=running step=3
> part a 4
  commit step=4 gen=7
  phase=checkpointing step=3
> committed 4
  finish err=<nil>
  phase=done step=4
`,
		},
		{
			name: "already done at start",
			cfg:  withCfg(func(c *MachineConfig) { c.LastCheckpoint = 4 }),
			script: `
members a b
`,
			want: `
  finish err=<nil>
> members a b
  phase=done step=4
`,
		},
		{
			name: "no world size divides the batch",
			cfg: withCfg(func(c *MachineConfig) {
				c.GlobalBatch = 10
				c.MinWorkers, c.MaxWorkers = 3, 3
				c.ValidWorld = func(w int) error { return fmt.Errorf("train.global_batch 10 does not divide by %d workers", w) }
			}),
			script: `
members a b c
`,
			want: `
> members a b c
  phase=waiting step=0 err="no valid world size: 3 workers registered: train.global_batch 10 does not divide by 3 workers"
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runScript(t, tt.cfg, tt.script)
			if strings.TrimSpace(got) != strings.TrimSpace(tt.want) {
				t.Errorf("script output differs\n--- got\n%s\n--- want\n%s", got, tt.want)
			}
		})
	}
}

func TestIsCheckpointStep(t *testing.T) {
	tests := []struct {
		completed, every, max int
		want                  bool
	}{
		{0, 2, 10, false}, {1, 2, 10, false}, {2, 2, 10, true}, {10, 0, 10, true}, {9, 0, 10, false}, {7, 3, 7, true},
	}
	for _, tt := range tests {
		if got := IsCheckpointStep(tt.completed, tt.every, tt.max); got != tt.want {
			t.Errorf("IsCheckpointStep(%d, %d, %d) = %v, want %v", tt.completed, tt.every, tt.max, got, tt.want)
		}
	}
}
