#!/usr/bin/env python3
"""Independent Hugging Face Llama reference for ringtrain's hf package.

Builds a tiny model with random weights in the names of docs/export.md's
left column (ringtrain's, RoPE on interleaved pairs) and converts it the way
Hugging Face expects (names, q/k rows permuted with
w.view(heads, hd/2, 2, d).transpose(1, 2).reshape(d, d)), then runs two
forward passes written here from scratch, in float32:

  * ringtrain's (interleaved RoPE, x / sqrt(mean(x^2) + eps) * g) on the
    original weights, and
  * Hugging Face LlamaForCausalLM's (rotate_half RoPE with cos/sin of
    cat(freqs, freqs), LlamaRMSNorm: weight * (x * rsqrt(mean(x^2) + eps)),
    causal softmax attention, down(silu(gate(x)) * up(x))) on the converted
    directory.

It writes into hf/testdata/:
  cs336.safetensors        the weights in ringtrain's names, config in __metadata__
  tiny-llama/config.json   the LlamaForCausalLM config
  tiny-llama/model.safetensors  the converted weights
  hf_reference.json        config, tokens, both logits, their max difference

hf/reference_test.go checks ringtrain's import, export and forward pass
against these files. transformers is not needed (nor installable here).
Usage: /usr/bin/python3 scripts/hf_llama_reference.py [OUTDIR]
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else "hf/testdata"
CFG = dict(vocab_size=64, context_length=16, d_model=32, num_layers=2, num_heads=4, d_ff=48, rope_theta=50000.0)
B, T = 2, 16
EPS = 1e-5


def write_safetensors(path, tensors, metadata):
    header, off, blobs = {"__metadata__": metadata}, 0, []
    for name, a in tensors:
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def ours_layout(c):
    V, d, f = c["vocab_size"], c["d_model"], c["d_ff"]
    out = [("token_embeddings.weight", (V, d))]
    for i in range(c["num_layers"]):
        p = f"layers.{i}."
        out += [(p + "ln1.weight", (d,)), (p + "ln2.weight", (d,))]
        out += [(p + "attn." + n + ".weight", (d, d)) for n in ("q_proj", "k_proj", "v_proj", "output_proj")]
        out += [(p + "ffn.w1.weight", (f, d)), (p + "ffn.w3.weight", (f, d)), (p + "ffn.w2.weight", (d, f))]
    out += [("ln_final.weight", (d,)), ("lm_head.weight", (V, d))]
    return out


def to_hf(P, c):
    """ringtrain names -> Hugging Face names, q/k rows permuted per head."""
    d, H = c["d_model"], c["num_heads"]
    perm = lambda w: w.view(H, d // H // 2, 2, d).transpose(1, 2).reshape(d, d)
    out = {"model.embed_tokens.weight": P["token_embeddings.weight"], "model.norm.weight": P["ln_final.weight"],
           "lm_head.weight": P["lm_head.weight"]}
    for i in range(c["num_layers"]):
        s, h = f"layers.{i}.", f"model.layers.{i}."
        out[h + "input_layernorm.weight"] = P[s + "ln1.weight"]
        out[h + "post_attention_layernorm.weight"] = P[s + "ln2.weight"]
        out[h + "self_attn.q_proj.weight"] = perm(P[s + "attn.q_proj.weight"])
        out[h + "self_attn.k_proj.weight"] = perm(P[s + "attn.k_proj.weight"])
        out[h + "self_attn.v_proj.weight"] = P[s + "attn.v_proj.weight"]
        out[h + "self_attn.o_proj.weight"] = P[s + "attn.output_proj.weight"]
        out[h + "mlp.gate_proj.weight"] = P[s + "ffn.w1.weight"]
        out[h + "mlp.up_proj.weight"] = P[s + "ffn.w3.weight"]
        out[h + "mlp.down_proj.weight"] = P[s + "ffn.w2.weight"]
    return out


def attention(q, k, v):
    # q, k, v (B, H, T, hd); causal softmax(q k^T / sqrt(hd)) v
    t, hd = q.shape[-2], q.shape[-1]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    return F.softmax(s, dim=-1, dtype=torch.float32) @ v


def forward_ours(P, c, x):
    d, H = c["d_model"], c["num_heads"]
    hd = d // H
    b, t = x.shape
    norm = lambda x, g: x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * g
    k_ = torch.arange(hd // 2, dtype=torch.float64)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * c["rope_theta"] ** (-2 * k_ / hd)
    cos, sin = torch.cos(ang).float(), torch.sin(ang).float()

    def rope(x):
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    h = P["token_embeddings.weight"][x]
    for i in range(c["num_layers"]):
        p = f"layers.{i}."
        a = norm(h, P[p + "ln1.weight"])
        q, k, v = ((a @ P[p + "attn." + n + ".weight"].T).view(b, t, H, hd).transpose(1, 2) for n in ("q_proj", "k_proj", "v_proj"))
        o = attention(rope(q), rope(k), v).transpose(1, 2).reshape(b, t, d)
        h = h + o @ P[p + "attn.output_proj.weight"].T
        a = norm(h, P[p + "ln2.weight"])
        h = h + (F.silu(a @ P[p + "ffn.w1.weight"].T) * (a @ P[p + "ffn.w3.weight"].T)) @ P[p + "ffn.w2.weight"].T
    return norm(h, P["ln_final.weight"]) @ P["lm_head.weight"].T


def forward_hf(W, cfg, x):
    """LlamaForCausalLM's forward, from its config.json and tensors."""
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    hd, eps = d // H, cfg["rms_norm_eps"]
    b, t = x.shape

    def rms(w, h):  # LlamaRMSNorm
        var = h.to(torch.float32).pow(2).mean(-1, keepdim=True)
        return w * (h * torch.rsqrt(var + eps))

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
        return torch.cat((-x2, x1), dim=-1)

    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    lin = lambda x, name: x @ W[name].T
    h = W["model.embed_tokens.weight"][x]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms(W[p + "input_layernorm.weight"], h)
        q, k, v = (lin(a, p + f"self_attn.{n}_proj.weight").view(b, t, H, hd).transpose(1, 2) for n in "qkv")
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        o = attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        h = h + lin(o, p + "self_attn.o_proj.weight")
        a = rms(W[p + "post_attention_layernorm.weight"], h)
        h = h + lin(F.silu(lin(a, p + "mlp.gate_proj.weight")) * lin(a, p + "mlp.up_proj.weight"), p + "mlp.down_proj.weight")
    return lin(rms(W["model.norm.weight"], h), "lm_head.weight")


