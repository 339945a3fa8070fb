#!/usr/bin/python3
"""Turns an `attnkit sweep` results folder into REPORT.md with PNG plots.

usage: make_report.py RESULTS_DIR [--out DIR]

Reads RESULTS_DIR/results.jsonl and RESULTS_DIR/meta.json; writes DIR/REPORT.md and DIR/*.png
(DIR defaults to RESULTS_DIR). Needs numpy and matplotlib (Debian: python3-numpy,
python3-matplotlib; run it with /usr/bin/python3).
"""
import argparse
import json
import math
import os
import sys
import re
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pareto import pareto_front  # noqa: E402
from headroom import headroom_section  # noqa: E402

BUDGETS = (1e-1, 1e-2, 1e-3)
# Issue 16: the report must say, next to linformer's numbers, that its E is random.
LINFORMER_NOTE = ("`linformer` here projects keys and values with a random Gaussian E (N(0, 1/k)): Linformer "
                  "learns E in training, and a random E is the only training-free form, so these numbers are not "
                  "those of a trained Linformer.")
BREAK_EVEN = 1.1  # "faster than exact" means by at least 10%: smaller margins are timing noise
NOISY = 1.25  # a case whose median time exceeds its best by more than this is marked noisy
PEERS = ("numpy", "torch")  # backends of the peer rows (reports/peers.py), not attnkit settings


