#!/usr/bin/python3
"""Slice the trained-attention data (../shared/data/trained-attention, README there) for a heatmap.

    trained_slice.py --data DIR --window w0 --layer 2 --n 128 [--start 0] --prefix OUT

writes OUT_q.npy and OUT_k.npy ([1, 4, n, 64], positions start .. start+n-1 of the window) and,
when the window's source file is found (the CPython 3.11 standard library that the capture came
from, e.g. /usr/lib/python3.11), OUT_tokens.txt: one byte per line, the model's tokens, with
space, newline and tab shown as visible symbols. Then for example:

    attnkit weights --q OUT_q.npy --k OUT_k.npy --head 0 --causal --out W.npy --png W.png \
        --tokens OUT_tokens.txt
"""
import argparse
import json
import os
import sys

import numpy as np

VISIBLE = {ord(" "): "\u2423", ord("\n"): "\u21b5", ord("\t"): "\u21e5"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--window", default="w0")
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--stdlib", default="/usr/lib/python3.11")
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.data, "meta.json")))
    win = next((w for w in meta["windows"] if w["name"] == a.window), None)
    if win is None:
        sys.exit(f"trained_slice.py: --window {a.window}: expected one of {[w['name'] for w in meta['windows']]}")
    if not (0 <= a.start and a.n >= 1 and a.start + a.n <= win["n"]):
        sys.exit(f"trained_slice.py: --start {a.start} --n {a.n}: expected a range inside [0, {win['n']})")
    for part in ("q", "k"):
        x = np.load(os.path.join(a.data, f"{a.window}_layer{a.layer}_{part}.npy"))
        np.save(f"{a.prefix}_{part}.npy", np.ascontiguousarray(x[:, :, a.start:a.start + a.n, :]))
    src = os.path.join(a.stdlib, win["file"])
    if os.path.exists(src):
        data = open(src, "rb").read()
        off = win["byte_offset"] + a.start
        # The capture starts at a known line: check that this is the same file before labelling.
        if data[:win["byte_offset"]].count(b"\n") + 1 == win["line"]:
            with open(f"{a.prefix}_tokens.txt", "w", encoding="utf-8") as f:
                for byte in data[off:off + a.n]:
                    f.write(VISIBLE.get(byte, chr(byte) if 32 < byte < 127 else f"\\x{byte:02x}") + "\n")
        else:
            print(f"trained_slice.py: {src} differs from the captured file; no tokens written", file=sys.stderr)
    else:
        print(f"trained_slice.py: {src} not found; no tokens written", file=sys.stderr)


if __name__ == "__main__":
    main()
