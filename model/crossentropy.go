package model

import (
	"math"

	"github.com/ringtrain/ringtrain/model/kernels"
)

// crossEntropyForward computes, per row, the loss −log softmax(logits)[target]
// and replaces the logits in place by the softmax probabilities, which is
// all the backward pass needs (the logits are written once and read once).
//
//	losses (N), probs (N, V) logits on entry, probabilities on return, targets (N)
func crossEntropyForward(losses, probs []float32, targets []int32, N, V int) {
	ceFwdJobs.run(N, ceArgs{losses: losses, probs: probs, targets: targets, V: V}, crossEntropyForwardRows)
}

type ceArgs struct {
	losses, probs []float32
	targets       []int32
	dloss         float32
	V             int
}

var ceFwdJobs, ceBwdJobs rangeJobs[ceArgs]

func crossEntropyForwardRows(a *ceArgs, lo, hi int) {
	losses, probs, targets, V := a.losses, a.probs, a.targets, a.V
	for i := lo; i < hi; i++ {
		row := probs[i*V : (i+1)*V]
		mx := float32(math.Inf(-1))
		for _, v := range row {
			mx = max(mx, v)
		}
		vt := row[targets[i]]
		var sum float64
		for j, v := range row {
			e := kernels.Expf(v - mx)
			row[j] = e
			sum += float64(e)
		}
		// loss = log Σ e^(v−mx) − (v_t − mx)
		losses[i] = float32(math.Log(sum) - float64(vt-mx))
		inv := float32(1 / sum)
		for j := range row {
			row[j] *= inv
		}
	}
}

// crossEntropyBackward turns the probabilities into the gradient of
// dloss·Σ losses in place: dlogits = dloss·(p − onehot(target)).
//
//	dlogits (N, V) probabilities on entry, targets (N)
func crossEntropyBackward(dlogits []float32, targets []int32, dloss float32, N, V int) {
	ceBwdJobs.run(N, ceArgs{probs: dlogits, targets: targets, dloss: dloss, V: V}, crossEntropyBackwardRows)
}

func crossEntropyBackwardRows(a *ceArgs, lo, hi int) {
	dlogits, targets, dloss, V := a.probs, a.targets, a.dloss, a.V
	for i := lo; i < hi; i++ {
		row := dlogits[i*V : (i+1)*V]
		row[targets[i]] -= 1
		for j := range row {
			row[j] *= dloss
		}
	}
}
