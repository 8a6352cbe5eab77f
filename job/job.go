package job

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ringtrain/ringtrain/model"
)

// Job is one training job, as written in a job file.
type Job struct {
	Name       string     `yaml:"name" json:"name"`
	Model      Model      `yaml:"model" json:"model"`
	Init       string     `yaml:"init" json:"init"`
	Data       Data       `yaml:"data" json:"data"`
	Train      Train      `yaml:"train" json:"train"`
	Eval       Eval       `yaml:"eval" json:"eval"`
	Checkpoint Checkpoint `yaml:"checkpoint" json:"checkpoint"`
	Workers    Workers    `yaml:"workers" json:"workers"`
}

// Model names a preset, or gives the fields of the model's shape
// (model.Config). Fields given next to a preset override the preset's.
type Model struct {
	Preset       string `yaml:"preset" json:"preset,omitempty"`
	model.Config `yaml:",inline" json:",inline"`
}

// Data says where the token shards are and in which order to read them.
type Data struct {
	Train string `yaml:"train" json:"train"` // glob of training shards
	Val   string `yaml:"val" json:"val"`     // glob of validation shards; empty: no evaluation
	Order string `yaml:"order" json:"order"` // "sequential" or "shuffled"
}

// Train holds the optimisation settings (spec section 3).
type Train struct {
	GlobalBatch int     `yaml:"global_batch" json:"global_batch"` // sequences per optimizer step, all workers together
	MicroBatch  int     `yaml:"micro_batch" json:"micro_batch"`   // sequences per forward/backward on one worker
	MaxSteps    int     `yaml:"max_steps" json:"max_steps"`
	LR          float64 `yaml:"lr" json:"lr"`
	MinLR       float64 `yaml:"min_lr" json:"min_lr"`
	Warmup      int     `yaml:"warmup" json:"warmup"`
	Beta1       float64 `yaml:"beta1" json:"beta1"`
	Beta2       float64 `yaml:"beta2" json:"beta2"`
	Eps         float64 `yaml:"eps" json:"eps"`
	WeightDecay float64 `yaml:"weight_decay" json:"weight_decay"`
	GradClip    float64 `yaml:"grad_clip" json:"grad_clip"` // 0 disables clipping
	Seed        uint64  `yaml:"seed" json:"seed"`
	// Precision of the matrix products: "fp32" or "bf16" (inputs rounded to
	// bfloat16, float32 accumulation, float32 weights, gradients and AdamW).
	Precision string `yaml:"precision" json:"precision"`
	// AllReduce is the gradients' wire format: "fp32", or "bf16" (rounded
	// to bfloat16 for the wire, added in float32 at every hop).
	AllReduce string `yaml:"allreduce" json:"allreduce"`
}

// Eval says how often to evaluate on the validation shards, and on how many sequences.
type Eval struct {
	Every     int `yaml:"every" json:"every"` // 0 disables periodic evaluation
	Sequences int `yaml:"sequences" json:"sequences"`
}

// Checkpoint says how often to checkpoint and how many checkpoints to keep.
type Checkpoint struct {
	Every int `yaml:"every" json:"every"` // 0: only the final checkpoint
	Keep  int `yaml:"keep" json:"keep"`
}

// Workers bounds the size of the cluster.
type Workers struct {
	Min int `yaml:"min" json:"min"`
	Max int `yaml:"max" json:"max"`
}

// Default returns a job with every default filled in and no data.
func Default() Job {
	return Job{
		Name:  "job",
		Model: Model{Preset: "small"},
		Data:  Data{Order: "sequential"},
		Train: Train{
			GlobalBatch: 32, MicroBatch: 8, MaxSteps: 2000,
			LR: 1e-3, MinLR: 1e-4, Warmup: 100,
			Beta1: 0.9, Beta2: 0.95, Eps: 1e-8,
			WeightDecay: 0.1, GradClip: 1.0, Seed: 1337,
			Precision: "fp32", AllReduce: "fp32",
		},
		Eval:       Eval{Every: 200, Sequences: 64},
		Checkpoint: Checkpoint{Every: 100, Keep: 3},
		Workers:    Workers{Min: 1, Max: 8},
	}
}

// Load reads a job file. Relative data and init paths are resolved against
// the current directory, as the user typed them.
func Load(path string) (*Job, error) {
	j, _, err := LoadText(path)
	return j, err
}

// LoadText is Load that also returns the file's text, which checkpoints
// keep beside the state they were taken with.
func LoadText(path string) (*Job, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("job file: %w", err)
	}
	j, err := Parse(data, path)
	return j, string(data), err
}

// Parse decodes a job file's contents over the defaults and checks every
// value that does not depend on the world size. name is used in errors.
func Parse(data []byte, name string) (*Job, error) {
	j := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&j); err != nil && !errors.Is(err, io.EOF) { // an empty file means all defaults
		return nil, fmt.Errorf("job file %s: %s", name, yamlMessage(err))
	}
	m, err := j.Model.Resolved()
	if err == nil {
		j.Model = m
		err = j.check()
	}
	if err != nil {
		return nil, fmt.Errorf("job file %s: %w", name, err)
	}
	return &j, nil
}

// yamlMessage shortens the decoder's message ("yaml: unmarshal errors:\n  line 3: field foo not found in type job.Data")
// to name the key the way the user wrote it.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if i := strings.Index(msg, " not found in type "); i >= 0 {
		// "line 3: field foo not found in type job.Data" → "line 3: unknown key data.foo"
		typ := msg[i+len(" not found in type "):]
		head := msg[:i]
		if k := strings.LastIndex(head, "field "); k >= 0 {
			section := sectionOf[strings.TrimPrefix(typ, "job.")]
			key := head[k+len("field "):]
			if section != "" {
				key = section + "." + key
			}
			return head[:k] + "unknown key " + key
		}
	}
	return strings.ReplaceAll(msg, "\n", "; ")
}

var sectionOf = map[string]string{
	"Model": "model", "Data": "data", "Train": "train", "Eval": "eval",
	"Checkpoint": "checkpoint", "Workers": "workers",
}
