#!/usr/bin/python3
"""Every backend of this attnkit build on one Q/K/V triple: error against the fp64 reference vs
speed, as a table and a trade-off plot.

usage: compare.py [--q Q.npy --k K.npy --v V.npy] [--n N] [--causal] [--scale S] [--repeat R]
                  [--backends SPEC,SPEC,...] [--png OUT.png]

Without --q/--k/--v it loads layer 2 of the trained model in ../shared/data/trained-attention
(causal, scale 0.125, as the model computed it). Arrays: float32 [B,H,N,D], [H,N,D] or [N,D].
--n keeps the first N positions. The plot needs matplotlib.
"""
import argparse
import os
import time

import numpy as np

import attnkit

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "trained-attention")


def best_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)


def mean_v_error(q, k, v, ref, causal):
    """The trivial baseline every approximation must beat: each row = mean of the values it sees."""
    n_q, n_k = q.shape[-2], k.shape[-2]
    seen = np.minimum(np.arange(n_q) + n_k - n_q + 1, n_k) if causal else np.full(n_q, n_k)
    csum = np.cumsum(v.astype(np.float64), axis=-2)
    base = np.take(csum, np.maximum(seen - 1, 0), axis=-2) * ((seen > 0) / np.maximum(seen, 1))[:, None]
    rep = q.shape[-3] // v.shape[-3] if q.ndim >= 3 else 1
    base = np.repeat(base, rep, axis=-3) if q.ndim >= 3 else base
    return np.linalg.norm(base - ref) / np.linalg.norm(ref)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--q"), ap.add_argument("--k"), ap.add_argument("--v")
    ap.add_argument("--n", type=int, default=0, help="keep the first N positions")
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--scale", type=float)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", help="comma-separated specs (default: every backend with its defaults)")
    ap.add_argument("--png", default="compare.png")
    a = ap.parse_args()
    if a.q is None:  # the trained model's layer 2: causal, scale 1/8, not folded into q
        a.q, a.k, a.v = (os.path.join(DATA, f"w0_layer2_{x}.npy") for x in "qkv")
        a.causal, a.scale = True, 0.125 if a.scale is None else a.scale
    q, k, v = (np.load(p) for p in (a.q, a.k, a.v))
    if a.n:
        q, k, v = (x[..., :a.n, :] for x in (q, k, v))
    specs = a.backends.split(",") if a.backends else [b["name"] for b in attnkit.backends() if b["name"] != "reference"]
    ref = attnkit.reference(q, k, v, causal=a.causal, scale=a.scale)
    baseline = mean_v_error(q, k, v, ref, a.causal)
    print(f"q {q.shape}  k {k.shape}  v {v.shape}  causal={a.causal}  mean(V) baseline rel_fro {baseline:.3g}")
    rows = []
    for spec in specs:
        b = attnkit.Backend(spec)
        try:
            out = b.forward(q, k, v, causal=a.causal, scale=a.scale)
        except ValueError as e:  # e.g. clustered under a causal mask
            print(f"{b.spec}: unsupported: {e}")
            continue
        ms = best_ms(lambda: b.forward(q, k, v, out, causal=a.causal, scale=a.scale), a.repeat)
        rows.append((b.spec, ms, attnkit.metrics(out, ref)["rel_fro"]))
    exact_ms = next((ms for s, ms, _ in rows if s.startswith("exact")), rows[0][1])
    w = max(len(s) for s, _, _ in rows)
    print(f"{'backend':{w}s} {'ms':>9s} {'speedup':>8s} {'rel_fro':>9s}")
    for spec, ms, err in rows:
        print(f"{spec:{w}s} {ms:9.2f} {exact_ms / ms:7.2f}x {err:9.2e}{'' if err < baseline else '  (no better than mean(V))'}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for spec, ms, err in rows:
        ax.scatter(exact_ms / ms, max(err, 1e-9))
        ax.annotate(spec.split(":")[0], (exact_ms / ms, max(err, 1e-9)), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    ax.axhline(baseline, color="grey", linestyle="--", label="mean(V) baseline")
    ax.set(xscale="log", yscale="log", xlabel="speedup over exact", ylabel="relative Frobenius error vs reference",
           title=f"n_q={q.shape[-2]}, n_k={k.shape[-2]}, d={q.shape[-1]}{', causal' if a.causal else ''}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.png, dpi=120)
    print(f"wrote {a.png}")


if __name__ == "__main__":
    main()
