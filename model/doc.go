// Package model is the decoder-only transformer of ringtrain (SPEC
// sections 2 and 3): configuration, parameters in one flat buffer, the
// forward and backward passes, AdamW with the cosine schedule and gradient
// clipping, and safetensors files.
//
// # Parameters
//
// All parameters live in one contiguous []float32 (Model.Params) and all
// gradients in another of the same layout (Model.Grads). Config.Layout lists
// every tensor with its SPEC name, shape, offset and whether weight decay
// applies (2-D tensors only). The order is token_embeddings, then per layer
// ln1, ln2, q_proj, k_proj, v_proj, output_proj, ffn.w1, ffn.w3, ffn.w2, then
// ln_final and lm_head, so an all-reduce can work on Grads in one piece or
// in offset ranges (later layers' gradients are complete first in Backward).
//
// # Training step
//
//	cfg, _ := model.Preset("small")
//	m, err := model.New(cfg, B, T)        // activations for batches up to (B, T)
//	m.Init(seed)                          // or model.LoadInto(path, cfg, m.Params)
//	opt := model.NewAdamW(m.Layout(), model.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
//	for step := 0; step < maxSteps; step++ {
//		m.ZeroGrad()
//		for _, mb := range microBatches {    // gradient accumulation
//			loss := m.Forward(mb.x, mb.y, b, T) // mean cross-entropy of the micro-batch
//			m.Backward(float32(b) / float32(globalBatch)) // grads of the global mean loss
//		}
//		// (all-reduce m.Grads here: sum over workers)
//		norm := model.ClipGradNorm(m.Grads, gradClip) // norm before clipping
//		opt.Step(m.Params, m.Grads, model.LR(step, maxLR, minLR, warmup, maxSteps), step)
//	}
//
// Forward with targets nil computes only the logits (Model.Logits), for
// evaluation by hand or generation. Nothing is allocated per step.
//
// # Layers
//
// Each layer is a forward/backward pair over flat []float32 with the shapes
// in its doc comment (llm.c style): encoderForward, rmsnormForward,
// matmulForward, ropeForward, attentionForward, swigluForward,
// crossEntropyForward and their backward twins, which accumulate (+=)
// except where the doc comment says they overwrite. Matmuls go through
// kernels.Gemm; attention and element-wise layers split their work over
// GOMAXPROCS goroutines (attention by batch×head, element-wise by rows).
package model