def load(results_dir):
    rows = []
    with open(os.path.join(results_dir, "results.jsonl")) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    meta_path = os.path.join(results_dir, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    return rows, meta


def group_of(r):
    """Generated families group by name; real inputs by mask (each input file is a point)."""
    if r["family"] == "trained":
        return "trained (causal)" if r["causal"] else "trained (non-causal)"
    return r["family"] + (" (causal)" if r["causal"] else "")


def ok(r):
    return r["status"] == "ok" and r["spec"] != "mean(V)"


def is_peer(r):
    return r.get("backend") in PEERS


def setting(r):
    """An attnkit setting that ran (not the baseline, not a peer)."""
    return ok(r) and not is_peer(r)


def noisy(a):
    return a.get("spread") is not None and a["spread"] > NOISY


def rows_checked(check, sampled=256):
    """Which query rows the error, bound and prob. row figures were computed on."""
    if not check or check == "full":
        return "all rows"
    return f"{check.split(':', 1)[-1] if ':' in check else sampled} sampled rows"


def fmt(x, spec="{:.3g}"):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else spec.format(x)


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def label_of(r):
    """The spec as the suite wrote it (defaults left out); the canonical spec for old results."""
    return r.get("label") or r["spec"]


def aggregate(rows):
    """(group, n, spec) -> averaged record over the inputs of that group (real data: 6 files)."""
    acc = defaultdict(list)
    for r in rows:
        acc[(group_of(r), r["n"], label_of(r))].append(r)
    out = {}
    for key, rs in acc.items():
        a = dict(rs[0])
        for field in ("ms_best", "ms_median", "speedup", "rel_fro", "max_abs", "prob_l1", "peak_extra_mib",
                      "gflops", "ratio_sgemm", "baseline_rel_fro", "bound_max"):
            a[field] = mean([x.get(field) for x in rs])
        spreads = [x.get("spread") for x in rs if x.get("spread") is not None]
        a["spread"] = max(spreads) if spreads else None  # the worst input of the group
        a["inputs"] = len(rs)
        a["beats_baseline"] = all(x.get("beats_baseline") for x in rs) if ok(rs[0]) else None
        holds = [x.get("bound_holds") for x in rs if x.get("bound_holds") is not None]
        a["bound_holds"] = all(holds) if holds else None
        a["unsupported"] = rs[0]["status"] if rs[0]["status"] != "ok" else None
        out[key] = a
    return out


def series_of(a, spec):
    """The plot series of a setting: its backend, with reduced-precision settings (spec
    precision=bf16|int8, docs/precision.md) as a series of their own, so that their points and
    Pareto front stand apart from the fp32 ones."""
    m = re.search(r"precision=(bf16|int8)", spec)
    return f"{a['backend']} (bf16/int8)" if m else a["backend"]


def plot_tradeoff(agg, group, ns, path):
    fig, axes = plt.subplots(1, len(ns), figsize=(6 * len(ns), 4.6), squeeze=False)
    for ax, n in zip(axes[0], ns):
        by_backend = defaultdict(list)
        for (g, nn, spec), a in agg.items():
            if g == group and nn == n and setting(a) and spec != "exact" and a["rel_fro"] and a["speedup"]:
                by_backend[series_of(a, spec)].append((a["rel_fro"], a["speedup"], spec))
        for backend, pts in sorted(by_backend.items()):
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            sc = ax.scatter(xs, ys, label=backend, alpha=0.8)
            front = pareto_front([(p[0], p[1]) for p in pts])
            ax.plot([xs[i] for i in front], [ys[i] for i in front], color=sc.get_facecolor()[0], lw=2.5)
            for x, y, spec in pts:
                ax.annotate(spec.split(":", 1)[-1] if ":" in spec else spec, (x, y), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
        base = mean([a["baseline_rel_fro"] for (g, nn, s), a in agg.items() if g == group and nn == n])
        if base:
            ax.axvline(base, color="grey", ls="--", lw=1)
            ax.text(base, ax.get_ylim()[1] if by_backend else 1, " mean(V)", color="grey", fontsize=7, va="top")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("relative Frobenius error vs reference (log)")
        ax.set_ylabel("speedup over exact (log)")
        ax.set_title(f"{group}, n = {n}")
        ax.grid(True, which="both", alpha=0.3)
        if by_backend:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scaling(agg, group, path, field, ylabel, guides):
    specs = sorted({s for (g, n, s), a in agg.items() if g == group and ok(a) and a.get(field)})
    if not specs:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 5))
    all_n = []
    for i, spec in enumerate(specs):
        pts = sorted((n, a[field]) for (g, n, s), a in agg.items() if g == group and s == spec and ok(a) and a.get(field))
        if pts:
            # tab10 repeats after 10 lines: later lines are dashed so every line stays distinct
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ls="-" if i < 10 else "--", label=spec)
            all_n += [p[0] for p in pts]
    if guides and all_n:
        n0, n1 = min(all_n), max(all_n)
        ref = [a[field] for (g, n, s), a in agg.items() if g == group and n == n0 and setting(a) and a.get(field)]
        y0 = sorted(ref)[len(ref) // 2]
        ax.plot([n0, n1], [y0, y0 * n1 / n0], "k--", lw=1, label="∝ n")
        ax.plot([n0, n1], [y0, y0 * (n1 / n0) ** 2], "k:", lw=1, label="∝ n²")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length n")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel} vs n ({group})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--out")
    args = ap.parse_args()
    out = args.out or args.results
    os.makedirs(out, exist_ok=True)
    rows, meta = load(args.results)
    if not rows:
        sys.exit("make_report: no results in " + args.results)
    agg = aggregate(rows)
    groups = []
    for r in rows:
        if group_of(r) not in groups:
            groups.append(group_of(r))
    md = ["# attnkit accuracy-vs-speed report", ""]
    md += [f"Suite `{meta.get('suite', '?')}`, {meta.get('date', '?')}, {meta.get('cases', len(rows))} cases "
           f"in {fmt(meta.get('seconds'), '{:.0f}')} s.", ""]
    md += ["| machine | |", "|---|---|",
           f"| CPU | {meta.get('cpu', '?')} |",
           f"| cores / threads used | {meta.get('cores', '?')} / {meta.get('threads', '?')} |",
           f"| SIMD path of the kernels | {meta.get('simd') or '?'} |",
           f"| kernel set of precision=bf16/int8 (docs/precision.md) | {meta.get('precision_kernels') or '?'} |",
           f"| BLAS | {meta.get('blas', '?')} |",
           f"| compiler | {meta.get('compiler', '?')} |",
           f"| attnkit | {meta.get('attnkit_version', '?')} |",
           f"| **sgemm 2048³ ceiling (same run)** | **{fmt(meta.get('sgemm_gflops'), '{:.1f}')} GFLOP/s** |", ""]
    warm = meta.get("warmup_seconds")
    md += ["Every candidate is checked against the fp64 `reference` before it is timed: on all query rows "
           f"for n ≤ {meta.get('full_check_max_n', 4096)}, on {meta.get('sampled_rows', 256)} evenly spaced rows "
           "above; each table's header says which. Before the first timed case the sweep runs `exact` on the "
           "first input until its times settle (OpenMP threads started, pages touched, clock ramped"
           + (f"; {warm:.1f} s in this run" if isinstance(warm, (int, float)) and warm >= 0 else "") + "), "
           "and every case then gets its own checked, untimed run first. Times are the best of "
           f"{meta.get('repeat', 3)} timed runs, or of more (up to 1000) until they add up to "
           f"{meta.get('min_time_s', 0):g} s; *spread* is median ÷ best, and a case above {NOISY:g} is "
           "marked **noisy**: distrust its times. *Error* is the relative "
           "Frobenius error ‖Õ−O‖/‖O‖; *mean(V)* is the trivial baseline that outputs the mean of the visible "
           "values for every row: an approximation at or above that error has learned nothing about the "
           "input (marked ✗). *Bound* says whether the backend's a-posteriori error bound held on every checked "
           "row (up to float32 rounding: 1e-5 of the largest value-row norm); *prob. row L1* is the mean L1 "
           "distance of the implied probability rows to the exact ones, on the checked rows of batch 0, head 0. "
           "Reduced-precision settings (`precision=bf16|int8`, docs/precision.md) claim no bound and form no "
           "probability rows (both –): their rounding shows in the error column only, and the plots draw them "
           "as a series of their own (*exact (bf16/int8)*). "
           "Real inputs (*trained*) are the Q/K/V of a small trained byte-level language model "
           "(../shared/data/trained-attention), averaged over its layers and windows. Settings are labelled "
           "as the suite wrote them; `results.jsonl` has each one's canonical spec with every default.", ""]

    # Tradeoff plots and per-group tables at the largest n of each group.
    md += ["## Accuracy vs speed", ""]
    for gi, group in enumerate(groups):
        ns = sorted({n for (g, n, s) in agg if g == group})
        png = f"tradeoff_{gi}.png"
        plot_tradeoff(agg, group, ns, os.path.join(out, png))
        n = ns[-1]
        # exact, then the peers, then the mean(V) baseline, then the approximations by name; a
        # peer that could not run (torch not importable) is a note under the table, not a row
        entries = sorted(((s, a) for (g, nn, s), a in agg.items() if g == group and nn == n
                          and not (is_peer(a) and a["unsupported"])),
                         key=lambda t: (0 if t[0] == "exact" else 1 if is_peer(t[1]) else 2 if t[0] == "mean(V)" else 3,
                                        t[0]))
        checked = rows_checked(next((a.get("check") for s, a in entries if s == "exact"), None),
                               meta.get("sampled_rows", 256))
        md += [f"### {group}", "", f"![{group}]({png})", "",
               f"n = {n}, heads = {rows[0]['heads']}, d = {rows[0]['d']}; errors, bound and prob. row L1 on "
               f"{checked}:", "",
               f"| setting | error | max abs | prob. row L1 ({checked}, head 0) | bound ({checked}) | speedup | ms "
               "| spread | GFLOP/s (exact-eq.) | extra MiB | beats mean(V) |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for spec, a in entries:
            if spec == "mean(V)":
                md.append(f"| mean(V) baseline | {fmt(a['rel_fro'])} | | | | | | | | | |")
            elif a["unsupported"]:
                md.append(f"| `{spec}` | {a['unsupported'][:70]} | | | | | | | | | |")
            else:
                bound = {True: "holds", False: "**violated**", None: "–"}[a["bound_holds"]]
                beats = "✓" if a["beats_baseline"] else "✗"
                spread = fmt(a["spread"], "{:.2f}") + (" **noisy**" if noisy(a) else "")
                name = spec if is_peer(a) else f"`{spec}`"
                md.append(f"| {name} | {fmt(a['rel_fro'])} | {fmt(a['max_abs'])} | {fmt(a['prob_l1'])} | {bound} | "
                          f"{fmt(a['speedup'], '{:.2f}')}× | {fmt(a['ms_best'], '{:.2f}')} | {spread} | "
                          f"{fmt(a['gflops'], '{:.1f}')} | {fmt(a['peak_extra_mib'], '{:.1f}')} | {beats} |")
        md.append("")
        if any(spec.startswith("linformer") for spec, _ in entries):
            md += [LINFORMER_NOTE, ""]

    # Budgets: fastest setting whose error is within each budget, per group, at the largest n.
    md += ["## Fastest setting within an error budget", "",
           "At the largest n of each input group; relative Frobenius error vs reference.", "",
           "| input | n | " + " | ".join(f"error ≤ {b:g}" for b in BUDGETS) + " |",
           "|---|---|" + "---|" * len(BUDGETS)]
    for group in groups:
        n = max(nn for (g, nn, s) in agg if g == group)
        cells = []
        for b in BUDGETS:
            cands = [(a["speedup"], s) for (g, nn, s), a in agg.items()
                     if g == group and nn == n and setting(a) and a["rel_fro"] is not None and a["rel_fro"] <= b
                     and a["speedup"]]
            if cands:
                sp, s = max(cands)
                cells.append(f"`{s}` ({sp:.1f}×)")
            else:
                cells.append("none")
        md.append(f"| {group} | {n} | " + " | ".join(cells) + " |")
    md.append("")

    # Break-even n. A setting is faster than exact at n only if both estimates say so: best time
    # vs exact's best and median vs exact's median, each by BREAK_EVEN; it breaks even at the
    # smallest n of the suite from which it is faster at that n and at every larger n.
    gauss = "gaussian" if "gaussian" in groups else groups[0]
    gauss_ns = sorted({n for (g, n, s) in agg if g == gauss})
    md += ["## Break-even sequence length", "",
           f"Smallest n of the suite from which each setting runs at least {BREAK_EVEN:g}× faster than `exact` "
           "at that n and every larger one, by best time and by median time alike (gaussian inputs; speed "
           "depends little on the values except for clustered attention). Cells: speedup by best time; "
           f"~ marks a noisy case (spread > {NOISY:g}, this setting's or exact's). *Error there* is the "
           "setting's relative error at its break-even n: being faster says nothing about being useful.", "",
           "| setting | break-even n | error there | " + " | ".join(f"n = {n}" for n in gauss_ns) + " |",
           "|---|---|---|" + "---|" * len(gauss_ns)]

    def faster(a, ex):
        if not (a and ex and setting(a) and a.get("ms_best") and ex.get("ms_best")):
            return False
        by_best = ex["ms_best"] / a["ms_best"] >= BREAK_EVEN
        by_median = (a.get("ms_median") and ex.get("ms_median")
                     and ex["ms_median"] / a["ms_median"] >= BREAK_EVEN)
        return bool(by_best and by_median)

    for spec in sorted({s for (g, n, s), a in agg.items() if g == gauss and setting(a) and s != "exact"}):
        # Only the sizes the setting ran at (a suite may cap it, as max_n does): no claim past them.
        measured = [n for n in gauss_ns if agg.get((gauss, n, spec))] or gauss_ns
        fast = [faster(agg.get((gauss, n, spec)), agg.get((gauss, n, "exact"))) for n in measured]
        be = next((n for i, n in enumerate(measured) if all(fast[i:])), None)
        capped = f" (run up to n = {measured[-1]})" if measured[-1] != gauss_ns[-1] else ""
        cells = []
        for n in gauss_ns:
            a, ex = agg.get((gauss, n, spec)), agg.get((gauss, n, "exact"))
            if not (a and setting(a) and a.get("speedup")):
                cells.append("–")
                continue
            cells.append(fmt(a["speedup"], "{:.2f}") + "×" + (" ~" if noisy(a) or (ex and noisy(ex)) else ""))
        err = fmt(agg[(gauss, be, spec)]["rel_fro"]) if be else "–"
        md.append(f"| `{spec}` | {(str(be) if be else '> ' + str(measured[-1])) + capped} | {err} | "
                  + " | ".join(cells) + " |")
    md.append("")

    # Peers: what a user would otherwise run, timed in this run on the same inputs and threads.
    peer_rows = [a for a in agg.values() if is_peer(a)]
    if peer_rows or meta.get("peers"):
        pns = sorted({a["n"] for a in peer_rows})
        md += ["## Peers: exact attention outside attnkit", "",
               "The same inputs, timed in the same run with the same thread count "
               f"({meta.get('threads', '?')}): `numpy (unfused)` is softmax(s·QKᵀ)V with numpy's matmul (its "
               "OpenBLAS) on the whole score matrix; `torch … (math)` is PyTorch's matmul / softmax / matmul "
               "(reports/peers.py). Only up to "
               f"n = {meta.get('peers_max_n', 4096)}: both hold the n×n scores of every head. Cells: best ms "
               "(time ÷ `exact`'s time; ~ noisy).", ""]
        if meta.get("peers"):
            md += [f"Note: {meta['peers']}.", ""]
        if pns:
            md += ["| input | setting | " + " | ".join(f"n = {n}" for n in pns) + " |",
                   "|---|---|" + "---|" * len(pns)]
            for group in groups:
                labels = sorted({s for (g, n, s), a in agg.items() if g == group and is_peer(a) and ok(a)})
                if not labels:
                    continue
                for spec in ["exact"] + labels:
                    cells = []
                    for n in pns:
                        a, ex = agg.get((group, n, spec)), agg.get((group, n, "exact"))
                        if not (a and ok(a) and a.get("ms_best")):
                            cells.append("–")
                            continue
                        cell = fmt(a["ms_best"], "{:.2f}") + " ms"
                        if spec != "exact" and ex and ex.get("ms_best"):
                            cell += f" ({a['ms_best'] / ex['ms_best']:.2f}×)"
                        cells.append(cell + (" ~" if noisy(a) else ""))
                    name = f"`{spec}`" if spec == "exact" else spec
                    md.append(f"| {group} | {name} | " + " | ".join(cells) + " |")
            md.append("")

    md += ["## Scaling", ""]
    if plot_scaling(agg, gauss, os.path.join(out, "time_vs_n.png"), "ms_best", "time (ms)", True):
        md += ["![time vs n](time_vs_n.png)", ""]
    if plot_scaling(agg, gauss, os.path.join(out, "memory_vs_n.png"), "peak_extra_mib", "peak extra memory (MiB)", False):
        md += ["![memory vs n](memory_vs_n.png)", "",
               "Peak extra memory is the growth of the process's peak resident set during one forward call "
               "(Linux /proc/self/clear_refs), beyond inputs and output.", ""]
    md += headroom_section(rows)
    md += ["## Raw data", "", "`results.jsonl` (one JSON object per case), `results.csv`, `meta.json`.", ""]
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(md))
    print(os.path.join(out, "REPORT.md"))


if __name__ == "__main__":
    main()
