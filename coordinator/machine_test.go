package coordinator

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden files of the scenario tests")

// runScript drives a Machine with a script, one event per line, and
// returns what it did: one line per action, then the phase (and the
// status note) after each event. Workers are named with an optional
// incarnation, NAME or NAME@INC (default 1).
//
//	members a b@2 c     registered workers, in registration order
//	tick 2s             the clock advances
//	ready NAME STEP     NAME reports ready in the current generation, holding STEP
//	step NAME N LOSS    NAME finished steps up to N (steps completed)
//	late NAME GEN N     a step report of generation GEN
//	ringfail NAME       NAME's ring broke
//	standby NAME        NAME is alive outside a ring
//	probed NAME dead    the answer to a probe (dead or alive)
//	heartbeat NAME PH   NAME is busy with PH
//	leaving NAME        NAME stopped at a boundary to leave
//	drained NAME N      NAME stopped at boundary N of a drain
//	fail NAME MSG       NAME failed
//	upload N            a checkpoint of step N arrives (if wanted)
//	committed N [ERR]   the runtime committed (or failed to commit) checkpoint N
//	stop                a graceful stop
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
				for _, rm := range a.Gen.Members {
					ms = append(ms, fmt.Sprintf("%d=%s@%d", rm.Rank, rm.Name, rm.Incarnation))
				}
				ck := "-"
				if c := a.Gen.Checkpoint; c != nil {
					ck = fmt.Sprint(c.Step)
				}
				fmt.Fprintf(&out, "  publish gen=%d mode=%s abort=%v checkpoint=%s %s\n", a.Gen.ID, a.Gen.Mode, a.Gen.Abort, ck, strings.Join(ms, " "))
			case Probe:
				fmt.Fprintf(&out, "  probe %s@%d %s\n", a.Name, a.Incarnation, a.Address)
			case Commit:
				fmt.Fprintf(&out, "  commit step=%d lineage=%d\n", a.Step, a.Lineage)
			case Record:
				if l := a.Line.Step; l != nil {
					fmt.Fprintf(&out, "  line step=%d loss=%g world=%d val=%v\n", l.Step, l.Loss, l.WorldSize, l.ValLoss != nil)
				} else {
					e := a.Line.Event
					fmt.Fprintf(&out, "  event %s step=%d", e.Event, e.Step)
					if e.Worker != "" {
						fmt.Fprintf(&out, " worker=%s", e.Worker)
					}
					if e.Seconds != 0 {
						fmt.Fprintf(&out, " seconds=%g", e.Seconds)
					}
					fmt.Fprintf(&out, " %q\n", e.Detail)
				}
			case Finish:
				fmt.Fprintf(&out, "  finish err=%v stopped=%v\n", a.Err, a.Stopped)
			}
		}
	}
	worker := func(s string) (string, uint64) {
		name, inc, ok := strings.Cut(s, "@")
		if !ok {
			return name, 1
		}
		n, err := strconv.ParseUint(inc, 10, 64)
		if err != nil {
			t.Fatalf("worker %q: %v", s, err)
		}
		return name, n
	}
	rank := func(name string, inc uint64) int {
		if g := m.Generation(); g != nil {
			return g.Rank(name, inc)
		}
		return -1
	}
	gen := func() int64 {
		if g := m.Generation(); g != nil {
			return g.ID
		}
		return 0
	}
	emit(m.Start(now))
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
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
		report := func(kind ReportKind) Report {
			name, inc := worker(f[1])
			return Report{Name: name, Incarnation: inc, Generation: gen(), Rank: rank(name, inc), Kind: kind, HealSource: -1}
		}
		send := func(r Report) {
			ack, acts := m.Report(now, r)
			if ack.Stale {
				out.WriteString("  stale\n")
			}
			if ack.Refused != "" {
				fmt.Fprintf(&out, "  refused: %s\n", ack.Refused)
			}
			emit(acts)
		}
		switch f[0] {
		case "members":
			var ms []cluster.Member
			for _, w := range f[1:] {
				name, inc := worker(w)
				data := cfg.DataDigest
				if strings.HasSuffix(name, "!") { // a worker with other data
					name, data = strings.TrimSuffix(name, "!"), "other"
				}
				ms = append(ms, cluster.Member{Name: name, Address: name + ":1", Incarnation: inc, Data: data})
			}
			emit(m.SetMembers(now, ms))
		case "tick":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(d)
			emit(m.Tick(now))
		case "ready":
			r := report(ReportReady)
			r.Step = atoi(f[2])
			send(r)
		case "step":
			r := report(ReportStep)
			r.Step, r.Tokens, r.StepTime, r.Lineage = atoi(f[2]), 1000, time.Second, gen()
			r.Loss, _ = strconv.ParseFloat(f[3], 64)
			send(r)
		case "late":
			r := report(ReportStep)
			r.Generation, r.Step, r.Tokens, r.StepTime = int64(atoi(f[2])), atoi(f[3]), 1000, time.Second
			send(r)
		case "ringfail":
			r := report(ReportRingFailed)
			r.Err = "stream broken"
			send(r)
		case "standby":
			send(report(ReportStandby))
		case "heartbeat":
			r := report(ReportHeartbeat)
			r.Phase = f[2]
			send(r)
		case "leaving":
			send(report(ReportLeaving))
		case "drained":
			r := report(ReportDrained)
			r.Step = atoi(f[2])
			send(r)
		case "fail":
			r := report(ReportFailed)
			r.Err = strings.Join(f[2:], " ")
			send(r)
		case "probed":
			name, inc := worker(f[1])
			emit(m.Probed(now, name, inc, f[2] == "alive"))
		case "upload":
			step := atoi(f[1])
			if !m.WantCheckpoint(step) {
				out.WriteString("  not wanted\n")
				break
			}
			emit(m.Uploading(now, step, true, nil))
			emit(m.Uploaded(now, step, gen()))
		case "committed":
			var err error
			if len(f) > 2 {
				err = errors.New(strings.Join(f[2:], " "))
			}
			emit(m.Committed(now, atoi(f[1]), gen(), err))
		case "stop":
			emit(m.Stop(now))
		default:
			t.Fatalf("unknown script command %q", f[0])
		}
		s := m.Status(now)
		fmt.Fprintf(&out, "  phase=%s step=%d", s.Phase, s.Step)
		if s.Err != "" {
			fmt.Fprintf(&out, " note=%q", s.Err)
		}
		out.WriteString("\n")
	}
	return out.String()
}

