#!/usr/bin/python3
"""Speed of the low-rank family against exact (issue 16's acceptance): H = 4, d = 64, batch 1,
gaussian inputs, 2 threads, best of --repeat runs of `attnkit run`, all in one run.

usage: lowrank_speed.py ATTNKIT [--work DIR] [--repeat 3] [--exact-repeat 2]

exact is timed at n = 16384 only (at 32768 it takes minutes on 2 cores); the low-rank specs at
16384 and 32768. Prints a Markdown table: ms (best), speed-up over exact at 16384, t(32768)/t(16384).
"""
import argparse
import json
import os
import subprocess
import tempfile

SPECS = ("nystrom:landmarks=64", "nystrom:landmarks=256", "linformer:k=256")
NS = (16384, 32768)


def best_ms(attnkit, spec, prefix, work, repeat):
    r = subprocess.run([attnkit, "run", "--backend", spec, "--q", prefix + "_q.npy", "--k", prefix + "_k.npy", "--v",
                        prefix + "_v.npy", "--out", os.path.join(work, "out.npy"), "--threads", "2", "--repeat",
                        str(repeat), "--json"], check=True, capture_output=True, text=True)
    return json.loads(r.stdout)["ms_best"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("attnkit")
    ap.add_argument("--work", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--exact-repeat", type=int, default=2)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="lowrank_speed_")
    os.makedirs(work, exist_ok=True)
    prefix = {}
    for n in NS:
        prefix[n] = os.path.join(work, f"g{n}")
        if not os.path.exists(prefix[n] + "_v.npy"):
            subprocess.run([a.attnkit, "gen", "--family", "gaussian", "--batch", "1", "--heads", "4", "--n", str(n),
                            "--d", "64", "--seed", "1", "--prefix", prefix[n]], check=True, stdout=subprocess.DEVNULL)
    exact = best_ms(a.attnkit, "exact", prefix[16384], work, a.exact_repeat)
    print(f"| backend | ms n=16384 | ms n=32768 | speed-up vs exact (n=16384, exact {exact:.0f} ms) | t(32768)/t(16384) |")
    print("|---|---|---|---|---|")
    for spec in SPECS:
        t = {n: best_ms(a.attnkit, spec, prefix[n], work, a.repeat) for n in NS}
        print(f"| `{spec}` | {t[16384]:.1f} | {t[32768]:.1f} | {exact / t[16384]:.1f}x | {t[32768] / t[16384]:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