def main():
    torch.manual_seed(4321)
    c = CFG
    names = ours_layout(c)
    P = {}
    for name, shape in names:
        if len(shape) == 1:
            P[name] = 1 + 0.2 * torch.randn(shape)
        else:
            P[name] = torch.randn(shape) * (1.0 if name == "token_embeddings.weight" else 2 / math.sqrt(shape[1]))
    meta = {k: str(v) for k, v in c.items()}
    meta["rope_theta"] = "50000"
    os.makedirs(f"{OUT}/tiny-llama", exist_ok=True)
    write_safetensors(f"{OUT}/cs336.safetensors", [(n, P[n].numpy()) for n, _ in names], meta)

    W = to_hf(P, c)
    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=c["vocab_size"],
               hidden_size=c["d_model"], intermediate_size=c["d_ff"], num_hidden_layers=c["num_layers"],
               num_attention_heads=c["num_heads"], num_key_value_heads=c["num_heads"],
               max_position_embeddings=c["context_length"], rms_norm_eps=EPS, rope_theta=c["rope_theta"],
               rope_scaling=None, hidden_act="silu", attention_bias=False, mlp_bias=False,
               tie_word_embeddings=False, torch_dtype="float32")
    with open(f"{OUT}/tiny-llama/config.json", "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(f"{OUT}/tiny-llama/model.safetensors", sorted((n, w.numpy()) for n, w in W.items()), {"format": "pt"})

    g = torch.Generator().manual_seed(7)
    x = torch.randint(0, c["vocab_size"], (B, T), generator=g)
    with torch.no_grad():
        lo, lh = forward_ours(P, c, x), forward_hf(W, cfg, x)
    diff = (lo - lh).abs().max().item()
    ref = dict(config=c, batch=B, seq=T, tokens=x.flatten().tolist(),
               logits_hf=[float(v) for v in lh.flatten()], logits_ours=[float(v) for v in lo.flatten()],
               max_abs_diff=diff, torch=torch.__version__)
    with open(f"{OUT}/hf_reference.json", "w") as f:
        json.dump(ref, f)
    print(f"max |logits_ours - logits_hf| = {diff:.3g} over {lo.numel()} logits (max |logit| {lh.abs().max().item():.3g})")


if __name__ == "__main__":
    main()
