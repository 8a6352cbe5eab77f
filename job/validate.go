package job

import (
	"fmt"
	"math"
	"strings"
)

// check validates everything that does not depend on the world size. It
// only reads j: jobs are shared between goroutines.
func (j *Job) check() error {
	t := j.Train
	pos := func(key string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: must be > 0 (got %v)", key, v)
		}
		return nil
	}
	nonneg := func(key string, v float64) error {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: must be >= 0 (got %v)", key, v)
		}
		return nil
	}
	for _, err := range []error{
		pos("train.global_batch", float64(t.GlobalBatch)),
		pos("train.micro_batch", float64(t.MicroBatch)),
		pos("train.max_steps", float64(t.MaxSteps)),
		pos("train.lr", t.LR),
		nonneg("train.min_lr", t.MinLR),
		nonneg("train.warmup", float64(t.Warmup)),
		pos("train.eps", t.Eps),
		nonneg("train.weight_decay", t.WeightDecay),
		nonneg("train.grad_clip", t.GradClip),
		nonneg("eval.every", float64(j.Eval.Every)),
		nonneg("eval.sequences", float64(j.Eval.Sequences)),
		nonneg("checkpoint.every", float64(j.Checkpoint.Every)),
		pos("checkpoint.keep", float64(j.Checkpoint.Keep)),
		pos("workers.min", float64(j.Workers.Min)),
		pos("workers.max", float64(j.Workers.Max)),
		pos("workers.stall_timeout", float64(j.Workers.StallTimeout)),
		nonneg("model.vocab_size", float64(j.Model.VocabSize)),
		nonneg("model.context_length", float64(j.Model.ContextLength)),
		nonneg("model.d_model", float64(j.Model.DModel)),
		nonneg("model.num_layers", float64(j.Model.NumLayers)),
		nonneg("model.num_heads", float64(j.Model.NumHeads)),
		nonneg("model.d_ff", float64(j.Model.DFF)),
		nonneg("model.rope_theta", j.Model.RopeTheta),
	} {
		if err != nil {
			return err
		}
	}
	switch {
	case t.Beta1 < 0 || t.Beta1 >= 1:
		return fmt.Errorf("train.beta1: must be in [0, 1) (got %v)", t.Beta1)
	case t.Beta2 < 0 || t.Beta2 >= 1:
		return fmt.Errorf("train.beta2: must be in [0, 1) (got %v)", t.Beta2)
	case t.MinLR > t.LR:
		return fmt.Errorf("train.min_lr: %v is larger than train.lr %v", t.MinLR, t.LR)
	case t.Warmup > t.MaxSteps:
		return fmt.Errorf("train.warmup: %d is longer than train.max_steps %d", t.Warmup, t.MaxSteps)
	case j.Workers.Max > t.GlobalBatch:
		return fmt.Errorf("workers.max: %d is larger than train.global_batch %d (every worker needs at least one sequence per step)", j.Workers.Max, t.GlobalBatch)
	case j.Workers.Min > j.Workers.Max:
		return fmt.Errorf("workers.min: %d is larger than workers.max %d", j.Workers.Min, j.Workers.Max)
	case t.Precision != "fp32" && t.Precision != "bf16":
		return fmt.Errorf("train.precision: %q is neither fp32 nor bf16", t.Precision)
	case t.AllReduce != "fp32" && t.AllReduce != "bf16":
		return fmt.Errorf("train.allreduce: %q is neither fp32 nor bf16", t.AllReduce)
	case j.Data.Train == "":
		return fmt.Errorf("data.train: missing (a glob of token shards, e.g. data/train_*.bin)")
	case j.Data.Order != "sequential" && j.Data.Order != "shuffled":
		return fmt.Errorf("data.order: %q is neither sequential nor shuffled", j.Data.Order)
	case j.Data.Format != "" && j.Data.Format != "llmc" && j.Data.Format != "raw":
		return fmt.Errorf("data.format: %q is neither llmc (shards with the llm.c header) nor raw (nanoGPT's headerless uint16 .bin)", j.Data.Format)
	case j.Eval.Every > 0 && j.Data.Val == "":
		return fmt.Errorf("eval.every: %d but data.val is empty (set data.val or eval.every: 0)", j.Eval.Every)
	}
	return nil
}

// Validate checks what depends on the world size W: workers.min ≤ W ≤
// workers.max (which is at most the global batch). The global batch need
// not divide by W: ranks take slices that differ by at most one sequence
// (see docs/data.md).
func (j *Job) Validate(world int) error {
	if err := j.check(); err != nil {
		return err
	}
	if world < j.Workers.Min || world > j.Workers.Max {
		return fmt.Errorf("workers: world size %d is outside [workers.min %d, workers.max %d]", world, j.Workers.Min, j.Workers.Max)
	}
	return nil
}

// Split is how one step's global batch G divides over W workers: rank r
// trains ⌊(r+1)·G/W⌋ − ⌊r·G/W⌋ sequences (MinBatch or MaxBatch), in
// micro-batches of at most train.micro_batch; Micro is their number on
// the largest slice, the gradient accumulation steps.
type Split struct {
	World, MinBatch, MaxBatch, Micro int
}

// Split reports how the global batch divides over world workers (world ≥ 1).
func (j *Job) Split(world int) Split {
	g, mb := j.Train.GlobalBatch, j.Train.MicroBatch
	s := Split{World: world, MinBatch: g}
	for r := range world {
		n := (r+1)*g/world - r*g/world
		s.MinBatch, s.MaxBatch = min(s.MinBatch, n), max(s.MaxBatch, n)
	}
	s.Micro = (s.MaxBatch + mb - 1) / mb
	return s
}

// StepsOverrides returns the overrides (see Set) that run j for n
// optimizer steps instead of train.max_steps, as ringtrain local --steps
// does: train.max_steps=n and, unless sets give train.warmup, the warmup
// scaled to keep its share of the run (rounded down).
func (j *Job) StepsOverrides(n int, sets []string) []string {
	out := []string{fmt.Sprintf("train.max_steps=%d", n)}
	for _, s := range sets {
		if strings.HasPrefix(s, "train.warmup=") {
			return out
		}
	}
	w := int(int64(j.Train.Warmup) * int64(n) / int64(j.Train.MaxSteps))
	return append(out, fmt.Sprintf("train.warmup=%d", w))
}
