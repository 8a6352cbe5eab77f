package trainer

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/checkpoint"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/shard"
)

// Reducer averages buf element-wise over every rank, in place; every rank
// gets bit-identical results.
type Reducer interface {
	AllReduce(ctx context.Context, buf []float32) error
}

// BucketReducer is a Reducer that can also average buffers in the
// background, in the order they are started (allreduce.Ring via the
// worker). With one, TrainStep reduces gradient buckets while the last
// micro-batch's backward pass still computes earlier layers.
type BucketReducer interface {
	Reducer
	// Start begins averaging buf; wait blocks until buf holds the result.
	Start(ctx context.Context, bucket int, buf []float32) (wait func() error)
}

// Local is the Reducer of a single process: the average over one rank is
// the buffer itself.
type Local struct{}

// AllReduce does nothing.
func (Local) AllReduce(context.Context, []float32) error { return nil }

// Options say which job and which rank a Trainer runs.
type Options struct {
	Job         *job.Job
	Rank, World int
	// BucketBytes is the size of the gradient buckets reduced while
	// backward runs, when the reducer is a BucketReducer (PyTorch DDP's
	// bucket_cap_mb); 0 reduces all gradients in one piece after backward.
	BucketBytes int
	// Data opens shards; nil means shard.OpenGlob. Tests may substitute it.
	Data func(pattern string, vocabSize, T int) (*shard.Dataset, error)
}

// Trainer is the training state of one rank.
type Trainer struct {
	job         *job.Job
	rank, world int
	cfg         model.Config

	Model *model.Model
	Opt   *model.AdamW

	train, val *shard.Dataset
	sampler    *shard.Sampler
	step       int64 // the next step to run

	x, y    []int32
	scalars [1]float32 // the loss, reduced beside the gradients

	buckets []allreduce.Bucket // in the order backward completes them; nil: no overlap
	waits   []func() error     // of the buckets started in this step
	// the step in flight, for gradsReady (bound once: no allocation per step)
	stepCtx    context.Context
	stepRed    BucketReducer
	gradsReady func(off int)
}

// Result is what one optimizer step did.
type Result struct {
	Step     int64   // the step just taken (counts from 0)
	Loss     float64 // global mean loss before the update
	LR       float64
	GradNorm float64 // before clipping
	Tokens   int64   // tokens of the global batch
	Duration time.Duration
}

// New builds the model (from the seed, or the job's init file), the
// optimizer, and opens this rank's data.
func New(o Options) (*Trainer, error) {
	j := o.Job
	if err := j.Validate(o.World); err != nil {
		return nil, err
	}
	if o.Rank < 0 || o.Rank >= o.World {
		return nil, fmt.Errorf("rank %d outside world of %d", o.Rank, o.World)
	}
	open := o.Data
	if open == nil {
		open = func(p string, v, t int) (*shard.Dataset, error) {
			return shard.OpenGlob(p, v, t, shard.WithFormat(j.Data.ShardFormat()))
		}
	}
	cfg := j.Model.Config
	mb, T := j.Train.MicroBatch, cfg.ContextLength
	m, err := model.New(cfg, mb, T)
	if err != nil {
		return nil, err
	}
	if j.Init != "" {
		if err := checkpoint.LoadInto(j.Init, cfg, m.Params); err != nil { // a model file, checkpoint, run or Hugging Face dir
			return nil, fmt.Errorf("init: %w", err)
		}
	} else {
		m.Init(j.Train.Seed)
	}
	t := &Trainer{
		job: j, rank: o.Rank, world: o.World, cfg: cfg, Model: m,
		Opt: model.NewAdamW(m.Layout(), model.AdamWConfig{
			Beta1: j.Train.Beta1, Beta2: j.Train.Beta2, Eps: j.Train.Eps, WeightDecay: j.Train.WeightDecay,
		}),
		x: make([]int32, mb*T), y: make([]int32, mb*T),
	}
	if o.BucketBytes > 0 {
		sizes := make([]int, len(m.Layout()))
		for i, p := range m.Layout() {
			sizes[i] = p.Size
		}
		t.buckets = allreduce.PlanBuckets(sizes, o.BucketBytes)
		t.waits = make([]func() error, 0, len(t.buckets))
		t.gradsReady = t.startBuckets
	}
	if t.train, err = open(j.Data.Train, cfg.VocabSize, T); err != nil {
		return nil, fmt.Errorf("data.train: %w", err)
	}
	order, err := shard.ParseOrder(j.Data.Order)
	if err == nil {
		t.sampler, err = shard.NewSampler(t.train, order, j.Train.Seed)
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("data.order: %w", err)
	}
	if j.Data.Val != "" {
		if t.val, err = open(j.Data.Val, cfg.VocabSize, T); err != nil {
			t.Close()
			return nil, fmt.Errorf("data.val: %w", err)
		}
	}
	return t, nil
}

