#!/usr/bin/python3
"""Cost of calling attnkit from Python against the C++ call the CLI times.

usage: py_overhead.py BUILD_DIR [--small-repeat R] [--large-repeat R] [--backend SPEC]

Same arrays (written by `attnkit gen`) on both sides, same thread count (OMP_NUM_THREADS or all
cores). Small case n = 16, d = 16 (one head): the per-call overhead of the module is the Python
best time minus the CLI's ms_best (the bare Backend::forward). Large case n = 4096, d = 64, 4 heads:
Python's best time against the CLI's ms_best. Best of R runs on each side (the machine is shared:
repeat and take the best).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def best_ms(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--small-repeat", type=int, default=20000)
    ap.add_argument("--large-repeat", type=int, default=7)
    ap.add_argument("--backend", default="exact")
    ap.add_argument("--rounds", type=int, default=1, help="alternate CLI and Python this many times, keep the best")
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(a.build, "python"))
    import numpy as np
    import attnkit

    cli = os.path.join(a.build, "src", "cli", "attnkit")
    with tempfile.TemporaryDirectory() as tmp:
        for label, n, d, heads, repeat in (("small", 16, 16, 1, a.small_repeat), ("large", 4096, 64, 4, a.large_repeat)):
            prefix = os.path.join(tmp, label)
            subprocess.run([cli, "gen", "--n", str(n), "--d", str(d), "--heads", str(heads), "--prefix", prefix],
                           check=True, capture_output=True)
            files = {x: f"{prefix}_{x}.npy" for x in "qkv"}
            q, k, v = (np.load(files[x]) for x in "qkv")
            b = attnkit.Backend(a.backend)
            out = np.empty(q.shape[:-1] + (v.shape[-1],), np.float32)
            b.forward(q, k, v, out)  # warm up
            cli_ms = t_fwd = t_att = float("inf")
            for _ in range(a.rounds):  # interleaved, so that both sides see the same machine load
                r = subprocess.run([cli, "run", "--backend", a.backend, "--q", files["q"], "--k", files["k"], "--v",
                                    files["v"], "--out", os.path.join(tmp, "o.npy"), "--repeat", str(repeat), "--json"],
                                   check=True, capture_output=True, text=True)
                c = json.loads(r.stdout)
                cli_ms = min(cli_ms, c["ms_best"])
                t_fwd = min(t_fwd, best_ms(lambda: b.forward(q, k, v, out), repeat))
                t_att = min(t_att, best_ms(lambda: attnkit.attention(q, k, v, a.backend), repeat))
            c["ms_best"] = cli_ms
            unit, f = ("us", 1e3) if label == "small" else ("ms", 1.0)
            print(f"{label}: n={n} d={d} heads={heads} threads={c['threads']} best of {a.rounds} x {repeat}")
            print(f"  CLI ms_best (C++ Backend::forward)     {c['ms_best'] * f:10.1f} {unit}")
            for what, t in (("Backend.forward(q, k, v, out)", t_fwd), ("attnkit.attention(q, k, v, spec)", t_att)):
                print(f"  {what:37s} {t * f:10.1f} {unit}  ({(t - c['ms_best']) * f:+.1f} {unit}, "
                      f"{t / c['ms_best']:.3f}x)")


if __name__ == "__main__":
    main()
