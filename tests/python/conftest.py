"""Shared helpers of the Python module's tests (run by `meson test python`, which puts the built
module on PYTHONPATH and the CLI's path in ATTNKIT_CLI)."""
import os
import subprocess

import numpy as np
import pytest

import attnkit


def randn(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def qkv(seed=0, B=2, H=2, n=64, d=16, n_k=None, h_kv=None, d_v=None):
    """Random float32 q [B,H,n,d], k [B,H_kv,n_k,d], v [B,H_kv,n_k,d_v]."""
    rng = np.random.default_rng(seed)
    n_k = n if n_k is None else n_k
    h_kv = H if h_kv is None else h_kv
    d_v = d if d_v is None else d_v
    return randn(rng, B, H, n, d), randn(rng, B, h_kv, n_k, d), randn(rng, B, h_kv, n_k, d_v)


def bits_equal(a, b):
    """Same shape and the same float32 bit patterns (NaN-safe, -0 != +0)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def default_specs():
    """One default spec per backend of this build, plus settings whose approximation bites at the
    small sizes of these tests."""
    names = [b["name"] for b in attnkit.backends()]
    extra = {"local": "local:window=16,global=2", "performer": "performer:features=32,seed=3",
             "clustered": "clustered:clusters=8,topk=4"}
    return names + [extra[n] for n in names if n in extra]


@pytest.fixture(scope="session")
def cli():
    exe = os.environ.get("ATTNKIT_CLI")
    if not exe or not os.access(exe, os.X_OK):
        pytest.fail("ATTNKIT_CLI must name the built attnkit executable (meson test sets it)")
    return exe


def run_cli(exe, tmp_path, spec, q, k, v, causal=False, key_lengths=None, scale=None):
    """`attnkit run` on the same arrays; returns its output array."""
    args = [exe, "run", "--backend", spec]
    for name, a in (("q", q), ("k", k), ("v", v)):
        path = tmp_path / f"{name}.npy"
        np.save(path, np.ascontiguousarray(a))
        args += [f"--{name}", str(path)]
    out = tmp_path / "out.npy"
    args += ["--out", str(out)]
    if causal:
        args.append("--causal")
    if key_lengths is not None:
        path = tmp_path / "lengths.npy"
        np.save(path, np.asarray(key_lengths, np.int32))
        args += ["--key-lengths", str(path)]
    if scale is not None:
        args += ["--scale", repr(scale)]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return np.load(out)
