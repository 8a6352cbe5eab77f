package kernels

import "math"

// AdamW applies one torch.optim.AdamW step to p, with gradient g and moments
// m, v; step counts from 0 (the bias corrections use step+1):
//
//	p ← p·(1 − lr·wd)
//	m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1^(step+1)) · m / (sqrt(v)/sqrt(1−β2^(step+1)) + eps)
//
// Pass weightDecay 0 for tensors without decay.
//
//	p, g, m, v (n)
func AdamW(p, g, m, v []float32, lr, beta1, beta2, eps, weightDecay float64, step int) {
	n := len(p)
	checkLen("AdamW", n, g, m, v)
	bc1 := 1 - math.Pow(beta1, float64(step+1))
	bc2 := 1 - math.Pow(beta2, float64(step+1))
	a := adamArgs{p: p, g: g, m: m, v: v,
		b1: float32(beta1), ob1: float32(1 - beta1), b2: float32(beta2), ob2: float32(1 - beta2),
		stepSize: float32(lr / bc1), invBc2sqrt: float32(1 / math.Sqrt(bc2)), eps: float32(eps),
		decay: float32(1 - lr*weightDecay)}
	run(adamJobs, a, partsFor(n/1024+1, float64(n)), adamPart)
}

type adamArgs struct {
	p, g, m, v                                         []float32
	b1, ob1, b2, ob2, stepSize, invBc2sqrt, eps, decay float32
}

var adamJobs = newFreeList[job[adamArgs]](8)

func adamPart(a *adamArgs, i, n int) {
	lo, hi := splitRange(len(a.p), 1024, i, n)
	p := a.p[lo:hi]
	g, m, v := a.g[lo:hi], a.m[lo:hi], a.v[lo:hi]
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	k := [8]float32{a.b1, a.ob1, a.b2, a.ob2, a.stepSize, a.invBc2sqrt, a.eps, a.decay}
	if rest := adamwRow(p, g, m, v, &k); rest < len(p) {
		start := len(p) - rest
		p, g, m, v = p[start:], g[start:], m[start:], v[start:]
	}
	for j, gj := range g {
		mj := a.b1*m[j] + a.ob1*gj
		vj := a.b2*v[j] + a.ob2*gj*gj
		m[j], v[j] = mj, vj
		denom := float32(math.Sqrt(float64(vj)))*a.invBc2sqrt + a.eps
		p[j] = p[j]*a.decay - a.stepSize*(mj/denom)
	}
}

// adamWRef is the reference of AdamW in float64, term by term as torch
// writes it.
func adamWRef(p, g, m, v []float32, lr, beta1, beta2, eps, weightDecay float64, step int) {
	bc1 := 1 - math.Pow(beta1, float64(step+1))
	bc2 := 1 - math.Pow(beta2, float64(step+1))
	for i := range p {
		pi := float64(p[i]) * (1 - lr*weightDecay)
		mi := beta1*float64(m[i]) + (1-beta1)*float64(g[i])
		vi := beta2*float64(v[i]) + (1-beta2)*float64(g[i])*float64(g[i])
		m[i], v[i] = float32(mi), float32(vi)
		p[i] = float32(pi - lr/bc1*mi/(math.Sqrt(vi)/math.Sqrt(bc2)+eps))
	}
}
