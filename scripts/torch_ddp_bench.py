#!/usr/bin/python3
"""PyTorch side of the cluster benchmark: DistributedDataParallel over gloo, one thread per rank.

Starts --workers processes on this machine, each with torch.set_num_threads(1), joins them in a
gloo process group on 127.0.0.1 and trains the model of scripts/torch_train_bench.py with DDP
(gradient buckets all-reduced while backward runs, bucket_cap_mb 25): --batch sequences per
rank and step, random tokens, AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on 2-D
parameters), clip_grad_norm_(1.0); with --precision bf16 the forward runs under
torch.autocast("cpu", dtype=torch.bfloat16) (backward outside it). Compare with
`ringtrain local --workers 2 --threads 1` on a job with train.global_batch = 2 × --batch,
train.micro_batch = --batch (see docs/performance.md).

    /usr/bin/python3 scripts/torch_ddp_bench.py --workers 2 --model small --batch 16 --precision bf16

The last line is `tokens_per_s=<float> ...`: tokens of all ranks per median step time (the slowest
rank's), with the mean-based figure after it.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gloo_ranks  # noqa: E402
from torch_train_bench import LM, PRESETS  # noqa: E402


def run(rank, args, port, q):
    gloo_ranks.join(rank, args.workers, port)
    torch.manual_seed(1)  # the same initial weights on every rank
    c = PRESETS[args.model]
    B, T = args.batch, c["context_length"]
    m = torch.nn.parallel.DistributedDataParallel(LM(c))
    params = dict(m.module.named_parameters())
    decay = [p for p in params.values() if p.dim() == 2]
    nodecay = [p for p in params.values() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(2 + rank)
    times = []
    for i in range(args.warmup + args.steps):
        x = torch.randint(0, c["vocab_size"], (B, T), generator=g)
        y = torch.randint(0, c["vocab_size"], (B, T), generator=g)
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = m(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        loss.item()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    gloo_ranks.report(times, rank, q)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="small", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=16, help="sequences per rank and step")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    args = ap.parse_args()
    times = gloo_ranks.spawn(run, args, args.workers)
    T = PRESETS[args.model]["context_length"]
    tokens = args.workers * args.batch * T
    med, mean = statistics.median(times), statistics.fmean(times)
    print(f"DDP over gloo: {args.workers} ranks × 1 thread, model {args.model}, {args.batch}×{T} tokens per rank, "
          f"precision {args.precision}; {args.steps} timed steps: median {med * 1e3:.1f} ms, min {min(times) * 1e3:.1f}, "
          f"max {max(times) * 1e3:.1f}; torch {torch.__version__}")
    print(f"tokens_per_s={tokens / med:.1f} mean_tokens_per_s={tokens / mean:.1f}")


if __name__ == "__main__":
    main()
