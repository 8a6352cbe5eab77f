package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/trainer"
)

// toyTrainer fits p to targets x_i, one per global sequence i, with loss
// ½‖p − x_i‖² averaged over the global batch and plain SGD. Its data
// layout is the spec's sequential one, so losses must not depend on the
// world size beyond float rounding.
type toyTrainer struct {
	cfg  TrainerConfig
	p    []float32
	step int
	hook func(step int) error // called before each step
}

const toyDim = 16

func toyTarget(i, k int) float32 {
	h := uint64(i)*0x9E3779B97F4A7C15 + uint64(k)*0xBF58476D1CE4E5B9 + 1
	h ^= h >> 31
	h *= 0x94D049BB133111EB
	h ^= h >> 29
	return float32(h%2000)/1000 - 1
}

func newToyTrainer(hook func(step int) error) NewTrainer {
	return func(ctx context.Context, cfg TrainerConfig) (Trainer, error) {
		t := &toyTrainer{cfg: cfg, p: make([]float32, toyDim), step: cfg.StartStep, hook: hook}
		if cfg.Resume != "" {
			b, err := os.ReadFile(filepath.Join(cfg.Resume, "toy.json"))
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(b, &t.p); err != nil {
				return nil, err
			}
			st, err := trainer.ReadState(cfg.Resume)
			if err != nil {
				return nil, err
			}
			if int(st.Step) != cfg.StartStep {
				return nil, fmt.Errorf("checkpoint step %d, generation starts at %d", st.Step, cfg.StartStep)
			}
		}
		return t, nil
	}
}

func (t *toyTrainer) Step(ctx context.Context, r Reducer) (StepResult, error) {
	if t.hook != nil {
		if err := t.hook(t.step); err != nil {
			return StepResult{}, err
		}
	}
	start := time.Now()
	g := t.cfg.Job.Train.GlobalBatch
	lo, hi := t.cfg.Rank*g/t.cfg.World, (t.cfg.Rank+1)*g/t.cfg.World
	buf := make([]float32, toyDim+1) // gradient, then loss
	for i := t.step*g + lo; i < t.step*g+hi; i++ {
		for k := range toyDim {
			d := t.p[k] - toyTarget(i, k)
			buf[k] += d / float32(hi-lo)
			buf[toyDim] += 0.5 * d * d / float32(hi-lo)
		}
	}
	if err := r.AllReduceOp(ctx, buf, allreduce.Mean); err != nil {
		return StepResult{}, err
	}
	var norm float64
	lr := float32(t.cfg.Job.Train.LR)
	for k := range toyDim {
		norm += float64(buf[k]) * float64(buf[k])
		t.p[k] -= lr * buf[k]
	}
	t.step++
	return StepResult{Step: t.step, Loss: float64(buf[toyDim]), LR: float64(lr), GradNorm: math.Sqrt(norm),
		Tokens: int64(g), Duration: time.Since(start)}, nil
}

func (t *toyTrainer) Eval(ctx context.Context, r Reducer) (float64, error) {
	buf := []float32{float32(t.p[0])}
	if err := r.AllReduceOp(ctx, buf, allreduce.Mean); err != nil {
		return 0, err
	}
	return float64(buf[0]), nil
}

func (t *toyTrainer) SaveCheckpoint(dir string, part int) error {
	if part != 0 {
		return nil
	}
	if err := checkpoint.WriteFile(dir, "toy.json", func(w io.Writer) error { return json.NewEncoder(w).Encode(t.p) }); err != nil {
		return err
	}
	return trainer.WriteState(trainer.DirWriter(dir), trainer.State{Step: int64(t.step), WorldSize: t.cfg.World})
}

func (t *toyTrainer) Close() error { return nil }
