"""attnkit.attention / reference / metrics: results against the CLI (bit for bit) and numpy."""
import numpy as np
import pytest

import attnkit
from conftest import bits_equal, default_specs, qkv, run_cli


def numpy_attention(q, k, v, causal=False, key_lengths=None, scale=None):
    """float64 attention of [B,H,n,d] arrays (GQA by repeating kv heads)."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    B, H, n, d = q.shape
    m = k.shape[2]
    k = np.repeat(k, H // k.shape[1], axis=1)
    v = np.repeat(v, H // v.shape[1], axis=1)
    s = (q @ k.transpose(0, 1, 3, 2)) * (1 / np.sqrt(d) if scale is None else scale)
    allowed = np.ones((B, 1, n, m), bool)
    if causal:
        allowed &= (np.arange(m)[None, :] <= np.arange(n)[:, None] + m - n)[None, None]
    if key_lengths is not None:
        allowed &= (np.arange(m)[None, :] < np.asarray(key_lengths)[:, None])[:, None, None, :]
    s = np.where(allowed, s, -np.inf)
    mx = s.max(-1, keepdims=True)
    p = np.where(allowed, np.exp(s - np.where(np.isfinite(mx), mx, 0)), 0)
    den = p.sum(-1, keepdims=True)
    return (p / np.where(den > 0, den, 1)) @ v


@pytest.mark.parametrize("spec", default_specs())
def test_bit_equal_to_cli(spec, cli, tmp_path):
    b = attnkit.Backend(spec)
    q, k, v = qkv(seed=1, B=2, H=2, n=80, d=16)
    assert bits_equal(attnkit.attention(q, k, v, spec), run_cli(cli, tmp_path, spec, q, k, v))
    assert bits_equal(b.forward(q, k, v), run_cli(cli, tmp_path, spec, q, k, v))


@pytest.mark.parametrize("spec", default_specs())
def test_bit_equal_to_cli_masked_cross_gqa(spec, cli, tmp_path):
    b = attnkit.Backend(spec)
    q, k, v = qkv(seed=2, B=2, H=4, n=48, n_k=72, h_kv=2, d=16, d_v=8)
    lengths = [72, 50]
    causal = b.capabilities["causal"]
    got = attnkit.attention(q, k, v, spec, causal=causal, key_lengths=lengths, scale=0.3)
    want = run_cli(cli, tmp_path, spec, q, k, v, causal=causal, key_lengths=lengths, scale=0.3)
    assert bits_equal(got, want)


@pytest.mark.parametrize("rank", [2, 3])
def test_lower_ranks_bit_equal_to_cli(rank, cli, tmp_path):
    q, k, v = qkv(seed=3, B=1, H=1 if rank == 2 else 3, n=40, d=8)
    q, k, v = (a.reshape(a.shape[4 - rank:]) for a in (q, k, v))
    got = attnkit.attention(q, k, v, "exact", causal=True)
    assert got.shape == q.shape[:-1] + (v.shape[-1],)
    assert bits_equal(got, run_cli(cli, tmp_path, "exact", q, k, v, causal=True))


def test_exact_and_reference_match_numpy():
    q, k, v = qkv(seed=4, B=2, H=4, n=33, n_k=57, h_kv=2, d=16, d_v=12)
    for causal, lengths in ((False, None), (True, [57, 20])):
        want = numpy_attention(q, k, v, causal, lengths)
        ref = attnkit.reference(q, k, v, causal=causal, key_lengths=lengths)
        ex = attnkit.attention(q, k, v, causal=causal, key_lengths=lengths)
        assert ref.dtype == np.float32 and ref.shape == want.shape
        assert np.abs(ref - want).max() <= 1e-6 * max(1.0, np.abs(want).max())
        assert np.linalg.norm(ex - want) <= 2e-6 * np.linalg.norm(want)


def test_fully_masked_rows_are_zero():
    q, k, v = qkv(seed=5, B=2, H=1, n=8, d=4)
    out = attnkit.attention(q, k, v, key_lengths=np.array([8, 0], np.int64))
    assert np.all(out[1] == 0) and np.any(out[0] != 0)


def test_out_buffer_written_in_place_strided():
    q, k, v = qkv(seed=6, B=2, H=3, n=20, d=8)
    store = np.full((2, 20, 3, 8), np.nan, np.float32)  # [B,N,H,D] storage, written as [B,H,N,D]
    view = store.transpose(0, 2, 1, 3)
    ret = attnkit.attention(q, k, v, out=view)
    assert ret is view
    assert bits_equal(np.ascontiguousarray(view), attnkit.attention(q, k, v))


def test_scale_and_threads():
    q, k, v = qkv(seed=7, B=1, H=2, n=64, d=16)
    base = attnkit.attention(q, k, v, scale=0.05)
    assert np.abs(base - numpy_attention(q, k, v, scale=0.05)).max() < 1e-5
    for t in (1, 2, 3):  # every thread count gives the same bits
        assert bits_equal(attnkit.attention(q, k, v, scale=0.05, threads=t), base)
    for t in (0, 4097, 100000):  # 100000 crashed the interpreter inside libgomp
        with pytest.raises(ValueError, match="threads"):
            attnkit.attention(q, k, v, threads=t)
    # threads=None with OMP_NUM_THREADS far past the range: refused in a fresh interpreter too
    import os, subprocess, sys
    code = "import numpy as np, attnkit; q = np.ones((1, 1, 4, 4), np.float32); attnkit.attention(q, q, q)"
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, OMP_NUM_THREADS="100000"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "OMP_NUM_THREADS" in r.stderr and "at most 4096" in r.stderr, r.stderr[-500:]


def test_one_row_axes_and_broadcast_keys_reach_blas_backends_correctly():
    # A size-1 axis gets stride 0 in the module's layout, and np.broadcast_to gives a zero sequence
    # stride: both went to BLAS as its leading dimension (an illegal call: SystemError / zeros).
    rng = np.random.default_rng(12)
    q1 = rng.standard_normal((1, 2, 1, 8)).astype(np.float32)
    q, k, v = (rng.standard_normal((1, 2, 16, 8)).astype(np.float32) for _ in range(3))
    # One query row: its output is row 0 of the same query given twice (these backends treat rows
    # independently without a mask).
    for spec in ("performer", "linear", "topk:k=4"):
        got = attnkit.attention(q1, k, v, spec)
        want = attnkit.attention(np.repeat(q1, 2, axis=2), k, v, spec)[:, :, :1]
        assert np.abs(got - want).max() <= 1e-5, spec
    # Keys broadcast along the sequence: the same as a materialised copy.
    kb = np.broadcast_to(rng.standard_normal((1, 2, 1, 8)).astype(np.float32), (1, 2, 16, 8))
    for spec in ("performer", "linear", "topk:k=4", "lsh:buckets=2,chunk=2", "clustered:clusters=2,topk=2"):
        got = attnkit.attention(q, kb, v, spec)
        want = attnkit.attention(q, np.ascontiguousarray(kb), v, spec)
        assert np.abs(got - want).max() <= 1e-5, spec


def test_backend_argument_object_or_spec():
    q, k, v = qkv(seed=8)
    b = attnkit.Backend("local:window=8")
    assert bits_equal(attnkit.attention(q, k, v, b), attnkit.attention(q, k, v, "local:window=8"))
    with pytest.raises(TypeError, match="backend"):
        attnkit.attention(q, k, v, 3)


def test_metrics_match_numpy():
    q, k, v = qkv(seed=9, n=32)
    a = attnkit.attention(q, k, v, "linear")
    r = attnkit.reference(q, k, v)
    m = attnkit.metrics(a, r)
    d = a.astype(np.float64) - r
    assert m["max_abs"] == pytest.approx(np.abs(d).max(), rel=1e-12)
    assert m["rel_fro"] == pytest.approx(np.linalg.norm(d) / np.linalg.norm(r.astype(np.float64)), rel=1e-9)
    assert m["mean_row_l2"] == pytest.approx(np.linalg.norm(d, axis=-1).mean(), rel=1e-9)
    with pytest.raises(ValueError):
        attnkit.metrics(a, r[:, :, :16])
