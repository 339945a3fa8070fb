#!/usr/bin/python3
"""Attention heatmaps for `attnkit weights --png` (numpy + matplotlib; run with /usr/bin/python3).

    heatmap.py W.npy --out W.png [--tokens T.txt] [--title TEXT] [--label-a SPEC] [--log]
    heatmap.py W.npy --compare W2.npy --out W.png [--label-a SPEC] [--label-b SPEC] ...

W.npy is one head's probability matrix [n_q, n_k] (rows: query positions, columns: key
positions; row 0 at the top). With --compare, three panels side by side: A (W.npy), B (W2.npy)
on one shared colour scale, and their difference B - A on a diverging scale centred on 0, which
shows what the approximation B moves away from or adds. --tokens: a text file with one label per
line, n_k lines; they label the key axis, and the query axis too when n_q == n_k (numeric positions
then go to the top and right axes). At most 160 tick labels are drawn per axis (every k-th token
beyond that); the figure grows with the number of labels so that they stay legible. --log: logarithmic colour scale from
1e-4 to 1 (shows where the small mass goes); exact zeros (masked keys) are drawn white.
Exit status 0 on success; 2 with one line on stderr for a bad input.
"""
import argparse
import math
import sys

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm  # noqa: E402

MAX_TICKS = 160  # beyond this many tokens, every k-th one is labelled


def fail(msg):
    print(f"heatmap.py: {msg}", file=sys.stderr)
    sys.exit(2)


def load(path):
    try:
        w = np.load(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a user error
        fail(f"{path}: cannot read ({e})")
    if w.ndim != 2:
        fail(f"{path}: rank {w.ndim}; expected a [n_q, n_k] matrix")
    return w.astype(np.float64)


def ticks(ax, n_q, n_k, tokens, max_ticks):
    if tokens is None:
        return
    step = max(1, math.ceil(n_k / max_ticks))
    pos = list(range(0, n_k, step))
    size = 7
    ax.set_xticks(pos)
    ax.set_xticklabels([tokens[j] for j in pos], rotation=90, fontsize=size, family="monospace")
    ax.tick_params(length=2, pad=1)
    top = ax.secondary_xaxis("top")
    top.set_xlabel("key position", fontsize=9)
    if n_q == n_k:
        ax.set_yticks(pos)
        ax.set_yticklabels([tokens[i] for i in pos], fontsize=size, family="monospace")
        right = ax.secondary_yaxis("right")
        right.set_ylabel("query position", fontsize=9)


def panel(fig, ax, w, norm, cmap, title, bar_label, tokens, max_ticks):
    cm = plt.get_cmap(cmap).copy()
    cm.set_bad("white")  # zeros under a log scale: masked keys stand apart from tiny weights
    # "antialiased": nearest-neighbour when a cell covers many pixels, smoothing when n exceeds them;
    # after colour mapping ("rgba"), so masked cells do not smear into their neighbours.
    im = ax.imshow(w, cmap=cm, norm=norm, interpolation="antialiased", interpolation_stage="rgba", aspect="equal" if w.shape[0] == w.shape[1] else "auto")
    ax.set_xlabel("key position" + (" (token)" if tokens else ""))
    ax.set_ylabel("query position" + (" (token)" if tokens else ""))
    ax.set_title(title, fontsize=12)
    ticks(ax, w.shape[0], w.shape[1], tokens, max_ticks)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.08 if tokens else 0.04)
    bar.set_label(bar_label)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--compare")
    ap.add_argument("--tokens")
    ap.add_argument("--title", default="")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--log", action="store_true")
    a = ap.parse_args()

    wa = load(a.weights)
    wb = load(a.compare) if a.compare else None
    if wb is not None and wb.shape != wa.shape:
        fail(f"{a.compare}: shape {wb.shape}; expected {wa.shape} like {a.weights}")
    tokens = None
    if a.tokens:
        with open(a.tokens, encoding="utf-8", errors="replace") as f:
            tokens = f.read().split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()  # the final newline ends the last line, it does not start a new one
        if len(tokens) != wa.shape[1]:
            fail(f"{a.tokens}: {len(tokens)} lines; expected one token per key, n_k = {wa.shape[1]}")
        # Tokens are text, not matplotlib mathtext: a "$" (prices, LaTeX in a corpus) would start it.
        tokens = [t.replace("$", r"\$") for t in tokens]

    top = max(wa.max(), wb.max() if wb is not None else 0.0, 1e-12)
    prob_norm = (lambda: LogNorm(vmin=1e-4, vmax=1.0)) if a.log else (lambda: Normalize(vmin=0.0, vmax=top))
    bar = "attention probability" + (" (log)" if a.log else "")
    # A panel grows with its labels (~0.09 inch each) up to 16 inches alone, 10 in a comparison.
    max_side = 16.0 if wb is None else 10.0
    max_ticks = min(MAX_TICKS, int((max_side - 2.0) / 0.09))
    labels = min(wa.shape[1], max_ticks) if tokens else 0
    side = min(max_side, max(7.5, 0.09 * labels + 2.0)) if tokens else (7.5 if wa.shape[0] <= 256 else 9.0)
    if wb is None:
        fig, ax = plt.subplots(figsize=(side + 1.5, side))
        panel(fig, ax, wa, prob_norm(), "viridis", f"{a.label_a}\n{a.title}".strip(), bar, tokens, max_ticks)
    else:
        diff = wb - wa
        biggest = np.abs(diff).max()
        lim = max(biggest, 1e-12)  # an all-zero difference still needs a colour range
        l1 = np.abs(diff).sum(axis=1).mean()
        fig, axes = plt.subplots(1, 3, figsize=(3 * side + 3, side), layout="constrained")
        panel(fig, axes[0], wa, prob_norm(), "viridis", f"A: {a.label_a}", bar, tokens, max_ticks)
        panel(fig, axes[1], wb, prob_norm(), "viridis", f"B: {a.label_b}", bar, tokens, max_ticks)
        panel(fig, axes[2], diff, TwoSlopeNorm(vmin=-lim, vcenter=0.0, vmax=lim), "RdBu_r",
              "difference B - A (red: B adds mass, blue: B drops it)", "probability difference", tokens, max_ticks)
        fig.suptitle(f"{a.title}   mean row L1 |B - A| = {l1:.4g}   max |B - A| = {biggest:.3g}".strip(), fontsize=12)
    if wb is None:
        fig.tight_layout()  # (constrained layout drops the token labels of a lone panel)
    fig.savefig(a.out, dpi=110)


if __name__ == "__main__":
    main()
