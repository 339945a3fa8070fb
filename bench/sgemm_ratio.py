#!/usr/bin/env python3
"""Ratios of a benchmark run to the sgemm ceiling measured in the same run.

    OMP_NUM_THREADS=2 build/bench/bench_exact --benchmark_format=json > run.json
    bench/sgemm_ratio.py run.json          (or pipe the JSON on stdin)

Works for every suite of bench/ (one harness, bench/common.hpp). Prints, for every benchmark with
a GFLOPS counter, GFLOP/s and GFLOP/s / sgemm 2048^3 GFLOP/s, using the exact-equivalent count
(attnkit::exact_equivalent_flops, causal mask counted) where there is one; the causal / non-causal time ratio; and the
harness's speedup over exact and relative Frobenius error against exact where it measured them.
"""
import json
import sys


def main() -> None:
    data = json.load(open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin)
    ctx = data.get("context", {})
    runs = [b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    ceiling = [b["GFLOPS"] for b in runs if "sgemm_ceiling" in b["name"]]
    if not ceiling:
        sys.exit("no sgemm_ceiling in this run")
    sgemm = max(ceiling)
    print(f"simd={ctx.get('attnkit_simd', '?')} openblas_core={ctx.get('openblas_core', '?')} "
          f"threads={ctx.get('omp_threads', '?')} sgemm 2048^3 = {sgemm:.1f} GFLOP/s")
    times = {b["name"]: b["real_time"] for b in runs}
    print(f"{'benchmark':45s} {'ms':>10s} {'GFLOP/s':>9s} {'/sgemm':>7s} {'speedup':>8s} {'rel_fro':>9s} "
          f"{'causal/full time':>17s}")
    for b in runs:
        gf = b.get("GFLOPS_exact_eq", b.get("GFLOPS"))
        if gf is None or "sgemm_ceiling" in b["name"]:
            continue
        name = b["name"].replace("/real_time", "")
        extra = ""
        if "causal:1" in name:
            full = times.get(b["name"].replace("causal:1", "causal:0"))
            if full:
                extra = f"{b['real_time'] / full:17.2f}"
        mem = f"  extra {b['extra_MiB']:.1f} MiB" if "extra_MiB" in b else ""
        sp = b.get("speedup_vs_exact")
        speedup = f"{sp:8.2f}" if sp is not None else f"{'-':>8s}"
        rf = b.get("rel_fro")
        rel = f"{rf:9.2e}" if rf is not None else f"{'-':>9s}"
        print(f"{name:45s} {b['real_time']:10.1f} {gf:9.1f} {gf / sgemm:7.3f} {speedup} {rel} {extra}{mem}")


if __name__ == "__main__":
    main()
