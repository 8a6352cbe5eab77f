// Package model is the decoder-only transformer of ringtrain
// (docs/model.md): configuration, parameters in one flat buffer, the
// forward and backward passes, AdamW with the cosine schedule and gradient
// clipping, and safetensors files. The arithmetic matches PyTorch
// (torch_test.go: loss, every gradient and two AdamW steps against
// scripts/torch_reference.py).
//
// # Configuration
//
// Config holds vocab_size, context_length, d_model, num_layers, num_heads,
// d_ff and rope_theta (json and yaml tags with those names). Preset returns
// "cs336-17m" or "small"; Validate names the offending key.
//
// # Parameters
//
// All parameters live in one contiguous []float32 (Model.Params) and all
// gradients in another of the same layout (Model.Grads). Config.Layout lists
// every tensor with its name, shape, offset and whether weight decay
// applies (2-D tensors only). The order is token_embeddings, then per layer
// ln1, ln2, q_proj, k_proj, v_proj, output_proj, ffn.w1, ffn.w3, ffn.w2, then
// ln_final and lm_head, so an all-reduce can work on Grads in one piece or
// in offset ranges. Backward finishes the gradients from the last tensors
// (lm_head, ln_final, the last layer) to the first (token_embeddings).
//
// # Training step
//
// See Example for a runnable version.
//
//	m, err := model.New(cfg, B, T)        // activations for batches up to (B, T), T ≤ context_length
//	m.Init(seed)                          // or model.LoadInto(path, cfg, m.Params)
//	opt := model.NewAdamW(m.Layout(), model.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
//	m.ZeroGrad()
//	for each micro-batch of b sequences (x, y []int32 of b·T token ids):
//		loss := m.Forward(x, y, b, T)                 // mean cross-entropy of the micro-batch
//		m.Backward(float32(b) / float32(globalBatch)) // accumulates grads of the global mean loss
//	all-reduce (sum) m.Grads over the workers
//	norm := model.ClipGradNorm(m.Grads, gradClip) // the norm before clipping
//	opt.Step(m.Params, m.Grads, model.LR(step, maxLR, minLR, warmup, maxSteps), step) // step from 0
//
// Model.Precision (kernels.FP32 by default, or kernels.BF16) sets the
// arithmetic of every matrix product of Forward and Backward: with BF16
// their inputs are rounded to bfloat16 and accumulated in float32, while
// parameters, gradients and the element-wise layers stay float32
// (docs/precision.md; fidelity_test.go compares a 200-step run with
// PyTorch's float64 and autocast).
//
// Forward with targets nil computes only the logits (Model.Logits), for
// generation. After Forward with targets, Logits holds the gradient of the
// mean loss with respect to the logits, and Losses the per-position
// losses. A warm training step allocates nothing (TestTrainStepAllocs):
// activations are preallocated and parallel work (kernels and reference
// layers alike) runs as recycled jobs on the one thread pool of the
// kernels package, so kernels.SetThreads governs all of it. AdamW.StepRange updates a flat index range only, for
// a worker that owns part of the optimizer state; SumSquares and ScaleGrads
// help compute a norm over such parts.
//
// # Files
//
// WriteModel writes a safetensors file with the Layout names, float32, and
// the config as decimal strings in __metadata__; ReadModel reads one (or a
// Hugging Face style sharded set through model.safetensors.index.json) and
// returns the config and parameters; LoadInto reads into an existing
// buffer for a known config. Errors name the tensor and wrap ErrFormat.
// WriteSafetensors, ReadSafetensors, LayoutTensors and FillLayout are the
// general pieces (the checkpoint package stores optimizer moments with them).
//
// # Generation
//
// A Decoder runs the trained model for inference with a KV cache: Prefill
// computes the prompt in one batched pass and caches every layer's rotated
// keys and values; Step computes q, k and v of the newest token only and
// attends to the cache. Generate adds sampling (Sampler: greedy,
// temperature, top-k, top-p, seeded) and slides the window by re-prefilling
// the last context_length/2 tokens when the context is full (docs/generate.md).
//
//	d, err := model.NewDecoder(cfg, params, cfg.ContextLength)
//	logits := d.Prefill(prompt)
//	logits = d.Step(next)
//
// # Layers
//
// Each layer is a forward/backward pair over flat []float32 with the shapes
// in its doc comment (llm.c style), usable alone (the KV-cache Decoder
// does): encoderForward, rmsnormForward, matmulForward, ropeForward (any
// start position), swigluForward, attentionForward, crossEntropyForward and
// their backward twins, which accumulate (+=) except where the doc comment
// says they overwrite. They are the plain reference versions, checked by
// finite differences (gradcheck_test.go).
//
// The training step (Model.Forward/Backward, AdamW) runs on the kernels
// package: Gemm for every linear map, RMSNormForward/Backward,
// RoPEForward/Backward, CausalAttentionForward/Backward (query blocks, only
// a (B, H, T) log-sum-exp cached, no T×T matrix), SwiGLUForward/Backward,
// SoftmaxCrossEntropy and AdamW; the whole path is checked against
// PyTorch, against finite differences, and the kernel attention against
// the reference one.
package model
