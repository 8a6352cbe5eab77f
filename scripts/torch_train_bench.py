#!/usr/bin/python3
"""PyTorch side of `ringtrain bench train`: time full training steps on CPU.

Each timed step is what `ringtrain bench train` times: new random tokens,
zero grads, forward (mean cross-entropy), backward, clip_grad_norm_(1.0), and
AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on 2-D parameters only,
lr 1e-4), float32, same model (docs/model.md: RMSNorm, interleaved RoPE,
causal multi-head attention, SwiGLU, no biases, untied lm_head).

    /usr/bin/python3 scripts/torch_train_bench.py --model cs336-17m --threads 1 --steps 10
    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 scripts/torch_train_bench.py --model cs336-17m --threads 2

The last line is `tokens_per_s=<float> ...` from the median step time (the
mean-based figure, which is what ringtrain prints, follows as mean_tokens_per_s);
the line before it gives the process's peak RSS. --precision bf16 runs the forward
under torch.autocast("cpu", dtype=torch.bfloat16) (backward outside it), which on
this CPU sends the bf16 matmuls to oneDNN's AMX kernels.

Debian's torch 1.13 calls OpenBLAS 0.3.21 (openmp build) for float32 matmul;
that OpenBLAS does not recognise this CPU under KVM and runs its SSE3
(Prescott) kernels unless OPENBLAS_CORETYPE=SkylakeX is set; the script prints
the core OpenBLAS picked. --impl reference runs scripts/torch_reference.py's
functional forward instead of the module below (same maths, slower: explicit
mask copy, RoPE tables rebuilt every call).
"""
import argparse
import ctypes
import math
import re
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "cs336-17m": dict(vocab_size=10000, context_length=256, d_model=512, num_layers=4, num_heads=16, d_ff=1344),
    "small": dict(vocab_size=4096, context_length=128, d_model=256, num_layers=4, num_heads=8, d_ff=672),
}


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def linear(d_in, d_out):
    m = nn.Linear(d_in, d_out, bias=False)
    std = math.sqrt(2 / (d_in + d_out))
    nn.init.trunc_normal_(m.weight, 0, std, -3 * std, 3 * std)
    return m


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["d_model"], c["d_ff"]
        self.H = c["num_heads"]
        self.ln1, self.ln2 = RMSNorm(d), RMSNorm(d)
        self.q_proj, self.k_proj, self.v_proj, self.output_proj = (linear(d, d) for _ in range(4))
        self.w1, self.w3, self.w2 = linear(d, f), linear(d, f), linear(f, d)

    def forward(self, x, cos, sin, bias):
        b, t, d = x.shape
        H, hs = self.H, d // self.H
        a = self.ln1(x)

        def heads(p):  # (b, t, d) -> (b*H, t, hs)
            return p(a).view(b, t, H, hs).transpose(1, 2).reshape(b * H, t, hs)

        q, k, v = heads(self.q_proj), heads(self.k_proj), heads(self.v_proj)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        # scale and causal mask fused into one batched matmul: bias + (q·kᵀ)/√hs
        s = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=1 / math.sqrt(hs)).softmax(-1)
        o = torch.bmm(s, v).view(b, H, t, hs).transpose(1, 2).reshape(b, t, d)
        x = x + self.output_proj(o)
        a = self.ln2(x)
        return x + self.w2(F.silu(self.w1(a)) * self.w3(a))


def rope(x, cos, sin):
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class LM(nn.Module):
    def __init__(self, c):
        super().__init__()
        V, d = c["vocab_size"], c["d_model"]
        self.token_embeddings = nn.Embedding(V, d)
        nn.init.trunc_normal_(self.token_embeddings.weight, 0, 1, -3, 3)
        self.layers = nn.ModuleList(Block(c) for _ in range(c["num_layers"]))
        self.ln_final = RMSNorm(d)
        self.lm_head = linear(d, V)
        hs = d // c["num_heads"]
        T = c["context_length"]
        k = torch.arange(hs // 2, dtype=torch.float64)
        ang = torch.arange(T, dtype=torch.float64)[:, None] * 10000.0 ** (-2 * k / hs)
        self.register_buffer("cos", torch.cos(ang).float())
        self.register_buffer("sin", torch.sin(ang).float())
        self.register_buffer("bias", torch.full((T, T), float("-inf")).triu(1))

    def forward(self, x, y):
        t = x.shape[1]
        cos, sin, bias = self.cos[:t], self.sin[:t], self.bias[:t, :t]
        h = self.token_embeddings(x)
        for blk in self.layers:
            h = blk(h, cos, sin, bias)
        logits = self.lm_head(self.ln_final(h))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))


def openblas_core():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")  # the copy torch already loaded
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return f"{lib.openblas_get_corename().decode()} ({lib.openblas_get_config().decode()})"
    except (OSError, AttributeError) as e:
        return f"unknown ({e})"


def cpu_capability():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return "ATen " + line.strip(" -")
    return "ATen CPU capability unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="small", choices=sorted(PRESETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=0, help="0 = the model's context_length")
    ap.add_argument("--foreach", choices=("on", "off"), default="on", help="AdamW foreach (multi-tensor) implementation")
    ap.add_argument("--impl", choices=("module", "reference"), default="module")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: forward under torch.autocast('cpu', dtype=torch.bfloat16), backward outside it")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    c = PRESETS[args.model]
    B, T = args.batch, args.seq or c["context_length"]
    m = LM(c)
    params = dict(m.named_parameters())
    if args.impl == "reference":
        sys.dont_write_bytecode = True  # no __pycache__ in scripts/
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        from torch_reference import forward as ref_forward

        def spec_name(n):  # layers.0.q_proj.weight -> layers.0.attn.q_proj.weight, w1 -> ffn.w1
            return re.sub(r"\.(w[123])\.", r".ffn.\1.", re.sub(r"\.(\w+_proj)\.", r".attn.\1.", n))

        names = {n: spec_name(n) for n in params}
        P = {names[n]: p for n, p in params.items()}
        rc = dict(c, rope_theta=10000.0)
        loss_fn = lambda x, y: ref_forward(P, rc, x, y)  # noqa: E731
    else:
        loss_fn = m
    decay = [p for p in params.values() if p.dim() == 2]
    nodecay = [p for p in params.values() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8, foreach=args.foreach == "on")
    n_params = sum(p.numel() for p in params.values())
    g = torch.Generator().manual_seed(2)

    def step():
        x = torch.randint(0, c["vocab_size"], (B, T), generator=g)
        y = torch.randint(0, c["vocab_size"], (B, T), generator=g)
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = loss_fn(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item()

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, openblas core {openblas_core()}, "
          f"{cpu_capability()}, mkldnn {torch.backends.mkldnn.is_available()}")
    print(f"model {args.model} ({args.impl}): {n_params} parameters, batch {B}×{T} = {B * T} tokens/step, "
          f"AdamW foreach={args.foreach}, precision {args.precision}")
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        print(f"\rstep {len(times)}/{args.steps} {times[-1] * 1e3:.0f} ms", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    med, mean = statistics.median(times), statistics.fmean(times)
    print(f"{args.steps} timed steps: median {med * 1e3:.1f} ms/step, mean {mean * 1e3:.1f} ms/step, "
          f"min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}, last loss {loss:.4f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    print(f"peak RSS {rss / 2**20:.1f} MiB = {rss / n_params:.1f} bytes per parameter")
    print(f"tokens_per_s={B * T / med:.1f} mean_tokens_per_s={B * T / mean:.1f}")


if __name__ == "__main__":
    main()
