package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	pb "github.com/ringtrain/ringtrain/proto"
)

func TestStatusOutput(t *testing.T) {
	st := &pb.JobStatusResponse{
		Job: "tiny", Phase: "running", Step: 12, MaxSteps: 40, Loss: 2.5, TokensPerS: 1234, EtaS: 75,
		Generation: 2, WorldSize: 2, LastCheckpointStep: 8, TimeUnixMs: 10_000,
		Workers: []*pb.WorkerStatus{
			{Name: "w0", Rank: 0, Address: "10.0.0.1:7071", State: "training", Step: 12, LastHeartbeatUnixMs: 9_500},
			{Name: "w9", Rank: -1, Address: "10.0.0.9:7071", State: "spare"},
		},
	}
	b, err := statusJSON(st)
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
	ws := m["workers"].([]any)
	if w1 := ws[1].(map[string]any); w1["name"] != "w9" || w1["rank"] != -1.0 || w1["state"] != "spare" || w1["step"] != 0.0 {
		t.Errorf("--json second worker %v", w1)
	}

	var out bytes.Buffer
	if err := printStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"step        12 / 40", "eta         1m15s", "checkpoint  step 8", "w0    0     10.0.0.1:7071  training", "500ms ago", "w9    -"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table has no %q:\n%s", want, out.String())
		}
	}
	if got := progressLine(st); got != "running step 12/40 loss 2.5000 1234 tok/s ETA 1m15s W=2" {
		t.Errorf("progress line %q", got)
	}
}
