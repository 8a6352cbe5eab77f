package model

import (
	"fmt"
	"math"
)

// AdamWConfig holds the hyper-parameters of AdamW except the learning rate,
// which each Step takes (it follows the schedule LR).
type AdamWConfig struct {
	Beta1, Beta2, Eps, WeightDecay float64
}

// AdamW is torch.optim.AdamW (SPEC section 3) over a flat parameter buffer,
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
	bc1 := 1 - math.Pow(o.Beta1, float64(step+1))
	bc2 := 1 - math.Pow(o.Beta2, float64(step+1))
	k := adamConsts{
		b1: float32(o.Beta1), ob1: float32(1 - o.Beta1),
		b2: float32(o.Beta2), ob2: float32(1 - o.Beta2),
		stepSize: float32(lr / bc1), bc2sqrt: float32(math.Sqrt(bc2)), eps: float32(o.Eps),
	}
	adamJobs.run(hi-lo, adamArgs{o: o, params: params, grads: grads, lo: lo,
		wd: float32(1 - lr*o.WeightDecay), k: k}, adamPart)
}

type adamArgs struct {
	o             *AdamW
	params, grads []float32
	lo            int
	wd            float32
	k             adamConsts
}

var adamJobs jobPool[adamArgs]

// adamPart updates flat indices [a.lo+a0, a.lo+a1), tensor by tensor.
func adamPart(a *adamArgs, a0, a1 int) {
	a0, a1 = a.lo+a0, a.lo+a1
	o := a.o
	for _, p := range o.layout {
		s, e := max(a0, p.Offset), min(a1, p.Offset+p.Size)
		if s >= e {
			continue
		}
		decay := float32(1)
		if p.Decay {
			decay = a.wd
		}
		adamUpdate(a.params[s:e], a.grads[s:e], o.M[s:e], o.V[s:e], decay, a.k)
	}
}

type adamConsts struct {
	b1, ob1, b2, ob2, stepSize, bc2sqrt, eps float32
}

func adamUpdate(p, g, m, v []float32, decay float32, k adamConsts) {
	for i := range p {
		gi := g[i]
		mi := k.b1*m[i] + k.ob1*gi
		vi := k.b2*v[i] + k.ob2*gi*gi
		m[i], v[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/k.bc2sqrt + k.eps
		p[i] = p[i]*decay - k.stepSize*(mi/denom)
	}
}

// LR is the cosine schedule with linear warmup of SPEC section 3 (t = step,
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
// (torch.nn.utils.clip_grad_norm_).
func ClipGradNorm(grads []float32, maxNorm float64) float64 {
	n := math.Sqrt(SumSquares(grads))
	if maxNorm > 0 && n > maxNorm {
		ScaleGrads(grads, float32(maxNorm/(n+1e-6)))
	}
	return n
}

// ScaleGrads multiplies every gradient by s.
func ScaleGrads(grads []float32, s float32) {
	scaleJobs.run(len(grads), scaleArgs{x: grads, s: s}, scalePart)
}

type scaleArgs struct {
	x []float32
	s float32
}

var scaleJobs jobPool[scaleArgs]

func scalePart(a *scaleArgs, lo, hi int) {
	x := a.x[lo:hi]
	for i := range x {
		x[i] *= a.s
	}
}
