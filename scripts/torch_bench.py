#!/usr/bin/python3
"""Side-by-side sgemm timing for model/kernels: torch.mm (and numpy) on 1 and 2 threads.

Prints one line per case in the style of `go test -bench` output, with GFLOPS
(wall) and cpu-GFLOPS (process CPU time), the same metrics as BenchmarkGemm:

    /usr/bin/python3 scripts/torch_bench.py [--reps 20] [--sizes 256,512,1024] [--numpy]

Debian's torch and numpy call OpenBLAS 0.3.21, which does not recognise this
CPU under KVM and falls back to its Prescott (SSE3) kernels; set
OPENBLAS_CORETYPE=SkylakeX to measure its AVX-512 kernels (OPENBLAS_VERBOSE=2
prints the core it picked).

NT is x @ w.T, NN is dy @ w, TN is dy.T @ x; all are float32 and use
transposed views, so the BLAS sees transposed operands, as Gemm does.
"""
import argparse
import os
import time


def bench(fn, flops, reps):
    fn()  # warm up
    best = []
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    w1, c1 = time.perf_counter(), time.process_time()
    wall = (w1 - w0) / reps
    cpu = (c1 - c0) / reps
    return wall, flops / wall / 1e9, flops / cpu / 1e9 if cpu > 0 else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--numpy", action="store_true", help="also time numpy (same BLAS on Debian)")
    ap.add_argument("--fused", action="store_true", help="time the ops of BenchmarkFused instead (cs336-17m micro-batch)")
    args = ap.parse_args()

    import torch
    if args.fused:
        fused(torch, args.reps)
        return
    print(f"# torch {torch.__version__}; {torch.__config__.show().splitlines()[-1].strip()[:100]}")
    for n in [int(s) for s in args.sizes.split(",")]:
        g = torch.Generator().manual_seed(0)
        a = torch.rand(n, n, generator=g) - 0.5
        b = torch.rand(n, n, generator=g) - 0.5
        out = torch.empty(n, n)
        cases = {
            "NT": lambda: torch.mm(a, b.t(), out=out),
            "NN": lambda: torch.mm(a, b, out=out),
            "TN": lambda: torch.mm(a.t(), b, out=out),
        }
        for name, fn in cases.items():
            for threads in (1, 2):
                torch.set_num_threads(threads)
                wall, gf, cgf = bench(fn, 2.0 * n**3, args.reps)
                print(f"TorchMM/{name}/n={n}/threads={threads}\t{args.reps}\t{wall*1e9:.0f} ns/op\t{gf:.2f} GFLOPS\t{cgf:.2f} cpu-GFLOPS")
    if args.numpy:
        import numpy as np
        rng = np.random.default_rng(0)
        for n in [int(s) for s in args.sizes.split(",")]:
            a = (rng.random((n, n), dtype=np.float32) - 0.5)
            b = (rng.random((n, n), dtype=np.float32) - 0.5)
            wall, gf, cgf = bench(lambda: a @ b.T, 2.0 * n**3, args.reps)
            print(f"NumpyMatmul/NT/n={n}/threads={os.environ.get('OMP_NUM_THREADS', 'default')}\t{args.reps}\t{wall*1e9:.0f} ns/op\t{gf:.2f} GFLOPS\t{cgf:.2f} cpu-GFLOPS")


def fused(torch, reps):
    """The ops of BenchmarkFused in plain PyTorch (eager, autograd for backward)."""
    import torch.nn.functional as F
    B, T, H, dh, Fd, V = 8, 256, 16, 32, 1344, 10000
    d, N = H * dh, B * T
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, T, dh, generator=g, requires_grad=True) for _ in range(3))
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    dout = torch.randn(B, H, T, dh, generator=g)
    logits = torch.randn(N, V, generator=g, requires_grad=True)
    targets = torch.randint(0, V, (N,), generator=g)
    x = torch.randn(N, d, generator=g, requires_grad=True)
    w = torch.ones(d, requires_grad=True)
    h = torch.randn(N, 2 * Fd, generator=g, requires_grad=True)
    P = 17_000_000
    p = torch.nn.Parameter(torch.randn(P, generator=g))
    p.grad = torch.randn(P, generator=g)
    opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)

    def attn():
        s = (q @ k.transpose(-1, -2)) / dh ** 0.5
        return torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v

    out = attn()
    def rms(t):
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    def swiglu(t):
        a, b = t.chunk(2, -1)
        return F.silu(a) * b
    cases = {
        "attention_fwd": lambda: attn(),
        "attention_fwd_bwd": lambda: attn().backward(dout),
        "softmax_xent_fwd_bwd": lambda: F.cross_entropy(logits, targets).backward(),
        "rmsnorm_fwd": lambda: rms(x),
        "rmsnorm_fwd_bwd": lambda: rms(x).sum().backward(),
        "swiglu_fwd": lambda: swiglu(h),
        "swiglu_fwd_bwd": lambda: swiglu(h).sum().backward(),
        "adamw_17M": lambda: opt.step(),
    }
    for name, fn in cases.items():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            wall, _, _ = bench(fn, 1.0, reps)
            w0, c0 = time.perf_counter(), time.process_time()
            print(f"Torch/{name}/threads={threads}\t{reps}\t{wall*1e9:.0f} ns/op\t{wall*1e3:.2f} ms")


if __name__ == "__main__":
    main()