// Close releases the mapped shards.
func (t *Trainer) Close() error {
	var err error
	for _, ds := range []*shard.Dataset{t.train, t.val} {
		if ds != nil {
			if e := ds.Close(); e != nil && err == nil {
				err = e
			}
		}
	}
	t.train, t.val = nil, nil
	return err
}

// Step is the next step to run: the number of steps taken so far.
func (t *Trainer) Step() int64 { return t.step }

// DataPosition is the number of training sequences consumed so far.
func (t *Trainer) DataPosition() int64 { return shard.StepPosition(t.step, t.job.Train.GlobalBatch) }

// TrainStep runs one optimizer step: this rank's micro-batches forward and
// backward, the all-reduce of gradients and loss through r, clipping and
// AdamW. Every rank must call it with the same step.
func (t *Trainer) TrainStep(ctx context.Context, r Reducer) (Result, error) {
	start := time.Now()
	tr := t.job.Train
	G, mb, T := tr.GlobalBatch, tr.MicroBatch, t.cfg.ContextLength
	nMicro, err := shard.NumMicro(G, t.world, mb)
	if err != nil {
		return Result{}, err
	}
	m := t.Model
	m.ZeroGrad()
	// Each rank computes the gradient of the mean loss of its own G/W
	// sequences; averaging over the W ranks gives the global mean.
	scale := float32(1) / float32(nMicro)
	br, overlap := r.(BucketReducer)
	overlap = overlap && t.buckets != nil
	var loss float64
	for i := range nMicro {
		n, err := t.sampler.FillMicro(t.x, t.y, t.step, G, t.rank, t.world, i, mb)
		if err != nil {
			return Result{}, err
		}
		loss += m.Forward(t.x, t.y, n, T)
		if overlap && i == nMicro-1 {
			t.stepCtx, t.stepRed, m.GradsReady = ctx, br, t.gradsReady
		}
		m.Backward(scale)
		t.stepCtx, t.stepRed, m.GradsReady = nil, nil, nil
	}
	t.scalars[0] = float32(loss / float64(nMicro))
	if err := t.reduceGrads(ctx, r, overlap); err != nil {
		return Result{}, fmt.Errorf("step %d: all-reduce gradients: %w", t.step, err)
	}
	if err := r.AllReduce(ctx, t.scalars[:]); err != nil {
		return Result{}, fmt.Errorf("step %d: all-reduce loss: %w", t.step, err)
	}
	norm := model.ClipGradNorm(m.Grads, tr.GradClip)
	lr := model.LR(int(t.step), tr.LR, tr.MinLR, tr.Warmup, tr.MaxSteps)
	t.Opt.Step(m.Params, m.Grads, lr, int(t.step))
	res := Result{
		Step: t.step, Loss: float64(t.scalars[0]), LR: lr, GradNorm: norm,
		Tokens: int64(G) * int64(T), Duration: time.Since(start),
	}
	t.step++
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
		return res, fmt.Errorf("step %d: loss is %v", res.Step, res.Loss)
	}
	return res, nil
}

