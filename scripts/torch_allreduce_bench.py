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
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def parse_size(s):
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]i?B|B)?\s*", s, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"{s!r}: not a size (e.g. 64MiB)")
    unit = (m.group(2) or "B").lower()
    mult = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[unit]
    return int(float(m.group(1)) * mult)


def run(rank, args, port, q):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=args.workers)
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
    # the slowest rank defines an iteration
    t = torch.tensor(times, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if rank == 0:
        q.put(t.tolist())
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bytes", type=parse_size, default=parse_size("64MiB"), help="float32 bytes, e.g. 64MiB")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=run, args=(r, args, port, q)) for r in range(args.workers)]
    for p in procs:
        p.start()
    times = q.get()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        sys.exit("a rank failed")
    med = statistics.median(times)
    n = args.workers
    bw = lambda t: args.bytes / t / 1e9  # noqa: E731
    print(f"gloo all-reduce (float32 sum): {n} processes on 127.0.0.1, {args.bytes} float32 bytes, "
          f"{args.warmup} warm-up + {args.iters} timed; median {med * 1e3:.2f} ms, min {min(times) * 1e3:.2f}, "
          f"max {max(times) * 1e3:.2f}; torch {torch.__version__}")
    print(f"algbw_GBps={bw(med):.3f} busbw_GBps={bw(med) * 2 * (n - 1) / n:.3f}")


if __name__ == "__main__":
    main()
