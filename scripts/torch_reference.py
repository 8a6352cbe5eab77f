#!/usr/bin/env python3
"""PyTorch reference for ringtrain's model (docs/model.md).

Builds the same decoder-only transformer in PyTorch from the formulas of docs/model.md,
for a tiny config, and writes into model/testdata/:

  torch_tokens.bin           a token shard (llm.c format, docs/data.md) of B*T+1 tokens
  torch_init.safetensors     the initial weights (the names of docs/model.md, config in __metadata__)
  torch_grads.safetensors    the gradients of the mean loss at the initial weights
  torch_step2.safetensors    the weights after 2 AdamW steps (clip 0.5, cosine lr, see OPT)
  torch_reference.json       config, losses of steps 0..2, grad norms, learning rates

The Go test model/torch_test.go loads these and checks ringtrain against them.
Usage: /usr/bin/python3 scripts/torch_reference.py [OUTDIR]   (needs torch and numpy)
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else "model/testdata"
CFG = dict(vocab_size=50, context_length=16, d_model=16, num_layers=2, num_heads=2, d_ff=40, rope_theta=10000.0)
B, T = 3, 16
OPT = dict(lr=1e-2, min_lr=1e-3, warmup=0, max_steps=4, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, grad_clip=0.5)


def layout(c):
    V, d, f = c["vocab_size"], c["d_model"], c["d_ff"]
    out = [("token_embeddings.weight", (V, d))]
    for i in range(c["num_layers"]):
        p = f"layers.{i}."
        out += [(p + "ln1.weight", (d,)), (p + "ln2.weight", (d,))]
        out += [(p + "attn." + n + ".weight", (d, d)) for n in ("q_proj", "k_proj", "v_proj", "output_proj")]
        out += [(p + "ffn.w1.weight", (f, d)), (p + "ffn.w3.weight", (f, d)), (p + "ffn.w2.weight", (d, f))]
    out += [("ln_final.weight", (d,)), ("lm_head.weight", (V, d))]
    return out


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, float32 numpy array); a plain safetensors writer."""
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


def rmsnorm(x, g):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g


def rope(x, theta):
    # x (B, H, T, hs); interleaved pairs (2k, 2k+1), angle = pos * theta^(-2k/hs)
    hs, t = x.shape[-1], x.shape[-2]
    k = torch.arange(hs // 2, dtype=torch.float64)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * theta ** (-2 * k / hs)
    cos, sin = torch.cos(ang).float(), torch.sin(ang).float()
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


def forward(P, c, x, y):
    d, H = c["d_model"], c["num_heads"]
    hs = d // H
    b, t = x.shape
    h = P["token_embeddings.weight"][x]
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    for i in range(c["num_layers"]):
        p = f"layers.{i}."
        a = rmsnorm(h, P[p + "ln1.weight"])
        q, k, v = (
            (a @ P[p + "attn." + n + ".weight"].T).view(b, t, H, hs).transpose(1, 2)
            for n in ("q_proj", "k_proj", "v_proj")
        )
        q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        s = s.masked_fill(~mask, float("-inf")).softmax(-1)
        o = (s @ v).transpose(1, 2).reshape(b, t, d)
        h = h + o @ P[p + "attn.output_proj.weight"].T
        a = rmsnorm(h, P[p + "ln2.weight"])
        u = F.silu(a @ P[p + "ffn.w1.weight"].T) * (a @ P[p + "ffn.w3.weight"].T)
        h = h + u @ P[p + "ffn.w2.weight"].T
    logits = rmsnorm(h, P["ln_final.weight"]) @ P["lm_head.weight"].T
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def lr_at(s, o):
    if s < o["warmup"]:
        return o["lr"] * s / o["warmup"]
    if s <= o["max_steps"]:
        r = (s - o["warmup"]) / (o["max_steps"] - o["warmup"])
        return o["min_lr"] + 0.5 * (1 + math.cos(math.pi * r)) * (o["lr"] - o["min_lr"])
    return o["min_lr"]


def main():
    torch.manual_seed(1234)
    c = CFG
    names = layout(c)
    P = {}
    for name, shape in names:
        if len(shape) == 1:
            w = torch.ones(shape)
        elif name == "token_embeddings.weight":
            w = torch.nn.init.trunc_normal_(torch.empty(shape), 0, 1, -3, 3)
        else:
            std = math.sqrt(2 / (shape[0] + shape[1]))
            w = torch.nn.init.trunc_normal_(torch.empty(shape), 0, std, -3 * std, 3 * std)
        P[name] = w.requires_grad_()
    meta = {k: str(v) for k, v in c.items()}
    meta["rope_theta"] = "10000"
    write_safetensors(f"{OUT}/torch_init.safetensors", [(n, P[n].detach().numpy()) for n, _ in names], meta)

    g = torch.Generator().manual_seed(99)
    toks = torch.randint(0, c["vocab_size"], (B * T + 1,), generator=g)
    with open(f"{OUT}/torch_tokens.bin", "wb") as f:
        hdr = [0] * 256
        hdr[0], hdr[1], hdr[2] = 20240520, 1, len(toks)
        f.write(struct.pack("<256i", *hdr))
        f.write(toks.numpy().astype("<u2").tobytes())
    x = toks[:-1].view(B, T)
    y = toks[1:].view(B, T)

    decay = [P[n] for n, s in names if len(s) == 2]
    nodecay = [P[n] for n, s in names if len(s) == 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": OPT["weight_decay"]}, {"params": nodecay, "weight_decay": 0.0}],
        lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"],
    )
    losses, norms, lrs = [], [], []
    for step in range(3):
        opt.zero_grad()
        loss = forward(P, c, x, y)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            write_safetensors(f"{OUT}/torch_grads.safetensors", [(n, P[n].grad.numpy()) for n, _ in names], {})
        if step == 2:
            break
        norms.append(torch.nn.utils.clip_grad_norm_([P[n] for n, _ in names], OPT["grad_clip"]).item())
        lr = lr_at(step, OPT)
        lrs.append(lr)
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.step()
        if step == 1:
            write_safetensors(f"{OUT}/torch_step2.safetensors", [(n, P[n].detach().numpy()) for n, _ in names], meta)
    ref = dict(config=c, batch=B, seq=T, optimizer=OPT, losses=losses, grad_norms=norms, lrs=lrs, torch=torch.__version__)
    with open(f"{OUT}/torch_reference.json", "w") as f:
        json.dump(ref, f, indent=1)
    print(json.dumps(ref))


if __name__ == "__main__":
    main()
