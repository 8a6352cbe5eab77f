// Package hf reads and writes Hugging Face Llama model directories
// (docs/export.md): the model of package model is Llama's architecture, so
// it converts to LlamaForCausalLM without loss.
//
//	err := hf.Write(dir, cfg, params, tok) // config.json, model.safetensors, tokenizer files (tok may be nil)
//	cfg, params, err := hf.Read(dir)       // the inverse; refuses what the model cannot represent
//	if hf.IsDir(path) { ... }              // config.json beside model.safetensors(.index.json)
//
// Tensor names map one to one (TensorName). RoPE differs: the model rotates
// interleaved pairs (2k, 2k+1) of each head, Hugging Face rotates halves
// (k, k+hd/2), so the rows of q_proj and k_proj are permuted per head on
// the way out (PermuteToHF) and back on the way in (PermuteFromHF); both
// give the same attention scores, since a shared permutation of the rows of
// q and k leaves q·k unchanged. testdata/ holds a directory written by
// scripts/hf_llama_reference.py, an independent Hugging Face style forward
// pass in PyTorch, with its logits.
//
// Read treats the directory as untrusted: config.json is bounded in size
// and every size is checked (ParseConfig), and each tensor's shape is
// checked against the config before the parameters are allocated.
package hf
