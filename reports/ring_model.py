#!/usr/bin/python3
"""Scaling model of ring attention (docs/distributed.md) from measured figures.

Per ring step a rank attends its b = n/P queries to one block of b keys and, at the same time,
forwards that K/V block (2·B·H_kv·b·d float32) to the next rank:
    T_c(b) = 4·B·H·b²·d·f / (R(b)·c)        f = 1 (full) or 1/2 (causal, zigzag-balanced)
    T_m(b) = α + 8·B·H_kv·b·d / β           α latency, β link bandwidth (bytes/s)
The exchange is non-blocking, so a step costs max(T_c, T_m); the last of the P steps sends
nothing. Efficiency against P ranks computing without communication:
    E = P·T_c / ((P − 1)·max(T_c, T_m) + T_c)
Communication hides behind compute once T_c >= T_m, i.e. (α aside)
    b >= 2·R·c·H_kv / (f·H·β)      rows per rank: d and the batch cancel.
R(b) is the exact engine's measured per-core rate for a b x b block (interpolated in log b);
c cores per rank are assumed to scale linearly (2 threads measured here: see the doc).

Usage: ring_model.py --rate B:GFLOPS ... --cores C --latency-us A [--heads H --kv-heads G --d D]
Prints Markdown tables.
"""
import argparse
import math


def rate_at(rates, b):
    """Per-core FLOP/s at block size b: log-linear interpolation, clamped at the ends."""
    pts = sorted(rates)
    if b <= pts[0][0]:
        return pts[0][1]
    if b >= pts[-1][0]:
        return pts[-1][1]
    for (b0, r0), (b1, r1) in zip(pts, pts[1:]):
        if b0 <= b <= b1:
            t = (math.log(b) - math.log(b0)) / (math.log(b1) - math.log(b0))
            return r0 + t * (r1 - r0)
    raise AssertionError


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", action="append", required=True,
                    help="BLOCK:GFLOPS, the exact engine's 1-thread rate on a BLOCK x BLOCK problem (repeatable)")
    ap.add_argument("--cores", type=int, default=1, help="cores (threads) per rank")
    ap.add_argument("--latency-us", type=float, required=True, help="one-way MPI latency")
    ap.add_argument("--loopback-gbytes", type=float, default=None, help="measured loopback bandwidth, GB/s (extra column)")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--d", type=int, default=64)
    args = ap.parse_args()
    rates = [(int(s.split(":")[0]), float(s.split(":")[1]) * 1e9) for s in args.rate]
    links = [("25 Gb/s", 25e9 / 8), ("100 Gb/s", 100e9 / 8)]
    if args.loopback_gbytes:
        links.append((f"loopback {args.loopback_gbytes:g} GB/s", args.loopback_gbytes * 1e9))
    alpha = args.latency_us * 1e-6
    H, G, d, c = args.heads, args.kv_heads, args.d, args.cores

    def times(b, f, beta):
        tc = 4.0 * H * b * b * d * f / (rate_at(rates, b) * c)
        tm = alpha + 8.0 * G * b * d / beta
        return tc, tm

    print(f"H={H}, H_kv={G}, d={d}, latency {args.latency_us:g} us; per-core rate by block: "
          + ", ".join(f"{b}: {r / 1e9:.1f}" for b, r in sorted(rates)) + " GFLOP/s\n")
    print("E = efficiency with the exchange hidden behind compute (max(T_c, T_m) per step); "
          "E0 = with no overlap at all (T_c + T_m per step).\n")
    for causal in (False, True):
        f = 0.5 if causal else 1.0
        print(f"### {'causal (zigzag)' if causal else 'full (non-causal)'}, {c} core(s) per rank\n")
        print("| n | P | b = n/P | T_c per step | " + " | ".join(f"T_m, E, E0 at {name}" for name, _ in links) + " |")
        print("|---|---|---|---|" + "---|" * len(links))
        for n in (128 * 1024, 1024 * 1024, 8 * 1024 * 1024):
            for P in (8, 64, 512):
                b = n // P
                cells = []
                for _, beta in links:
                    tc, tm = times(b, f, beta)
                    e = P * tc / ((P - 1) * max(tc, tm) + tc)
                    e0 = P * tc / ((P - 1) * (tc + tm) + tc)
                    cells.append(f"{fmt_t(tm)}, {e:.2f}, {e0:.2f}")
                tc, _ = times(b, f, links[0][1])
                print(f"| {n // 1024}k | {P} | {b} | {fmt_t(tc)} | " + " | ".join(cells) + " |")
        print()
        hide = []
        for name, beta in links:
            b = 16
            while b < 1 << 26:
                tc, tm = times(b, f, beta)
                if tc >= tm:
                    break
                b += max(1, b // 64)
            hide.append(f"{name}: b >= {b}")
        print("Communication hides behind compute (T_c >= T_m) from " + "; ".join(hide) + " rows per rank.\n")


def fmt_t(s):
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


if __name__ == "__main__":
    main()
