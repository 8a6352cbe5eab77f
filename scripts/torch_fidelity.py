#!/usr/bin/python3
"""PyTorch side of ringtrain's bf16 fidelity test (model/fidelity_test.go, docs/precision.md).

Trains a byte-level model of tiny Shakespeare (data/tinyshakespeare.txt) for 200 steps three
times from the same weights on the same batches: in float64 (the reference), in float32, and
in float32 under torch.autocast("cpu", dtype=torch.bfloat16) (backward outside it, as the
PyTorch docs recommend). The weights come from a splitmix64 stream that the Go test draws
identically (uniform with the variance of the model's init), so both sides start from the same
bits and read the same batches. Prints the deviation of float32 and autocast from float64 and
writes the three loss curves to model/testdata/torch_fidelity.json, which the Go test compares
its own fp32 and bf16 runs with.

    /usr/bin/python3 scripts/torch_fidelity.py [--out model/testdata/torch_fidelity.json]
"""
import argparse
import json
import math

import numpy as np
import torch
import torch.nn.functional as F

CFG = dict(vocab_size=256, context_length=64, d_model=128, num_layers=2, num_heads=4, d_ff=344, rope_theta=10000.0)
B, STEPS = 8, 200
OPT = dict(lr=3e-3, min_lr=3e-4, warmup=10, max_steps=STEPS, beta1=0.9, beta2=0.95, eps=1e-8,
           weight_decay=0.1, grad_clip=1.0)


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


def splitmix64(seed, start, n):
    """Values start .. start+n-1 of the splitmix64 stream of seed (uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(start + 1, start + n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def init_params(c, seed):
    """1-D gains 1; 2-D uniform on ±a, a = √(6/(d_in+d_out)) (√3 for the embedding), in layout
    order from one stream: w = float32((2u − 1)·a), u = (z >> 11)·2⁻⁵³."""
    P, pos = {}, 0
    for name, shape in layout(c):
        n = int(np.prod(shape))
        if len(shape) == 1:
            P[name] = np.ones(shape, dtype=np.float32)
            continue
        a = math.sqrt(3.0) if name == "token_embeddings.weight" else math.sqrt(6.0 / (shape[0] + shape[1]))
        u = (splitmix64(seed, pos, n) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
        P[name] = ((2 * u - 1) * a).astype(np.float32).reshape(shape)
        pos += n
    return P


def rmsnorm(x, g):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g


def rope(x, theta):
    hs, t = x.shape[-1], x.shape[-2]
    k = torch.arange(hs // 2, dtype=torch.float64)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * theta ** (-2 * k / hs)
    cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
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
        q, k, v = ((a @ P[p + "attn." + n + ".weight"].T).view(b, t, H, hs).transpose(1, 2)
                   for n in ("q_proj", "k_proj", "v_proj"))
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


def batch(text, step, T):
    """Batch b of step s: the window at (s·B + b)·T, wrapping around the text."""
    xs, ys = [], []
    for b in range(B):
        start = ((step * B + b) * T) % (len(text) - T - 1)
        xs.append(text[start:start + T])
        ys.append(text[start + 1:start + T + 1])
    return torch.from_numpy(np.stack(xs)).long(), torch.from_numpy(np.stack(ys)).long()


def train(init, text, dtype, autocast):
    c, names = CFG, layout(CFG)
    P = {n: torch.tensor(init[n], dtype=dtype, requires_grad=True) for n, _ in names}  # copies
    decay = [P[n] for n, s in names if len(s) == 2]
    nodecay = [P[n] for n, s in names if len(s) == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"])
    losses = []
    for step in range(STEPS):
        x, y = batch(text, step, c["context_length"])
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = forward(P, c, x, y)
        loss.backward()
        losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_(list(P.values()), OPT["grad_clip"])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, OPT)
        opt.step()
    return losses


def deviation(a, ref):
    d = [abs(x - r) / r for x, r in zip(a, ref)]
    return max(d), int(np.argmax(d)), sum(d[-20:]) / 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="model/testdata/torch_fidelity.json")
    ap.add_argument("--corpus", default="data/tinyshakespeare.txt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="seed of the initial weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    text = np.frombuffer(open(args.corpus, "rb").read(), dtype=np.uint8)
    init = init_params(CFG, args.seed)
    runs = {
        "float64": train(init, text, torch.float64, False),
        "float32": train(init, text, torch.float32, False),
        "autocast_bf16": train(init, text, torch.float32, True),
    }
    ref = runs["float64"]
    summary = {}
    for name in ("float32", "autocast_bf16"):
        worst, at, last20 = deviation(runs[name], ref)
        summary[name] = dict(worst=worst, worst_step=at, last20_mean=last20, final_diff=runs[name][-1] - ref[-1])
        print(f"{name} vs float64: worst per-step relative loss deviation {worst:.3g} (step {at}), "
              f"last-20 mean {last20:.3g}, final loss {runs[name][-1]:.4f} vs {ref[-1]:.4f}")
    out = dict(config=CFG, batch=B, steps=STEPS, seed=args.seed, optimizer=OPT, torch=torch.__version__,
               losses=runs, vs_float64=summary)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
