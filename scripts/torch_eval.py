#!/usr/bin/env python3
"""Evaluate a ringtrain model file with the PyTorch reference model.

Reads a model.safetensors written by ringtrain (config from __metadata__,
the tensor names of docs/model.md, F32) with a plain parser, and prints the mean
cross-entropy over every sequence of the given llm.c token shards in the
same format as `ringtrain eval`:  loss=<float> ppl=<float> tokens=<int>

Usage: /usr/bin/python3 scripts/torch_eval.py MODEL.safetensors SHARD.bin...
"""
import json
import math
import struct
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_reference import forward, layout  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = b[8 + n :]
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} has dtype {e['dtype']}")
        s, t = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[s:t], dtype="<f4").reshape(e["shape"]).copy())
    return out, meta


def read_shard(path):
    with open(path, "rb") as f:
        b = f.read()
    hdr = struct.unpack("<256i", b[:1024])
    if hdr[0] != 20240520 or hdr[1] != 1 or len(b) != 1024 + 2 * hdr[2]:
        raise SystemExit(f"{path}: not an llm.c shard")
    return torch.from_numpy(np.frombuffer(b[1024:], dtype="<u2").astype(np.int64))


def main():
    P, meta = read_safetensors(sys.argv[1])
    c = {k: int(meta[k]) for k in ("vocab_size", "context_length", "d_model", "num_layers", "num_heads", "d_ff")}
    c["rope_theta"] = float(meta["rope_theta"])
    names = [n for n, _ in layout(c)]
    if sorted(names) != sorted(P):
        raise SystemExit("tensor names differ from the layout of docs/model.md")
    T = c["context_length"]
    total, count = 0.0, 0
    with torch.no_grad():
        for path in sorted(sys.argv[2:]):
            tok = read_shard(path)
            S = (len(tok) - 1) // T
            if S == 0:
                continue
            x = tok[: S * T].view(S, T)
            y = tok[1 : S * T + 1].view(S, T)
            total += forward(P, c, x, y).item() * S * T
            count += S * T
    loss = total / count
    print(f"loss={loss:.6f} ppl={math.exp(loss):.4f} tokens={count}")


if __name__ == "__main__":
    main()