// startBuckets starts reducing, in plan order, every bucket that lies
// inside the completed suffix Grads[off:].
func (t *Trainer) startBuckets(off int) {
	for len(t.waits) < len(t.buckets) {
		b := t.buckets[len(t.waits)]
		if b.Off < off {
			return
		}
		t.waits = append(t.waits, t.stepRed.Start(t.stepCtx, b.ID, t.Model.Grads[b.Off:b.Off+b.Len]))
	}
}

// reduceGrads averages the gradients over the ranks: by waiting for the
// buckets started during backward, or in one all-reduce.
func (t *Trainer) reduceGrads(ctx context.Context, r Reducer, overlap bool) error {
	if !overlap {
		return r.AllReduce(ctx, t.Model.Grads)
	}
	defer func() { t.waits = t.waits[:0] }()
	if len(t.waits) != len(t.buckets) {
		return fmt.Errorf("backward started %d of %d gradient buckets", len(t.waits), len(t.buckets))
	}
	var first error
	for _, wait := range t.waits {
		if err := wait(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Eval returns the mean loss over the first eval.sequences validation
// sequences (all of them if that is 0 or more than there are), each rank
// computing a contiguous share and r combining them.
func (t *Trainer) Eval(ctx context.Context, r Reducer) (float64, error) {
	if t.val == nil {
		return 0, fmt.Errorf("eval: no validation data (data.val)")
	}
	n := t.val.NumSequences()
	if s := t.job.Eval.Sequences; s > 0 && s < n {
		n = s
	}
	lo, hi := t.rank*n/t.world, (t.rank+1)*n/t.world
	mb, T := t.job.Train.MicroBatch, t.cfg.ContextLength
	var sum float64
	for i := lo; i < hi; i += mb {
		b := min(mb, hi-i)
		for k := range b {
			t.val.Sequence(i+k, t.x[k*T:(k+1)*T], t.y[k*T:(k+1)*T])
		}
		sum += t.Model.Forward(t.x, t.y, b, T) * float64(b)
	}
	// The average over ranks of (sum_r · W/n) is the mean over all n.
	buf := []float32{float32(sum * float64(t.world) / float64(n))}
	if err := r.AllReduce(ctx, buf); err != nil {
		return 0, fmt.Errorf("eval: all-reduce: %w", err)
	}
	return float64(buf[0]), nil
}

// Restore loads a committed checkpoint directory: weights, AdamW moments,
// and the step (hence the data position) to continue from.
func (t *Trainer) Restore(dir string) error {
	st, err := checkpoint.ReadState(dir)
	if err != nil {
		return err
	}
	if st.Model != t.cfg {
		return fmt.Errorf("checkpoint %s: model %+v differs from the job's %+v", dir, st.Model, t.cfg)
	}
	if want := shard.StepPosition(st.Step, t.job.Train.GlobalBatch); st.DataPosition != want {
		return fmt.Errorf("checkpoint %s: data_position %d is not step %d × global_batch %d; the global batch changed",
			dir, st.DataPosition, st.Step, t.job.Train.GlobalBatch)
	}
	if err := model.LoadInto(filepath.Join(dir, checkpoint.ModelFile), t.cfg, t.Model.Params); err != nil {
		return err
	}
	if err := checkpoint.ReadOptimizer(dir, t.Opt.Layout(), t.Opt.M, t.Opt.V); err != nil {
		return err
	}
	t.step = st.Step
	return nil
}

// SaveCheckpoint writes this trainer's whole state (weights, moments,
// state.json) into dir, durably, without the commit marker. jobText is the
// job file as given, kept in state.json.
func (t *Trainer) SaveCheckpoint(dir, jobText string, loss float64) error {
	if err := checkpoint.WriteModel(dir, t.cfg, t.Model.Params); err != nil {
		return err
	}
	if err := checkpoint.WriteOptimizer(dir, checkpoint.OptimizerFile, t.Opt.Layout(), t.Opt.M, t.Opt.V); err != nil {
		return err
	}
	return checkpoint.WriteState(dir, checkpoint.State{
		Step: t.step, DataPosition: t.DataPosition(), Seed: int64(t.job.Train.Seed),
		WorldSize: t.world, Model: t.cfg, Loss: loss, Job: jobText, Time: time.Now().UTC(),
	})
}
