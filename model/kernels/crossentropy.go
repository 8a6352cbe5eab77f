package kernels

import "math"

// SoftmaxCrossEntropy computes, per row of logits, the loss
// −log softmax(row)[target] into losses and overwrites the row with the
// gradient of scale·Σ losses, dlogits = scale·(softmax(row) − onehot(target)).
// Each row is read three times and written once: a max pass, a Σ e^(v−max)
// pass, then the gradient pass (AVX-512 where the CPU has it). Rows run on
// up to Threads() threads.
//
//	losses (N), logits (N, V) logits on entry, dlogits on return, targets (N) in [0, V)
func SoftmaxCrossEntropy(losses, logits []float32, targets []int32, N, V int, scale float32) {
	if N == 0 {
		return
	}
	_ = losses[N-1]
	_ = logits[N*V-1]
	_ = targets[N-1]
	j := ceJobs.get()
	j.losses, j.logits, j.targets, j.V, j.scale = losses, logits, targets, V, scale
	j.rows = N
	parallel(j, partsFor(N, float64(N)*float64(V)))
	j.losses, j.logits, j.targets = nil, nil, nil
	ceJobs.put(j)
}

type ceJob struct {
	rowsJob
	losses, logits []float32
	targets        []int32
	V              int
	scale          float32
}

var ceJobs = newFreeList[ceJob](8)

func (j *ceJob) RunPart(i, n int) {
	lo, hi := splitRange(j.rows, 1, i, n)
	V := j.V
	for r := lo; r < hi; r++ {
		j.losses[r] = softmaxCrossEntropyRow(j.logits[r*V:(r+1)*V], int(j.targets[r]), j.scale)
	}
}

// softmaxCrossEntropyRow is one row of SoftmaxCrossEntropy; it returns the
// loss. Passes: max, Σ e^(v−max), then the gradient written in place.
func softmaxCrossEntropyRow(row []float32, target int, scale float32) float32 {
	vt := row[target]
	mx := vmax(row)
	sum := sumExp(row, mx)
	expSum(row, row, mx, scale/sum)
	row[target] -= scale
	return float32(math.Log(float64(sum))) - (vt - mx)
}

// softmaxCrossEntropyRef is the reference of SoftmaxCrossEntropy, in float64:
//
//	p = softmax(row); loss = −log p[t]; row = scale·(p − onehot(t))
func softmaxCrossEntropyRef(losses, logits []float32, targets []int32, N, V int, scale float32) {
	for r := 0; r < N; r++ {
		row := logits[r*V : (r+1)*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		t := targets[r]
		losses[r] = float32(math.Log(sum) - (float64(row[t]) - mx))
		for i, v := range row {
			row[i] = float32(float64(scale) * math.Exp(float64(v)-mx) / sum)
		}
		row[t] -= scale
	}
}
