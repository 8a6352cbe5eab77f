package job

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/model"
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
	small, _ := model.Preset("small")
	if want := (Model{Preset: "small", Config: small}); j.Model != want {
		t.Errorf("model = %+v, want %+v", j.Model, want)
	}
	if j.Train.GlobalBatch != 32 || j.Train.Seed != 1337 || j.Train.Eps != 1e-8 || j.Checkpoint.Keep != 3 ||
		j.Train.Precision != "fp32" || j.Train.AllReduce != "fp32" {
		t.Errorf("train/checkpoint = %+v %+v", j.Train, j.Checkpoint)
	}
	// 32 sequences split into whole micro-batches of 8 on 1, 2 or 4 workers, not 3, 5..8.
	if got := fmt.Sprint(j.Sizes()); got != "[4 2 1]" {
		t.Errorf("Sizes() = %v, want [4 2 1]", got)
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
	if j.Model.VocabSize != 256 || j.Model.RopeTheta != 10000 {
		t.Errorf("model = %+v", j.Model)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{"data: {train: a, trian: b}", "data.trian"},
		{"lr: 1", "unknown key lr"},
		{"data: {train: a}\nmodel: {preset: huge}", "model.preset"},
		{"data: {train: a}\nmodel: {preset: small, num_heads: 7}", "num_heads"},
		{"data: {train: a}\nmodel: {preset: small, vocab_size: 70000}", "vocab_size"},
		{"data: {train: a}\ntrain: {global_batch: 30, micro_batch: 8}", "train.micro_batch"},
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
	j, err := Parse([]byte("data: {train: a}\neval: {every: 0}\ntrain: {global_batch: 24, micro_batch: 4}\nworkers: {min: 1, max: 6}"), "j")
	if err != nil {
		t.Fatal(err)
	}
	for w, ok := range map[int]bool{1: true, 2: true, 3: true, 4: false, 5: false, 6: true, 7: false} {
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