// TestMachineScenarios runs the scripts of testdata/machine/*.txt: a
// MachineConfig override line ("config: key=value ..."), the script, a
// line "----", and the expected output (go test -update rewrites it).
func TestMachineScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/machine/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			head, want, ok := strings.Cut(string(b), "\n----\n")
			if !ok && !*update {
				t.Fatalf("%s: no ---- line", path)
			}
			cfg := MachineConfig{
				Job: "t", MinWorkers: 2, MaxWorkers: 3, MaxSteps: 10, CheckpointEvery: 4,
				Settle: 2 * time.Second, FirstGeneration: 1,
			}
			var script []string
			for _, line := range strings.Split(head, "\n") {
				if rest, ok := strings.CutPrefix(line, "config:"); ok {
					applyConfig(t, &cfg, rest)
					continue
				}
				script = append(script, line)
			}
			got := runScript(t, cfg, strings.Join(script, "\n"))
			if *update {
				if err := os.WriteFile(path, []byte(head+"\n----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.TrimSpace(got) != strings.TrimSpace(want) {
				t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
			}
		})
	}
}

func applyConfig(t *testing.T, cfg *MachineConfig, s string) {
	t.Helper()
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "min":
			cfg.MinWorkers = n
		case "max":
			cfg.MaxWorkers = n
		case "steps":
			cfg.MaxSteps = n
		case "every":
			cfg.CheckpointEvery = n
		case "checkpoint":
			cfg.LastCheckpoint = &cluster.Version{Step: int64(n), Generation: 1}
		case "metrics": // steps 0 … n are written
			for s := 0; s <= n; s++ {
				cfg.Written = append(cfg.Written, s)
			}
		case "stall":
			d, _ := time.ParseDuration(v)
			cfg.StallTimeout = d
		case "data":
			cfg.DataDigest = v
		case "adopt": // adopt=ID:a,b,c (incarnation 1)
			id, names, _ := strings.Cut(v, ":")
			gid, _ := strconv.ParseInt(id, 10, 64)
			g := &cluster.Generation{ID: gid, Mode: cluster.ModeTrain}
			for r, name := range strings.Split(names, ",") {
				g.Members = append(g.Members, cluster.RankedMember{Name: name, Address: name + ":1", Incarnation: 1, Rank: r})
			}
			cfg.Adopt = g
		default:
			t.Fatalf("config key %q", k)
		}
	}
}
