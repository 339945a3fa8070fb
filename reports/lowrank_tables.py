#!/usr/bin/python3
"""Error tables of the low-rank family (issue 16): nystrom vs iterations and vs landmarks, linformer
vs k, on the trained inputs (non-causal) and the `diffuse` family, next to the mean(V) baseline.

usage: lowrank_tables.py ATTNKIT [--data DIR] [--n 2048] [--work DIR]

ATTNKIT is the built CLI (build/src/cli/attnkit). Each backend output comes from `attnkit run`
(2 threads); the exact output is computed here once per input in float64 numpy, so the error is
the relative Frobenius error ||O~ - O||_F / ||O||_F of all heads together, averaged over the
inputs of a group (trained: the 6 files w{0,1}_layer{1,2,3}, and per layer the 2 windows;
diffuse: seeds 1, 2, 3).
mean(V): every row replaced by the mean of the values (the no-attention baseline).
Prints Markdown tables. Needs numpy (Debian's /usr/bin/python3).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ITERATIONS = (2, 4, 6, 8, 12)
LANDMARKS = (16, 32, 64, 128, 256)
LINFORMER_K = (64, 128, 256, 512, 1024)


def exact64(q, k, v, scale):
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    s = scale * np.einsum("bhid,bhjd->bhij", q, k)
    s -= s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("bhij,bhjd->bhid", p, v)


def rel(a, ref):
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def run(attnkit, spec, prefix, work):
    out = os.path.join(work, "out.npy")
    subprocess.run([attnkit, "run", "--backend", spec, "--q", prefix + "_q.npy", "--k", prefix + "_k.npy", "--v",
                    prefix + "_v.npy", "--out", out, "--threads", "2"], check=True, stdout=subprocess.DEVNULL)
    return np.load(out)


def inputs(attnkit, data, n, work):
    """(group, prefix) pairs; the generated ones are written to work."""
    res = []
    for w in ("w0", "w1"):
        for layer in (1, 2, 3):
            res.append((("trained (non-causal)", f"trained layer {layer}"),
                        os.path.join(data, "trained-attention", f"{w}_layer{layer}")))
    for seed in (1, 2, 3):
        prefix = os.path.join(work, f"diffuse{seed}")
        subprocess.run([attnkit, "gen", "--family", "diffuse", "--batch", "1", "--heads", "4", "--n", str(n), "--d",
                        "64", "--seed", str(seed), "--prefix", prefix], check=True, stdout=subprocess.DEVNULL)
        res.append(((f"diffuse (n={n})",), prefix))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("attnkit")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                                                   "data"))
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="lowrank_tables_")
    os.makedirs(work, exist_ok=True)
    specs = ([f"nystrom:landmarks=64,iterations={i}" for i in ITERATIONS] +
             [f"nystrom:landmarks={m},iterations=6" for m in LANDMARKS] + [f"linformer:k={k}" for k in LINFORMER_K])
    err = {}  # (group, spec) -> [rel]
    for names, prefix in inputs(a.attnkit, a.data, a.n, work):
        q, k, v = (np.load(prefix + f"_{x}.npy") for x in "qkv")
        ref = exact64(q, k, v, 1.0 / np.sqrt(q.shape[-1]))
        base = np.broadcast_to(v.astype(np.float64).mean(axis=2, keepdims=True), ref.shape)
        results = [("mean(V)", rel(base, ref))] + [(spec, rel(run(a.attnkit, spec, prefix, work), ref)) for spec in specs]
        for group in names:
            for spec, e in results:
                err.setdefault((group, spec), []).append(e)
        print(f"done {prefix}", file=sys.stderr)
    groups = sorted({g for g, _ in err}, key=lambda g: (not g.startswith("trained ("), not g.startswith("trained"), g))
    avg = {key: float(np.mean(v)) for key, v in err.items()}

    def table(title, header, rows):
        print(f"\n### {title}\n")
        print("| " + header + " | " + " | ".join(groups) + " |")
        print("|---" * (len(groups) + 1) + "|")
        for label, spec in rows:
            print(f"| {label} | " + " | ".join(f"{avg[(g, spec)]:.3g}" for g in groups) + " |")

    table("nystrom (landmarks = 64): relative Frobenius error vs iterations", "iterations",
          [(str(i), f"nystrom:landmarks=64,iterations={i}") for i in ITERATIONS] + [("mean(V)", "mean(V)")])
    table("nystrom (iterations = 6): relative Frobenius error vs landmarks", "landmarks",
          [(str(m), f"nystrom:landmarks={m},iterations=6") for m in LANDMARKS] + [("mean(V)", "mean(V)")])
    table("linformer (random Gaussian E, untrained; seed 0): relative Frobenius error vs k", "k",
          [(str(k), f"linformer:k={k}") for k in LINFORMER_K] + [("mean(V)", "mean(V)")])


if __name__ == "__main__":
    main()
