"""examples/compare.py runs every backend of the build on a Q/K/V triple and writes its plot."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import attnkit
from conftest import qkv

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "compare.py")


def test_compare_example(tmp_path):
    causal = True  # every path at once: a backend without a causal mask is reported unsupported
    pytest.importorskip("matplotlib")
    paths = []
    for name, a in zip("qkv", qkv(seed=60, B=1, H=2, n=192, d=16)):
        paths += [f"--{name}", str(tmp_path / f"{name}.npy")]
        np.save(paths[-1], a)
    png = tmp_path / "plot.png"
    args = [sys.executable, EXAMPLE, *paths, "--repeat", "1", "--png", str(png)] + (["--causal"] if causal else [])
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for b in attnkit.backends():
        if b["name"] == "reference":
            continue
        line = next(l for l in r.stdout.splitlines() if re.match(re.escape(b["name"]) + r"[:\s]", l))
        assert ("unsupported" in line) == (causal and not b["capabilities"]["causal"]), line
    exact = next(l for l in r.stdout.splitlines() if l.startswith("exact:")).split()
    assert exact[2] == "1.00x" and float(exact[3]) < 1e-5
    assert png.stat().st_size > 10000
