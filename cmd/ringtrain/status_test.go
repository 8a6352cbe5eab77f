package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/dashboard"
	pb "github.com/ringtrain/ringtrain/proto"
)

func TestStatusOutput(t *testing.T) {
	st := &pb.JobStatusResponse{
		Job: "tiny", Phase: "running", Step: 12, MaxSteps: 40, Loss: 2.5, TokensPerS: 1234, EtaS: 75,
		Generation: 2, WorldSize: 2, LastCheckpointStep: 8, TimeUnixMs: 10_000,
		Workers: []*pb.WorkerStatus{
			{Name: "w0", Rank: 0, Address: "10.0.0.1:7071", State: "training", Step: 12, LastHeartbeatUnixMs: 9_500,
				StepTimeS: 0.02, ComputeS: 0.015, AllreduceWaitS: 0.003, OptimizerS: 0.002, TokensPerS: 617},
			{Name: "w9", Rank: -1, Address: "10.0.0.9:7071", State: "spare"},
		},
	}
	b, err := dashboard.StatusJSON(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"phase": "running", "step": 12.0, "max_steps": 40.0, "loss": 2.5, "tokens_per_s": 1234.0} {
		if m[k] != want {
			t.Errorf("--json %s = %#v, want %#v", k, m[k], want)
		}
	}
	if v, ok := m["val_loss"]; ok {
		t.Errorf("--json val_loss = %v before an evaluation", v)
	}
	ws := m["workers"].([]any)
	if w1 := ws[1].(map[string]any); w1["name"] != "w9" || w1["rank"] != -1.0 || w1["state"] != "spare" || w1["step"] != 0.0 {
		t.Errorf("--json second worker %v", w1)
	}

	var out bytes.Buffer
	if err := printStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"step        12 / 40", "eta         1m15s", "checkpoint  step 8", "w0    0     10.0.0.1:7071  training", "20ms       15ms/3ms/2ms", "500ms ago", "w9    -"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table has no %q:\n%s", want, out.String())
		}
	}
	if got := progressLine(st); got != "running step 12/40 loss 2.5000 1234 tok/s ETA 1m15s W=2" {
		t.Errorf("progress line %q", got)
	}
}

func TestStatusFinal(t *testing.T) {
	val := 2.25
	st := resultStatus(&cluster.Result{Run: "r1", Job: "tiny", Phase: "done", Step: 40, MaxSteps: 40, Loss: 2.125, ValLoss: &val, ValStep: 40,
		LastCheckpoint: 40, RunDir: "/runs/tiny", Coordinator: "c:7070", Time: time.Unix(100, 0)})
	if got := finalLine(st); !strings.HasPrefix(got, "job tiny done at step 40, loss 2.1250, val loss 2.2500 after 40 steps (final state recorded by the coordinator at c:7070") {
		t.Errorf("final line %q", got)
	}
	b, err := dashboard.StatusJSON(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"phase": "done", "step": 40.0, "loss": 2.125, "val_loss": 2.25, "run_dir": "/runs/tiny", "last_checkpoint_step": 40.0} {
		if m[k] != want {
			t.Errorf("--json of the result: %s = %#v, want %#v", k, m[k], want)
		}
	}
	var out bytes.Buffer
	if err := printStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "NAME") {
		t.Errorf("a final state has no workers table:\n%s", out.String())
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, `name resolver error: produced zero addresses`), "no coordinator answers at c:7070 (its name does not resolve); the job may be over"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7070: connect: connection refused"`), "(connection refused)"},
		{status.Error(codes.Internal, "boom"), "coordinator c:7070: rpc error: code = Internal desc = boom"},
	} {
		if got := unreachable("c:7070", c.err, false).Error(); !strings.Contains(got, c.want) {
			t.Errorf("unreachable(%v) = %q, want %q in it", c.err, got, c.want)
		}
	}
}

// Not on a terminal: no \r ever, a summary line every --log-every steps
// (and on a phase change), each event and evaluation once on its own line.
func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	p := newJobProgress(&out, 10)
	now := time.Unix(1000, 0)
	ev := []*pb.JobEvent{{TimeUnixMs: 1000_000, Kind: "joined", Worker: "w0", Detail: "registered"}}
	for step := int64(0); step <= 25; step++ {
		st := &pb.JobStatusResponse{Phase: "running", Step: step, MaxSteps: 30, Loss: 3, WorldSize: 1, Events: ev}
		if step == 0 {
			st.Phase = "waiting"
		}
		if step >= 20 {
			st.HasValLoss, st.ValLoss, st.ValStep = true, 2.5, 20
			st.Events = append(ev, &pb.JobEvent{TimeUnixMs: 1001_000, Kind: "healed", Step: 20, Worker: "w1", Seconds: 1.5, Detail: "state of step 20 from rank 0"})
		}
		p.update(st, now.Add(time.Duration(step)*time.Millisecond))
	}
	p.done()
	got := out.String()
	if strings.Contains(got, "\r") {
		t.Errorf("\\r in plain output:\n%s", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	var summaries []string
	for _, l := range lines {
		if strings.Contains(l, " step ") && strings.Contains(l, "/30") {
			summaries = append(summaries, strings.Fields(l)[2])
		}
	}
	if want := "0/30 1/30 10/30 20/30 25/30"; strings.Join(summaries, " ") != want {
		t.Errorf("summaries at %v, want %s:\n%s", summaries, want, got)
	}
	for _, want := range []string{"joined            step 0  w0: registered", "healed            step 20  w1  in 1.5s: state of step 20 from rank 0", "eval    after 20 steps  val loss 2.5000"} {
		if n := strings.Count(got, want); n != 1 {
			t.Errorf("%q printed %d times, want once:\n%s", want, n, got)
		}
	}
}

func TestStageLines(t *testing.T) {
	var out bytes.Buffer
	update, finish := stageLines(&out, map[string]stage{"read": {label: "reading", bytes: true}, "merge": {label: "merges"}}, time.Hour)
	for i := int64(0); i <= 100; i++ {
		update("read", i*1e6, 100e6)
	}
	update("merge", 1, 50)
	update("merge", 7, 50)
	finish()
	want := "reading: 0.0 MB/100.0 MB (0%)\nreading: 100.0 MB/100.0 MB (100%)\nmerges: 1/50 (2%)\nmerges: 7/50 (14%)\n"
	if out.String() != want {
		t.Errorf("stage lines:\n%s\nwant:\n%s", out.String(), want)
	}
}
