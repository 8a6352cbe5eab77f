package model

import (
	"fmt"
	"math"
	"sync"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// AdamWConfig holds the hyper-parameters of AdamW except the learning rate,
// which each Step takes (it follows the schedule LR).
type AdamWConfig struct {
	Beta1, Beta2, Eps, WeightDecay float64
}

// AdamW is torch.optim.AdamW (docs/model.md) over a flat parameter buffer,
// with weight decay only on the tensors whose ParamSpec.Decay is set
// (2-D parameters). M and V have the layout of the parameters.
type AdamW struct {
	AdamWConfig
	M, V   []float32 // first and second moments, same layout as the parameters
	layout []ParamSpec
}

// NewAdamW returns an optimizer with zero moments for the given layout.
func NewAdamW(layout []ParamSpec, cfg AdamWConfig) *AdamW {
	n := 0
	if len(layout) > 0 {
		last := layout[len(layout)-1]
		n = last.Offset + last.Size
	}
	return &AdamW{AdamWConfig: cfg, M: make([]float32, n), V: make([]float32, n), layout: layout}
}

// Layout is the parameter table the optimizer was made for.
func (o *AdamW) Layout() []ParamSpec { return o.layout }

// Step applies one update with learning rate lr; step counts from 0 (the
// bias corrections use step+1), exactly as torch:
//
//	p ← p·(1 − lr·wd)                      (decay tensors only)
//	m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1^(step+1)) · m / (sqrt(v)/sqrt(1−β2^(step+1)) + eps)
func (o *AdamW) Step(params, grads []float32, lr float64, step int) {
	o.StepRange(params, grads, 0, len(o.M), lr, step)
}

// StepRange is Step restricted to the flat index range [lo, hi) — for a
// worker that owns a slice of the optimizer state. params, grads, M and V
// are all indexed by the same flat offsets.
func (o *AdamW) StepRange(params, grads []float32, lo, hi int, lr float64, step int) {
	if len(params) != len(o.M) || len(grads) != len(o.M) {
		panic(fmt.Sprintf("model: AdamW over %d values got %d params and %d grads", len(o.M), len(params), len(grads)))
	}
	if lo < 0 || lo > hi || hi > len(o.M) {
		panic(fmt.Sprintf("model: AdamW range [%d, %d) outside [0, %d)", lo, hi, len(o.M)))
	}
	// one kernel call per run of adjacent tensors with the same decay
	runStart := -1
	for i, p := range o.layout {
		s, e := max(lo, p.Offset), min(hi, p.Offset+p.Size)
		if s >= e {
			continue
		}
		if runStart < 0 {
			runStart = s
		}
		if i+1 < len(o.layout) && o.layout[i+1].Offset < hi && o.layout[i+1].Decay == p.Decay {
			continue // the run goes on
		}
		wd := 0.0
		if p.Decay {
			wd = o.WeightDecay
		}
		kernels.AdamW(params[runStart:e], grads[runStart:e], o.M[runStart:e], o.V[runStart:e],
			lr, o.Beta1, o.Beta2, o.Eps, wd, step)
		runStart = -1
	}
}

// LR is the cosine schedule with linear warmup of docs/model.md (t = step,
// counting from 0): max_lr·t/warmup while t < warmup; then the cosine from
// max_lr down to min_lr until t = maxSteps; min_lr after.
func LR(step int, maxLR, minLR float64, warmup, maxSteps int) float64 {
	t := float64(step)
	switch {
	case step < warmup:
		return maxLR * t / float64(warmup)
	case step <= maxSteps:
		if maxSteps == warmup {
			return maxLR
		}
		r := (t - float64(warmup)) / float64(maxSteps-warmup)
		return minLR + 0.5*(1+math.Cos(math.Pi*r))*(maxLR-minLR)
	default:
		return minLR
	}
}

// SumSquares is Σ x² in float64 (the squared L2 norm of a gradient slice).
func SumSquares(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// ClipGradNorm returns the L2 norm n of grads before clipping and, if
// maxNorm > 0 and n > maxNorm, scales grads by maxNorm/(n + 1e-6)
// (torch.nn.utils.clip_grad_norm_). The squares are summed on the kernels'
// threads in chunks of normChunk values, whose sums are added in order: the
// same bits whatever the number of threads.
func ClipGradNorm(grads []float32, maxNorm float64) float64 {
	n := math.Sqrt(sumSquaresParallel(grads))
	if maxNorm > 0 && n > maxNorm {
		ScaleGrads(grads, float32(maxNorm/(n+1e-6)))
	}
	return n
}

// normChunk is the number of values of one partial sum of ClipGradNorm.
const normChunk = 1 << 16

type normArgs struct {
	x        []float32
	partials []float64
}

var (
	normJobs     rangeJobs[normArgs]
	normPartials = sync.Pool{New: func() any { return new([]float64) }}
)

// sumSquaresParallel is Σ x² in float64: chunk c (normChunk values) summed
// in order, then the chunks' sums in order.
func sumSquaresParallel(x []float32) float64 {
	chunks := (len(x) + normChunk - 1) / normChunk
	pp := normPartials.Get().(*[]float64)
	if cap(*pp) < chunks {
		*pp = make([]float64, chunks)
	}
	partials := (*pp)[:chunks]
	normJobs.run(chunks, normArgs{x: x, partials: partials}, normPart)
	var s float64
	for _, p := range partials {
		s += p
	}
	normPartials.Put(pp)
	return s
}

func normPart(a *normArgs, lo, hi int) {
	for c := lo; c < hi; c++ {
		a.partials[c] = SumSquares(a.x[c*normChunk : min(len(a.x), (c+1)*normChunk)])
	}
}

// ScaleGrads multiplies every gradient by s.
func ScaleGrads(grads []float32, s float32) {
	scaleJobs.run(len(grads), scaleArgs{x: grads, s: s}, scalePart)
}

type scaleArgs struct {
	x []float32
	s float32
}

var scaleJobs rangeJobs[scaleArgs]

func scalePart(a *scaleArgs, lo, hi int) {
	x := a.x[lo:hi]
	for i := range x {
		x[i] *= a.s
	}
}
