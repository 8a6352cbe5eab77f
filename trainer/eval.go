package trainer

import (
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/shard"
)

// SumLoss returns the sum, over sequences lo … hi−1 of ds, of each
// sequence's mean cross-entropy under m (so the mean loss of the range is
// SumLoss/(hi−lo)). It runs them in forward passes of up to m.MaxB
// sequences of ds's context length, which must not exceed m.MaxT. done,
// if not nil, is called after each pass with the number of sequences it
// ran. Trainer.Eval and `ringtrain eval` both use it.
func SumLoss(m *model.Model, ds *shard.Dataset, lo, hi int, done func(n int)) float64 {
	B, T := m.MaxB, ds.ContextLength()
	x, y := make([]int32, B*T), make([]int32, B*T)
	var sum float64
	for i := lo; i < hi; i += B {
		b := min(B, hi-i)
		for k := range b {
			ds.Sequence(i+k, x[k*T:(k+1)*T], y[k*T:(k+1)*T])
		}
		sum += m.Forward(x, y, b, T) * float64(b)
		if done != nil {
			done(b)
		}
	}
	return sum
}
