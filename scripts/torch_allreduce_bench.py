#!/usr/bin/python3
"""The gloo side of `ringtrain bench allreduce`: torch.distributed all-reduce bandwidth on loopback.

Starts --workers processes on this machine (one thread each), joins them in a gloo process
group over TCP on 127.0.0.1, and times --iters all-reduces (sum) of a --bytes float32 tensor
after --warmup untimed ones:

    /usr/bin/python3 scripts/torch_allreduce_bench.py --workers 2 --bytes 64MiB

The last line is `algbw_GBps=<float> busbw_GBps=<float>` from the median iteration, with the
conventions `ringtrain bench allreduce` uses (algbw = bytes / time, busbw = algbw·2(n−1)/n,
GB = 1e9 bytes). gloo in torch 1.13 has no bfloat16 all-reduce ("Invalid scalar type"), so
float32 is the only comparison it offers.
"""
import argparse
import os
import re
import statistics
import sys
import time

import torch
import torch.distributed as dist

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gloo_ranks  # noqa: E402


def parse_size(s):
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]i?B|B)?\s*", s, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"{s!r}: not a size (e.g. 64MiB)")
    unit = (m.group(2) or "B").lower()
    mult = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[unit]
    return int(float(m.group(1)) * mult)


def run(rank, args, port, q):
    gloo_ranks.join(rank, args.workers, port)
    x = torch.full((args.bytes // 4,), float(rank + 1))
    times = []
    for i in range(args.warmup + args.iters):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(x)
        el = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(el)
        x.fill_(float(rank + 1))
    gloo_ranks.report(times, rank, q)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bytes", type=parse_size, default=parse_size("64MiB"), help="float32 bytes, e.g. 64MiB")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    times = gloo_ranks.spawn(run, args, args.workers)
    med = statistics.median(times)
    n = args.workers
    bw = lambda t: args.bytes / t / 1e9  # noqa: E731
    print(f"gloo all-reduce (float32 sum): {n} processes on 127.0.0.1, {args.bytes} float32 bytes, "
          f"{args.warmup} warm-up + {args.iters} timed; median {med * 1e3:.2f} ms, min {min(times) * 1e3:.2f}, "
          f"max {max(times) * 1e3:.2f}; torch {torch.__version__}")
    print(f"algbw_GBps={bw(med):.3f} busbw_GBps={bw(med) * 2 * (n - 1) / n:.3f}")


if __name__ == "__main__":
    main()
