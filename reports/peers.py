#!/usr/bin/python3
"""Times the peers a user would otherwise reach for, on one input of an `attnkit sweep`.

usage: peers.py PREFIX --threads T --repeat R [--min-time S] [--causal]

Reads PREFIX_q.npy, PREFIX_k.npy, PREFIX_v.npy (float32 [B, H, n, d], kv heads may be fewer:
grouped-query attention repeats them), computes exact attention softmax(s·QKᵀ)V (s = 1/√d; with
--causal the bottom-right aligned causal mask) with

  numpy (unfused)        numpy's matmul (its OpenBLAS) on the whole n_q × n_k score matrix,
  torch <version> (math) PyTorch's matmul / softmax / matmul, when `import torch` works,

times each as the sweep times a backend (one untimed run, then R timed runs, and more, up to 1000,
until they add up to S seconds), writes each output to PREFIX_peer<i>.npy and one line per peer to
PREFIX_peers.tsv:

  label <TAB> status <TAB> ms_best <TAB> ms_median <TAB> output path <TAB> timed runs

status is "ok" or "unavailable: <why>" (then the times and path are empty). Thread counts: numpy's
OpenBLAS gets T through OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, set before numpy is imported;
torch gets torch.set_num_threads(T). Run it with /usr/bin/python3 (Debian's numpy and torch).
"""
import argparse
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefix")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeat", type=int, required=True)
    ap.add_argument("--min-time", type=float, default=0.0)
    ap.add_argument("--causal", action="store_true")
    args = ap.parse_args()
    if args.threads < 1 or args.repeat < 1:
        sys.exit("peers: --threads and --repeat must be >= 1")
    # Before numpy loads OpenBLAS: its thread count is read once, at load time.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    q, k, v = (np.load(f"{args.prefix}_{x}.npy") for x in "qkv")
    for name, x in zip("qkv", (q, k, v)):
        if x.dtype != np.float32 or x.ndim != 4:
            sys.exit(f"peers: {args.prefix}_{name}.npy is {x.dtype} of rank {x.ndim}; expected float32 [B,H,n,d]")
    group = q.shape[1] // k.shape[1]
    if group > 1:  # grouped-query attention: query head h reads kv head h // group
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    scale = np.float32(1.0 / np.sqrt(q.shape[3]))
    n_q, n_k = q.shape[2], k.shape[2]
    # bottom-right aligned: query i sees key j iff j <= i + n_k - n_q
    hidden = np.arange(n_k)[None, :] > np.arange(n_q)[:, None] + (n_k - n_q) if args.causal else None

    def numpy_attention():
        s = np.matmul(q, k.transpose(0, 1, 3, 2))
        s *= scale
        if hidden is not None:
            s[..., hidden] = -np.inf
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        return np.matmul(s, v)

    peers = [("numpy (unfused)", numpy_attention)]
    try:
        import torch

        torch.set_num_threads(args.threads)
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
        tmask = torch.from_numpy(hidden) if hidden is not None else None

        def torch_attention():
            with torch.no_grad():
                s = torch.matmul(tq, tk.transpose(-1, -2)) * float(scale)
                if tmask is not None:
                    s = s.masked_fill(tmask, float("-inf"))
                return torch.matmul(torch.softmax(s, dim=-1), tv).numpy()

        peers.append((f"torch {torch.__version__} (math)", torch_attention))
        torch_note = None
    except Exception as e:  # not installed, or a broken install: the row is absent, with a note
        torch_note = f"unavailable: import torch failed: {type(e).__name__}: {e}".replace("\t", " ").replace("\n", " ")

    lines = []
    for i, (label, fn) in enumerate(peers):
        out = fn()  # untimed, as the sweep's checked run
        ms = []
        while len(ms) < args.repeat or (sum(ms) < 1e3 * args.min_time and len(ms) < 1000):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1e3)
        ms.sort()
        path = f"{args.prefix}_peer{i}.npy"
        np.save(path, np.ascontiguousarray(out, dtype=np.float32))
        lines.append(f"{label}\tok\t{ms[0]:.6g}\t{ms[len(ms) // 2]:.6g}\t{path}\t{len(ms)}")
    if torch_note:
        lines.append(f"torch (math)\t{torch_note}\t\t\t\t")
    with open(f"{args.prefix}_peers.tsv", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
