package trainer

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/ringtrain/ringtrain/allreduce"
	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/model/kernels"
	"github.com/ringtrain/ringtrain/shard"
)

// Reducer sums buffers element-wise over every rank, in place; every rank
// gets bit-identical results. *allreduce.Ring implements it, and so does
// Local for a single process.
type Reducer interface {
	AllReduceOp(ctx context.Context, buf []float32, op allreduce.Op) error
	AllReduceFloat64(ctx context.Context, buf []float64, op allreduce.Op) error
}

// BucketReducer is a Reducer that can also reduce buffers in the
// background, in the order they are started (*allreduce.Ring). With one,
// TrainStep reduces gradient buckets while the last micro-batch's backward
// pass still computes earlier layers.
type BucketReducer interface {
	Reducer
	StartOp(ctx context.Context, bucket int, buf []float32, op allreduce.Op) *allreduce.Handle
}

var (
	_ BucketReducer = (*allreduce.Ring)(nil)
	_ Reducer       = Local{}
)

// Local is the Reducer of a single process: the sum over one rank is the
// buffer itself.
type Local struct{}

// AllReduceOp does nothing.
func (Local) AllReduceOp(context.Context, []float32, allreduce.Op) error { return nil }

// AllReduceFloat64 does nothing.
func (Local) AllReduceFloat64(context.Context, []float64, allreduce.Op) error { return nil }

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

// Trainer is the training state of one rank: weights, AdamW moments and
// the number of steps completed, plus this rank's slice of the data. The
// same Trainer serves every generation a worker takes part in (SetWorld
// moves it to another rank and world size without reallocating), so that
// re-forming the ring costs no memory.
type Trainer struct {
	job         *job.Job
	rank, world int
	cfg         model.Config

	Model *model.Model
	Opt   *model.AdamW

	train, val *shard.Dataset
	sampler    *shard.Sampler
	completed  int64 // steps completed: the next step to run
	lineage    int64 // opaque tag of who produced the state (see Lineage)

	x, y  []int32
	ctl   [2]float64   // the step's loss share and vote count, reduced after the gradients
	phase atomic.Int32 // what TrainStep does now (Phase)

	buckets []allreduce.Bucket // in the order backward completes them; nil: no overlap
	waits   []*allreduce.Handle
	// the step in flight, for gradsReady (bound once: no allocation per step)
	stepCtx    context.Context
	stepRed    BucketReducer
	gradsReady func(off int)
}

// Result is what one optimizer step did.
type Result struct {
	Completed int64   // steps completed after this one (the step's index is Completed−1)
	Loss      float64 // global mean loss before the update
	LR        float64
	GradNorm  float64 // before clipping
	Tokens    int64   // tokens of the global batch
	// Votes is the number of ranks that voted in this step (TrainStep's
	// vote): a collective decision every rank sees alike.
	Votes int
	// Duration is the whole step; the phases split it: forward and
	// backward compute, the wait for the reduction after backward, and the
	// clip and AdamW update.
	Duration, Forward, Backward, ReduceWait, Optimizer time.Duration
}

