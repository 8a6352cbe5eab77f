package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ringtrain/ringtrain/internal/readlimit"
	"github.com/ringtrain/ringtrain/tokenizer"
)

// Job is one training job, as written in a job file.
type Job struct {
	Name       string     `yaml:"name" json:"name"`
	Model      Model      `yaml:"model" json:"model"`
	Init       string     `yaml:"init" json:"init"`
	Tokenizer  string     `yaml:"tokenizer" json:"tokenizer,omitempty"` // tokenizer directory; "" = the one prepare put beside data.train, if any
	Data       Data       `yaml:"data" json:"data"`
	Train      Train      `yaml:"train" json:"train"`
	Eval       Eval       `yaml:"eval" json:"eval"`
	Checkpoint Checkpoint `yaml:"checkpoint" json:"checkpoint"`
	Workers    Workers    `yaml:"workers" json:"workers"`
}

// Model names a preset, or gives the fields of the model's shape; fields
// given next to a preset override the preset's. The job only carries them:
// they are resolved and validated where the model is built
// (trainer.ModelConfig), so that the control plane needs nothing of the
// model. Zero means "not given".
type Model struct {
	Preset        string  `yaml:"preset" json:"preset"`
	VocabSize     int     `yaml:"vocab_size" json:"vocab_size,omitempty"`
	ContextLength int     `yaml:"context_length" json:"context_length,omitempty"`
	DModel        int     `yaml:"d_model" json:"d_model,omitempty"`
	NumLayers     int     `yaml:"num_layers" json:"num_layers,omitempty"`
	NumHeads      int     `yaml:"num_heads" json:"num_heads,omitempty"`
	DFF           int     `yaml:"d_ff" json:"d_ff,omitempty"`
	RopeTheta     float64 `yaml:"rope_theta" json:"rope_theta,omitempty"`
}

// Data says where the token shards are and in which order to read them.
type Data struct {
	Train string `yaml:"train" json:"train"` // glob of training shards
	Val   string `yaml:"val" json:"val"`     // glob of validation shards; empty: no evaluation
	Order string `yaml:"order" json:"order"` // "sequential" or "shuffled"
	// Format is the shard format: "llmc" (the default, with its header) or
	// "raw" (nanoGPT's headerless uint16 .bin).
	Format string `yaml:"format" json:"format,omitempty"`
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
	// StallTimeout: a member of the ring that completes no step for this
	// long (while its lease lives) is named in the status and dropped.
	StallTimeout Duration `yaml:"stall_timeout" json:"stall_timeout"`
}

// UnmarshalJSON decodes a job over the defaults, like Parse: a key that
// the JSON lacks (a job from an older coordinator, say) keeps its default.
func (j *Job) UnmarshalJSON(b []byte) error {
	type plain Job // without this method
	d := plain(Default())
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	*j = Job(d)
	return nil
}

// Default returns a job with every default filled in and no data.
func Default() Job {
	return Job{
		Name:  "job",
		Model: Model{Preset: "small"},
		Data:  Data{Order: "sequential", Format: "llmc"},
		Train: Train{
			GlobalBatch: 32, MicroBatch: 8, MaxSteps: 2000,
			LR: 1e-3, MinLR: 1e-4, Warmup: 100,
			Beta1: 0.9, Beta2: 0.95, Eps: 1e-8,
			WeightDecay: 0.1, GradClip: 1.0, Seed: 1337,
			Precision: "fp32", AllReduce: "fp32",
		},
		Eval:       Eval{Every: 200, Sequences: 64},
		Checkpoint: Checkpoint{Every: 100, Keep: 3},
		Workers:    Workers{Min: 1, Max: 8, StallTimeout: Duration(60 * time.Second)},
	}
}

// CheckpointDue reports whether a checkpoint is due after completed steps:
// every checkpoint.every steps, and after the last step.
func (j *Job) CheckpointDue(completed int) bool {
	if completed <= 0 {
		return false
	}
	every := j.Checkpoint.Every
	return completed == j.Train.MaxSteps || (every > 0 && completed%every == 0)
}

// EvalDue reports whether an evaluation is due after completed steps:
// every eval.every steps and after the last step, when there is
// validation data.
func (j *Job) EvalDue(completed int) bool {
	if j.Eval.Every <= 0 || j.Data.Val == "" || completed <= 0 {
		return false
	}
	return completed%j.Eval.Every == 0 || completed == j.Train.MaxSteps
}

// MaxFileBytes bounds the size of a job file.
const MaxFileBytes = 1 << 20

// Load reads a job file. Relative data and init paths are resolved against
// the current directory, as the user typed them.
func Load(path string) (*Job, error) {
	j, _, err := LoadText(path)
	return j, err
}

// LoadText is Load that also returns the file's text, which checkpoints
// keep beside the state they were taken with. Overrides "key=value" (see
// Set) are applied to the text first; the text returned has them.
func LoadText(path string, sets ...string) (*Job, string, error) {
	data, err := readlimit.File(path, MaxFileBytes)
	if err != nil {
		return nil, "", fmt.Errorf("job file: %w", err)
	}
	if data, err = Set(data, sets); err != nil {
		return nil, "", fmt.Errorf("job file %s: %w", path, err)
	}
	j, err := Parse(data, path)
	return j, string(data), err
}

// Parse decodes a job file's contents over the defaults and checks every
// value that does not depend on the world size. name is used in errors.
func Parse(data []byte, name string) (*Job, error) {
	j, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("job file %s: %w", name, err)
	}
	return j, nil
}

func parse(data []byte) (*Job, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	j := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errors.New(yamlMessage(err))
	}
	if doc.Kind != 0 { // an empty file means all defaults
		budget := maxNodes
		if err := checkKeys(doc.Content[0], reflect.TypeFor[Job](), "", &budget); err != nil {
			return nil, err
		}
		if err := doc.Content[0].Decode(&j); err != nil {
			return nil, errors.New(yamlMessage(err))
		}
	}
	if err := j.check(); err != nil {
		return nil, err
	}
	return &j, nil
}

// yamlMessage shortens the decoder's message ("yaml: line 3: did not find
// expected key") to one line.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(strings.TrimSpace(msg), "yaml: ")
	return strings.ReplaceAll(msg, "\n", "; ")
}

// TokenizerDir is the job's tokenizer directory: the tokenizer key, or
// else the directory "tokenizer" beside the training shards when it holds
// a tokenizer (ringtrain prepare writes one there); "" if neither.
func (j *Job) TokenizerDir() string {
	if j.Tokenizer != "" {
		return j.Tokenizer
	}
	if j.Data.Train == "" {
		return ""
	}
	if d := filepath.Join(filepath.Dir(j.Data.Train), "tokenizer"); tokenizer.IsDir(d) {
		return d
	}
	return ""
}

// Duration is a time.Duration written as a Go duration string ("60s",
// "2m30s") in job files and JSON.
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	return d.parse(s)
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText implements encoding.TextUnmarshaler (JSON strings).
func (d *Duration) UnmarshalText(b []byte) error { return d.parse(string(b)) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 60s or 2m)", s)
	}
	*d = Duration(v)
	return nil
}
