"""Ranks of a gloo process group on this machine, for the PyTorch side of the benchmarks.

spawn(run, args, n) starts n processes running run(rank, args, port, q) with a free loopback
port and returns the list rank 0 put on q (exiting if a rank failed). Inside run, join(rank, n,
port) makes the rank one thread of the group and report(times, rank, q) hands rank 0 the
per-iteration times of the slowest rank, then leaves the group.
"""
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def join(rank, n, port):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=n)


def report(times, rank, q):
    t = torch.tensor(times, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)  # an iteration is as long as its slowest rank
    if rank == 0:
        q.put(t.tolist())
    dist.destroy_process_group()


def spawn(run, args, n):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=run, args=(r, args, port, q)) for r in range(n)]
    for p in procs:
        p.start()
    times = q.get()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        sys.exit("a rank failed")
    return times
