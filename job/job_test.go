package job

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const specExample = `
name: shakespeare
model: {preset: small}
init: ""
data: {train: "data/train_*.bin", val: "data/val_*.bin", order: sequential}
train: {global_batch: 32, micro_batch: 8, max_steps: 2000, lr: 1.0e-3, min_lr: 1.0e-4,
        warmup: 100, beta1: 0.9, beta2: 0.95, eps: 1.0e-8, weight_decay: 0.1, grad_clip: 1.0, seed: 1337}
eval: {every: 200, sequences: 64}
checkpoint: {every: 100, keep: 3}
workers: {min: 1, max: 8}
`

func TestParseSpecExample(t *testing.T) {
	j, err := Parse([]byte(specExample), "spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Model{Preset: "small"}); j.Model != want {
		t.Errorf("model = %+v, want %+v", j.Model, want)
	}
	if j.Train.GlobalBatch != 32 || j.Train.Seed != 1337 || j.Train.Eps != 1e-8 || j.Checkpoint.Keep != 3 ||
		j.Train.Precision != "fp32" || j.Train.AllReduce != "fp32" {
		t.Errorf("train/checkpoint = %+v %+v", j.Train, j.Checkpoint)
	}
	if j.Workers.StallTimeout.D() != 60*time.Second {
		t.Errorf("workers.stall_timeout = %v, want the 60s default", j.Workers.StallTimeout)
	}
}

func TestCadences(t *testing.T) {
	j, err := Parse([]byte("data: {train: a, val: b}\ntrain: {max_steps: 25, warmup: 0}\neval: {every: 10}\ncheckpoint: {every: 8}"), "j")
	if err != nil {
		t.Fatal(err)
	}
	var ck, ev []int
	for s := 0; s <= 26; s++ {
		if j.CheckpointDue(s) {
			ck = append(ck, s)
		}
		if j.EvalDue(s) {
			ev = append(ev, s)
		}
	}
	if got := fmt.Sprint(ck, ev); got != "[8 16 24 25] [10 20 25]" {
		t.Errorf("checkpoints, evals = %s", got)
	}
}

func TestDurationRoundTrip(t *testing.T) {
	j, err := Parse([]byte("data: {train: a}\neval: {every: 0}\nworkers: {stall_timeout: 2m30s}"), "j")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var back Job
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Workers.StallTimeout.D() != 150*time.Second || back != *j {
		t.Errorf("JSON round trip: %+v, want %+v", back, *j)
	}
	if _, err := Parse([]byte("data: {train: a}\nworkers: {stall_timeout: soon}"), "j"); err == nil || !strings.Contains(err.Error(), "duration") {
		t.Errorf("bad duration: %v", err)
	}
}

func TestPrecisionKeys(t *testing.T) {
	j, err := Parse([]byte("data: {train: a}\neval: {every: 0}\ntrain: {precision: bf16, allreduce: bf16}"), "j.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if j.Train.Precision != "bf16" || j.Train.AllReduce != "bf16" {
		t.Errorf("train = %+v", j.Train)
	}
}

func TestJSONIsValid(t *testing.T) {
	j, err := Parse([]byte(`{"model": {"vocab_size": 256, "context_length": 64, "d_model": 64, "num_layers": 2, "num_heads": 4, "d_ff": 172},
		"data": {"train": "x_*.bin"}, "eval": {"every": 0}}`), "j.json")
	if err != nil {
		t.Fatal(err)
	}
	if j.Model.VocabSize != 256 || j.Model.DFF != 172 {
		t.Errorf("model = %+v", j.Model)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{"data: {train: a, trian: b}", "data.trian"},
		{"lr: 1", "unknown key lr"},
		{"data: {train: a}\nmodel: {preset: small, num_heads: -7}", "model.num_heads"},
		{"data: {train: a}\ntrain: {global_batch: 4}", "workers.max"},
		{"data: {train: a}\ntrain: {lr: -1}", "train.lr"},
		{"data: {train: a}\ntrain: {beta2: 1}", "train.beta2"},
		{"data: {train: a, order: random}", "data.order"},
		{"data: {train: a}\neval: {every: 10}", "eval.every"},
		{"data: {train: a}\nworkers: {min: 4, max: 2}", "workers.min"},
		{"data: {train: a}\ntrain: {precision: fp16}", "train.precision"},
		{"data: {train: a}\ntrain: {allreduce: int8}", "train.allreduce"},
		{"model: {preset: small}", "data.train"},
		{"train: {max_steps: ten}", "line 1"},
	} {
		_, err := Parse([]byte(tc.body), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), "bad.yaml") {
			t.Errorf("%q: error %v, want one naming %s and the file", tc.body, err, tc.key)
		}
	}
}

func TestValidateWorld(t *testing.T) {
	j, err := Parse([]byte("data: {train: a}\neval: {every: 0}\ntrain: {global_batch: 24, micro_batch: 4}\nworkers: {min: 2, max: 6}"), "j")
	if err != nil {
		t.Fatal(err)
	}
	for w, ok := range map[int]bool{1: false, 2: true, 3: true, 4: true, 5: true, 6: true, 7: false} {
		err := j.Validate(w)
		if (err == nil) != ok {
			t.Errorf("Validate(%d) = %v, want ok=%v", w, err, ok)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("Load: %v", err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "data.train") {
		t.Errorf("empty file: %v, want the missing data.train", err)
	}
}

// A job in JSON from a process that knew fewer keys decodes with the
// defaults for the missing ones.
func TestJSONMissingKeysTakeDefaults(t *testing.T) {
	var j Job
	if err := json.Unmarshal([]byte(`{"name":"old","data":{"train":"/t_*.bin"},"train":{"max_steps":5}}`), &j); err != nil {
		t.Fatal(err)
	}
	d := Default()
	if j.Train.MaxSteps != 5 || j.Train.GlobalBatch != d.Train.GlobalBatch || j.Workers.StallTimeout != d.Workers.StallTimeout || j.Model.Preset != "small" {
		t.Errorf("decoded %+v", j)
	}
}
