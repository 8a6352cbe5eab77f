package worker

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/cluster"
)

// runWorkerScript drives a Machine for worker "me" (incarnation 1) and
// returns its actions, one line per event:
//
//	gen ID [mode] [abort] MEMBERS   a generation; members NAME or NAME@INC by rank
//	ended OUTCOME                   the run ended (boundary, drained, ring, aborted, fatal)
//	leave                           SIGTERM
//	inc N                           the registration now holds incarnation N
func runWorkerScript(t *testing.T, exitWhenDone bool, script string) string {
	t.Helper()
	m := NewMachine("me", 1, exitWhenDone)
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var acts []Action
		switch f[0] {
		case "gen":
			g := &cluster.Generation{Mode: cluster.ModeTrain}
			fmt.Sscan(f[1], &g.ID)
			for _, w := range f[2:] {
				switch w {
				case "drain", "done", "failed":
					g.Mode = cluster.Mode(w)
					continue
				case "abort":
					g.Abort = true
					continue
				}
				name, inc, _ := strings.Cut(w, "@")
				rm := cluster.RankedMember{Name: name, Incarnation: 1, Rank: len(g.Members)}
				if inc != "" {
					fmt.Sscan(inc, &rm.Incarnation)
				}
				g.Members = append(g.Members, rm)
			}
			acts = m.Generation(g)
		case "ended":
			o := map[string]Outcome{"boundary": OutcomeBoundary, "drained": OutcomeDrained, "ring": OutcomeRingFailed,
				"aborted": OutcomeAborted, "fatal": OutcomeFatal}[f[1]]
			var err error
			if o == OutcomeFatal {
				err = errors.New("loss is NaN")
			}
			acts = m.RunEnded(o, err)
		case "leave":
			acts = m.Leave()
		case "inc":
			var n uint64
			fmt.Sscan(f[1], &n)
			acts = m.Registered(n)
		default:
			t.Fatalf("unknown command %q", f[0])
		}
		fmt.Fprintf(&out, "%-24s →", line)
		if len(acts) == 0 {
			out.WriteString(" -")
		}
		for _, a := range acts {
			switch a := a.(type) {
			case StartRun:
				fmt.Fprintf(&out, " start(gen %d rank %d)", a.Gen.ID, a.Rank)
			case StopAtBoundary:
				out.WriteString(" stop-at-boundary")
			case AbortRun:
				out.WriteString(" abort")
			case Send:
				fmt.Fprintf(&out, " send(%s gen %d)", map[ReportKind]string{SendStandby: "standby", SendLeaving: "leaving", SendFailed: "failed"}[a.Kind], a.Gen)
			case Deregister:
				out.WriteString(" deregister")
			case Exit:
				fmt.Fprintf(&out, " exit(%v)", a.Err)
			}
		}
		out.WriteString("\n")
	}
	return out.String()
}

func TestWorkerMachine(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
		exitWhenDone       bool
	}{
		{name: "join, then a bigger generation: finish the step, then switch", script: `
gen 1 me b
gen 2 me b c
ended boundary`, want: `
gen 1 me b               → start(gen 1 rank 0)
gen 2 me b c             → stop-at-boundary
ended boundary           → start(gen 2 rank 0)`},
		{name: "a member died silently: abandon the step in flight", script: `
gen 1 a me c
gen 2 abort a me
ended aborted`, want: `
gen 1 a me c             → start(gen 1 rank 1)
gen 2 abort a me         → abort
ended aborted            → start(gen 2 rank 1)`},
		{name: "a rank dies after some ranks finished the all-reduce: say so, never restart the broken generation", script: `
gen 3 me b
ended ring
gen 3 me b
gen 4 me
ended ring
gen 5 me c`, want: `
gen 3 me b               → start(gen 3 rank 0)
ended ring               → send(standby gen 3)
gen 3 me b               → -
gen 4 me                 → start(gen 4 rank 0)
ended ring               → send(standby gen 4)
gen 5 me c               → start(gen 5 rank 0)`},
		{name: "two generations while running: one stop, then the newest", script: `
gen 1 me b
gen 2 me b c
gen 3 me b c d
ended boundary`, want: `
gen 1 me b               → start(gen 1 rank 0)
gen 2 me b c             → stop-at-boundary
gen 3 me b c d           → -
ended boundary           → start(gen 3 rank 0)`},
		{name: "a spare says so once per generation", script: `
gen 1 a b
gen 1 a b
gen 2 a c
gen 3 a me`, want: `
gen 1 a b                → send(standby gen 1)
gen 1 a b                → -
gen 2 a c                → send(standby gen 2)
gen 3 a me               → start(gen 3 rank 1)`},
		{name: "SIGTERM while training: leave at the boundary", script: `
gen 1 a me
leave
gen 2 a me
ended boundary`, want: `
gen 1 a me               → start(gen 1 rank 1)
leave                    → stop-at-boundary
gen 2 a me               → -
ended boundary           → send(leaving gen 0) deregister exit(<nil>)`},
		{name: "SIGTERM while idle", script: `
gen 1 a b
leave`, want: `
gen 1 a b                → send(standby gen 1)
leave                    → send(leaving gen 0) deregister exit(<nil>)`},
		{name: "paused past the lease: the old incarnation's run is abandoned, the new one joins", script: `
gen 1 a me b
inc 2
ended aborted
gen 2 a b
gen 3 a b me@2`, want: `
gen 1 a me b             → start(gen 1 rank 1)
inc 2                    → abort
ended aborted            → send(standby gen 1)
gen 2 a b                → send(standby gen 2)
gen 3 a b me@2           → start(gen 3 rank 2)`},
		{name: "done: exit when asked to", exitWhenDone: true, script: `
gen 1 me b
gen 2 done me b
ended aborted`, want: `
gen 1 me b               → start(gen 1 rank 0)
gen 2 done me b          → abort
ended aborted            → exit(<nil>)`},
		{name: "failed job", exitWhenDone: true, script: `
gen 1 me
gen 2 failed me
ended aborted`, want: `
gen 1 me                 → start(gen 1 rank 0)
gen 2 failed me          → abort
ended aborted            → exit(job failed: )`},
		{name: "a fatal error ends the worker", script: `
gen 1 me
ended fatal`, want: `
gen 1 me                 → start(gen 1 rank 0)
ended fatal              → send(failed gen 1) exit(loss is NaN)`},
		{name: "drain, then train on", script: `
gen 1 me b
gen 2 drain me b
ended boundary
ended drained
gen 3 me b`, want: `
gen 1 me b               → start(gen 1 rank 0)
gen 2 drain me b         → stop-at-boundary
ended boundary           → start(gen 2 rank 0)
ended drained            → send(standby gen 2)
gen 3 me b               → start(gen 3 rank 0)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runWorkerScript(t, tc.exitWhenDone, tc.script)
			if strings.TrimSpace(got) != strings.TrimSpace(tc.want) {
				t.Errorf("got\n%s\nwant\n%s", got, strings.TrimSpace(tc.want))
			}
		})
	}
}
