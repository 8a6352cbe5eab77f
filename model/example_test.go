package model_test

import (
	"bytes"
	"fmt"

	"github.com/ringtrain/ringtrain/model"
)

// One training step with gradient accumulation over two micro-batches, as
// a worker runs it (the all-reduce of m.Grads would go before clipping).
func Example() {
	cfg := model.Config{VocabSize: 32, ContextLength: 8, DModel: 16, NumLayers: 1, NumHeads: 2, DFF: 24, RopeTheta: 10000}
	const micro, T, global = 2, 8, 4 // global batch of 4 sequences in micro-batches of 2
	m, err := model.New(cfg, micro, T)
	if err != nil {
		panic(err)
	}
	m.Init(1337)
	opt := model.NewAdamW(m.Layout(), model.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})

	tokens := make([]int32, global*T+1)
	for i := range tokens {
		tokens[i] = int32(i * 7 % cfg.VocabSize)
	}
	step := 0
	m.ZeroGrad()
	var loss float64
	for mb := 0; mb < global/micro; mb++ {
		x := tokens[mb*micro*T : (mb+1)*micro*T]
		y := tokens[mb*micro*T+1 : (mb+1)*micro*T+1]
		l := m.Forward(x, y, micro, T)
		m.Backward(float32(micro) / float32(global)) // gradient of the global mean loss
		loss += l * micro / global
	}
	norm := model.ClipGradNorm(m.Grads, 1.0)
	lr := model.LR(step, 1e-3, 1e-4, 10, 100)
	opt.Step(m.Params, m.Grads, lr, step)

	var file bytes.Buffer
	if err := model.WriteModel(&file, cfg, m.Params); err != nil {
		panic(err)
	}
	fmt.Printf("loss %.2f, grad norm > 0: %v, lr %g, %d parameters\n", loss, norm > 0, lr, cfg.NumParams())
	// Output: loss 3.84, grad norm > 0: true, lr 0, 3248 parameters
}