// New builds the model (from the seed, or the job's init file), the
// optimizer, and opens the data, for rank of world.
func New(o Options) (*Trainer, error) {
	j := o.Job
	cfg, err := ModelConfig(j.Model)
	if err != nil {
		return nil, err
	}
	open := o.Data
	if open == nil {
		format, err := shard.ParseFormat(j.Data.Format)
		if err != nil {
			return nil, fmt.Errorf("data.format: %w", err)
		}
		open = func(p string, v, t int) (*shard.Dataset, error) {
			return shard.OpenGlob(p, v, t, shard.WithFormat(format))
		}
	}
	mb, T := j.Train.MicroBatch, cfg.ContextLength
	m, err := model.New(cfg, mb, T)
	if err != nil {
		return nil, err
	}
	if m.Precision, err = kernels.ParsePrecision(j.Train.Precision); err != nil {
		return nil, fmt.Errorf("train.precision: %w", err)
	}
	t := &Trainer{
		job: j, cfg: cfg, Model: m,
		Opt: model.NewAdamW(m.Layout(), model.AdamWConfig{
			Beta1: j.Train.Beta1, Beta2: j.Train.Beta2, Eps: j.Train.Eps, WeightDecay: j.Train.WeightDecay,
		}),
		x: make([]int32, mb*T), y: make([]int32, mb*T),
	}
	if err := t.SetWorld(o.Rank, o.World); err != nil {
		return nil, err
	}
	if err := t.Reset(); err != nil {
		return nil, err
	}
	if o.BucketBytes > 0 {
		sizes := make([]int, len(m.Layout()))
		for i, p := range m.Layout() {
			sizes[i] = p.Size
		}
		t.buckets = allreduce.PlanBuckets(sizes, o.BucketBytes)
		t.waits = make([]*allreduce.Handle, 0, len(t.buckets))
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

// Reset puts the trainer back to the start of training: weights from the
// seed (or the job's init file), zero moments, no step completed, lineage 0.
func (t *Trainer) Reset() error {
	if t.job.Init != "" {
		if err := LoadInto(t.job.Init, t.cfg, t.Model.Params); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	} else {
		t.Model.Init(t.job.Train.Seed)
	}
	clear(t.Opt.M)
	clear(t.Opt.V)
	t.completed, t.lineage = 0, 0
	return nil
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

// SetWorld makes this trainer rank of world for the steps that follow:
// only the slice of each global batch it reads changes.
func (t *Trainer) SetWorld(rank, world int) error {
	if _, _, err := shard.RankRange(0, t.job.Train.GlobalBatch, rank, world); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	t.rank, t.world = rank, world
	return nil
}

// Config is the model's shape.
func (t *Trainer) Config() model.Config { return t.cfg }

// Completed is the number of steps completed so far: the next step to run.
func (t *Trainer) Completed() int64 { return t.completed }

// Lineage is an opaque tag of the state's origin that the caller keeps
// with it (the worker: the generation whose ring computed the newest
// step); it travels with checkpoints and state transfers.
func (t *Trainer) Lineage() int64 { return t.lineage }

// SetLineage sets the tag Lineage returns.
func (t *Trainer) SetLineage(l int64) { t.lineage = l }

// DataPosition is the number of training sequences consumed so far.
func (t *Trainer) DataPosition() int64 {
	return shard.StepPosition(t.completed, t.job.Train.GlobalBatch)
}

// TrainStep runs one optimizer step: this rank's micro-batches forward and
// backward, the sum over the ranks of the gradients (each micro-batch's
// scaled by its share of the global batch, so the sum is the gradient of
// the global mean loss whatever the slices) and of the loss, clipping and
// AdamW. vote (nil: no) is this rank's say in a collective decision that
// the caller takes after the step: Result.Votes counts the ranks whose vote
// returned true, alike on every rank; it travels with the loss at no extra
// cost, and is asked once the gradients are reduced, as late as the step
// allows (a request that arrives during the step still ends it). Every rank must
// call TrainStep for the same step. If the reduction fails, the weights,
// moments and step are unchanged.
func (t *Trainer) TrainStep(ctx context.Context, r Reducer, vote func() bool) (Result, error) {
	start := time.Now()
	tr := t.job.Train
	G, mb, T := tr.GlobalBatch, tr.MicroBatch, t.cfg.ContextLength
	nMicro, err := shard.NumMicro(G, t.rank, t.world, mb)
	if err != nil {
		return Result{}, err
	}
	m := t.Model
	m.ZeroGrad()
	br, overlap := r.(BucketReducer)
	overlap = overlap && t.buckets != nil
	var loss float64
	var res Result
	t.phase.Store(int32(PhaseCompute))
	defer t.phase.Store(int32(PhaseIdle))
	for i := range nMicro {
		f0 := time.Now()
		n, err := t.sampler.FillMicro(t.x, t.y, t.completed, G, t.rank, t.world, i, mb)
		if err != nil {
			return Result{}, err
		}
		share := float64(n) / float64(G)
		loss += m.Forward(t.x, t.y, n, T) * share
		b0 := time.Now()
		res.Forward += b0.Sub(f0)
		if overlap && i == nMicro-1 {
			t.stepCtx, t.stepRed, m.GradsReady = ctx, br, t.gradsReady
		}
		m.Backward(float32(share))
		t.stepCtx, t.stepRed, m.GradsReady = nil, nil, nil
		res.Backward += time.Since(b0)
	}
	w0 := time.Now()
	t.phase.Store(int32(PhaseReduce))
	if err := t.reduceGrads(ctx, r, overlap); err != nil {
		return Result{}, fmt.Errorf("all-reduce gradients: %w", err)
	}
	t.ctl[0], t.ctl[1] = loss, 0
	if vote != nil && vote() {
		t.ctl[1] = 1
	}
	if err := r.AllReduceFloat64(ctx, t.ctl[:], allreduce.Sum); err != nil {
		return Result{}, fmt.Errorf("all-reduce loss: %w", err)
	}
	o0 := time.Now()
	res.ReduceWait = o0.Sub(w0)
	t.phase.Store(int32(PhaseOptimizer))
	norm := model.ClipGradNorm(m.Grads, tr.GradClip)
	lr := model.LR(int(t.completed), tr.LR, tr.MinLR, tr.Warmup, tr.MaxSteps)
	t.Opt.Step(m.Params, m.Grads, lr, int(t.completed))
	t.completed++
	res.Optimizer = time.Since(o0)
	res.Completed, res.Loss, res.LR, res.GradNorm = t.completed, t.ctl[0], lr, norm
	res.Tokens, res.Votes, res.Duration = int64(G)*int64(T), int(t.ctl[1]+0.5), time.Since(start)
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
		return res, fmt.Errorf("loss is %v", res.Loss)
	}
	return res, nil
}

// Phase is what a training step is doing.
type Phase int32

// Phases of TrainStep.
const (
	PhaseIdle      Phase = iota // between steps
	PhaseCompute                // forward and backward
	PhaseReduce                 // waiting for the sum of the gradients over the ranks
	PhaseOptimizer              // clipping and AdamW
)

func (p Phase) String() string {
	return [...]string{"idle", "compute", "allreduce", "optimizer"}[p]
}

// Phase returns what the step in progress is doing; safe to call from any
// goroutine.
func (t *Trainer) Phase() Phase { return Phase(t.phase.Load()) }

// startBuckets starts reducing, in plan order, every bucket that lies
// inside the completed suffix Grads[off:].
func (t *Trainer) startBuckets(off int) {
	for len(t.waits) < len(t.buckets) {
		b := t.buckets[len(t.waits)]
		if b.Off < off {
			return
		}
		t.waits = append(t.waits, t.stepRed.StartOp(t.stepCtx, b.ID, t.Model.Grads[b.Off:b.Off+b.Len], allreduce.Sum))
	}
}

// reduceGrads sums the gradients over the ranks: by waiting for the
// buckets started during backward, or in one all-reduce.
func (t *Trainer) reduceGrads(ctx context.Context, r Reducer, overlap bool) error {
	if !overlap {
		return r.AllReduceOp(ctx, t.Model.Grads, allreduce.Sum)
	}
	defer func() { t.waits = t.waits[:0] }()
	if len(t.waits) != len(t.buckets) {
		return fmt.Errorf("backward started %d of %d gradient buckets", len(t.waits), len(t.buckets))
	}
	var first error
	for _, h := range t.waits {
		if err := h.Wait(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Eval returns the mean loss over the first eval.sequences validation
// sequences (all of them if that is 0 or more than there are), each rank
// computing a contiguous share and r summing them.
func (t *Trainer) Eval(ctx context.Context, r Reducer) (float64, error) {
	if t.val == nil {
		return 0, fmt.Errorf("eval: no validation data (data.val)")
	}
	n := t.val.NumSequences()
	if s := t.job.Eval.Sequences; s > 0 && s < n {
		n = s
	}
	lo, hi := t.rank*n/t.world, (t.rank+1)*n/t.world
	buf := []float64{SumLoss(t.Model, t.val, lo, hi, nil) / float64(n)}
	if err := r.AllReduceFloat64(ctx, buf, allreduce.Sum); err != nil {
		return 0, fmt.Errorf("eval: all-reduce: %w", err)
	}
	return buf[0], nil
}
