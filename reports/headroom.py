"""Headroom table of content-adaptive sparse attention (issue 15), for make_report.py.

For each real input (family "trained", causal and not) and each key budget K of the suite: the
error and speedup of `local:window=K` (fixed window), `topk:k=K` (the row-sparse oracle),
`pruned:keep=K` (dynamic tile pruning) and `lsh` at a comparable budget (rounds x 2 chunk keys
per query = K), next to the mean(V) baseline; then the mean over the inputs of each mask.
"""
import re

# Defaults of the specs (attnkit/adaptive.hpp), for labels that leave them out.
_LSH_DEFAULTS = {"rounds": 4, "chunk": 64}
_PRUNED_DEFAULT_KEEP = 1024


def _params(label):
    """'name:a=1,b=x' -> (name, {'a': '1', 'b': 'x'})."""
    name, _, rest = label.partition(":")
    kv = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
    return name, kv


def budget_of(label):
    """(kind, key budget) of a label, or None: kind is local, topk, pruned or lsh."""
    name, kv = _params(label)
    try:
        if name == "local" and set(kv) == {"window"}:
            return "local", int(kv["window"])
        if name == "topk" and "k" in kv:
            return "topk", int(kv["k"])
        if name == "pruned":
            return "pruned", int(kv.get("keep", _PRUNED_DEFAULT_KEEP))
        if name == "lsh":
            r = int(kv.get("rounds", _LSH_DEFAULTS["rounds"]))
            c = int(kv.get("chunk", _LSH_DEFAULTS["chunk"]))
            return "lsh", r * 2 * c
    except ValueError:
        return None
    return None


KINDS = ("local", "topk", "pruned", "lsh")


def _fmt(x, spec="{:.3f}"):
    return "–" if x is None else spec.format(x)


def headroom_section(rows):
    """Markdown lines of the headroom section ([] when the results hold no real inputs)."""
    real = [r for r in rows if r.get("family") == "trained"]
    if not real:
        return []
    label = lambda r: r.get("label") or r["spec"]  # noqa: E731
    # (input, causal) -> kind -> budget -> record (first setting of that kind and budget)
    table, baseline, chosen = {}, {}, {}
    for r in real:
        key = (r["input"], r["causal"])
        if label(r) == "mean(V)":
            baseline[key] = r.get("rel_fro")
            continue
        kb = budget_of(label(r))
        if kb is None or r["status"] != "ok":
            continue
        kind, k = kb
        spec = chosen.setdefault((kind, k), label(r))
        if spec != label(r):
            continue
        table.setdefault(key, {}).setdefault(kind, {})[k] = r
    budgets = sorted({k for per in table.values() for k in per.get("local", {})
                      if any(k in per.get(kind, {}) for kind in KINDS[1:])})
    if not budgets:
        return []
    md = ["## Content-adaptive headroom (real inputs)", "",
          "Relative Frobenius error (speedup over `exact` in the same run) at the same key budget K per "
          "query: the fixed window `local:window=K`, the row-sparse oracle `topk:k=K` (every score computed: "
          "not a speedup), dynamic tile pruning `pruned:keep=K` and Reformer-style `lsh` with rounds × 2·chunk "
          "= K keys per query. Settings: " + ", ".join(f"`{chosen[(kind, k)]}`" for k in budgets for kind in KINDS
                                                         if (kind, k) in chosen) + ".", ""]
    for k in budgets:
        md += [f"### Budget K = {k}", "",
               "| input | mask | mean(V) | " + " | ".join(f"`{chosen.get((kind, k), kind)}`" for kind in KINDS) + " |",
               "|---|---|---|" + "---|" * len(KINDS)]
        sums = {}
        for (inp, causal) in sorted(table, key=lambda t: (not t[1], t[0])):
            per = table[(inp, causal)]
            cells = []
            for kind in KINDS:
                r = per.get(kind, {}).get(k)
                if r is None:
                    cells.append("–")
                    continue
                cells.append(f"{_fmt(r.get('rel_fro'))} ({_fmt(r.get('speedup'), '{:.1f}')}×)")
                s = sums.setdefault((causal, kind), [0.0, 0.0, 0])
                s[0] += r.get("rel_fro") or 0.0
                s[1] += r.get("speedup") or 0.0
                s[2] += 1
            b = baseline.get((inp, causal))
            sb = sums.setdefault((causal, "mean(V)"), [0.0, 0.0, 0])
            if b is not None:
                sb[0] += b
                sb[2] += 1
            md.append(f"| {inp} | {'causal' if causal else 'non-causal'} | {_fmt(b)} | " + " | ".join(cells) + " |")
        for causal in (True, False):
            cells = []
            for kind in KINDS:
                s = sums.get((causal, kind))
                cells.append(f"**{s[0] / s[2]:.3f}** ({s[1] / s[2]:.1f}×)" if s and s[2] else "–")
            sb = sums.get((causal, "mean(V)"))
            mv = f"{sb[0] / sb[2]:.3f}" if sb and sb[2] else "–"
            md.append(f"| **mean** | {'causal' if causal else 'non-causal'} | {mv} | " + " | ".join(cells) + " |")
        md.append("")
    return md
