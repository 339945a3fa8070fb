"""No silent copies: strided views used in place, other layouts and dtypes refused; threads; GIL."""
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import attnkit
from conftest import bits_equal, default_specs, qkv


def bnhd_views(seed, B=2, N=128, H=4, D=32):
    """q, k, v stored [B,N,H,D] (as a projection writes them), viewed as [B,H,N,D]."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((B, N, H, D), dtype=np.float32).transpose(0, 2, 1, 3) for _ in range(3)]


@pytest.mark.parametrize("spec", default_specs())
def test_strided_view_same_result(spec):
    q, k, v = bnhd_views(10)
    assert not q.flags.c_contiguous
    got = attnkit.attention(q, k, v, spec)
    want = attnkit.attention(*(np.ascontiguousarray(a) for a in (q, k, v)), spec)
    assert bits_equal(got, want)


def test_strided_view_not_copied_tracemalloc():
    q, k, v = bnhd_views(11, B=2, N=1024, H=4, D=64)  # 2 MiB each
    attnkit.attention(q, k, v)  # warm up (thread pools, lazy imports)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = attnkit.attention(q, k, v)
        peak = tracemalloc.get_traced_memory()[1] - before
        # the output is the only new array; a copy of any input would add another 2 MiB
        assert peak <= out.nbytes + 64 * 1024, (peak, out.nbytes)
        # ...as it does when copying is asked for on a layout that needs it (the check can fail)
        q2 = np.ascontiguousarray(q)[..., ::2]
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out2 = attnkit.attention(q2, k[..., ::2], v, copy=True)
        assert tracemalloc.get_traced_memory()[1] - before >= out2.nbytes + q2.nbytes
    finally:
        tracemalloc.stop()


def test_strided_view_not_copied_rss():
    # The library side too (tracemalloc sees only Python allocations): the peak resident memory of
    # a fresh process does not grow by the size of a 64 MiB strided K when attending over it.
    script = textwrap.dedent("""
        import sys, numpy as np, attnkit
        def peak_kib():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        copy = sys.argv[1] == "copy"
        n = 1 << 18
        k = np.full((1, n, 4, 16), 0.5, np.float32).transpose(0, 2, 1, 3)  # 64 MiB, no temporaries
        if copy:
            k = k[..., ::-1]  # negative last-axis stride: usable only as a copy
        v = np.full((1, 4, n, 1), 0.25, np.float32)
        q = np.full((1, 4, 4, 16), 0.1, np.float32)
        attnkit.attention(q[:, :, :1], k[:, :, :8], v[:, :, :8], copy=copy)  # warm up
        before = peak_kib()
        attnkit.attention(q, k, v, copy=copy)
        print(peak_kib() - before)
    """)
    growth = {}
    for mode in ("view", "copy"):
        r = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        growth[mode] = int(r.stdout.split()[-1])  # KiB
    assert growth["view"] < 16 * 1024, growth
    assert growth["copy"] >= 60 * 1024, growth  # the measurement does see a copy


@pytest.mark.parametrize("bad", ["step", "negative", "fortran"])
def test_unusable_layout_refused_unless_copy(bad):
    q, k, v = qkv(seed=12, B=1, H=2, n=32, d=16)
    qq = {"step": np.repeat(q, 2, axis=-1)[..., ::2], "negative": q[..., ::-1].copy()[..., ::-1],
          "fortran": np.asfortranarray(q)}[bad]
    assert np.array_equal(qq, q)
    with pytest.raises(ValueError, match="q: .*stride"):
        attnkit.attention(qq, k, v)
    assert bits_equal(attnkit.attention(qq, k, v, copy=True), attnkit.attention(q, k, v))


def test_float64_is_type_error():
    q, k, v = qkv(seed=13)
    for i, name in enumerate("qkv"):
        args = [q, k, v]
        args[i] = args[i].astype(np.float64)
        with pytest.raises(TypeError, match=f"{name}: dtype float64; expected float32"):
            attnkit.attention(*args)
    with pytest.raises(TypeError, match="out: dtype float64"):
        attnkit.attention(q, k, v, out=np.zeros(q.shape, np.float64))
    with pytest.raises(TypeError, match="q: list"):
        attnkit.attention(q.tolist(), k, v)
    with pytest.raises(TypeError, match="k: dtype int32"):
        attnkit.attention(q, k.astype(np.int32), v)
    # copy=True converts, to the same result as converting first
    assert bits_equal(attnkit.attention(q.astype(np.float64), k, v, copy=True), attnkit.attention(q, k, v))
    # ... real data only: numpy would drop an imaginary part with just a warning
    with pytest.raises(TypeError, match="q: dtype complex64; expected real numbers"):
        attnkit.attention(q.astype(np.complex64), k, v, copy=True)
    with pytest.raises(TypeError, match="v: dtype complex128; expected real numbers"):
        attnkit.attention(q, k, (v + 1j).tolist(), copy=True)


@pytest.mark.parametrize("case,pattern", [
    ("rank5", "q: rank 5"),
    ("rank1", "k: rank 1"),
    ("k_dim", "k: dim is 8; expected 16"),
    ("v_seq", "v: seq is 10; expected 64"),
    ("v_batch", "v: batch is 1; expected 2"),
    ("heads", "k: heads is 3; expected a divisor"),
    ("out_shape", "out: dim is 4; expected 16"),
    ("lengths_count", "key_lengths: 3 entries; expected 2"),
    ("lengths_empty", r"key_lengths: 0 entries; expected 2 \(one per batch; None for no padding\)"),
    ("lengths_empty_array", "key_lengths: 0 entries; expected 2"),
    ("lengths_range", r"key_lengths\[1\]: 65; expected a value in \[0, 64\]"),
    ("scale", "scale: -1; expected a finite value > 0"),
    ("threads", "threads: 0; expected 1..4096"),
    ("empty", "q: seq size is 0; expected >= 1"),
    ("spec", "nope"),
    ("spec_key", "window"),
])
def test_bad_input_is_value_error_naming_argument(case, pattern):
    q, k, v = qkv(seed=14, B=2, H=2, n=64, d=16)
    kw = {}
    args = [q, k, v]
    spec = "exact"
    if case == "rank5":
        args[0] = q[None]
    elif case == "rank1":
        args[1] = k.reshape(-1)
    elif case == "k_dim":
        args[1] = k[..., :8]
    elif case == "v_seq":
        args[2] = v[:, :, :10]
    elif case == "v_batch":
        args[2] = v[:1]
    elif case == "heads":
        args = [np.concatenate([q, q], 1), np.concatenate([k, k[:, :1]], 1), np.concatenate([v, v[:, :1]], 1)]
    elif case == "out_shape":
        kw["out"] = np.zeros(q.shape[:-1] + (4,), np.float32)
    elif case == "lengths_count":
        kw["key_lengths"] = [1, 2, 3]
    elif case == "lengths_empty":
        kw["key_lengths"] = []
    elif case == "lengths_empty_array":
        kw["key_lengths"] = np.zeros(0, np.int32)
    elif case == "lengths_range":
        kw["key_lengths"] = [3, 65]
    elif case == "scale":
        kw["scale"] = -1.0
    elif case == "threads":
        kw["threads"] = 0
    elif case == "empty":
        args[0] = q[:, :, :0]
    elif case == "spec":
        spec = "nope"
    elif case == "spec_key":
        spec = "local:windw=3"
    with pytest.raises(ValueError, match=pattern):
        attnkit.attention(*args, spec, **kw)


def test_library_errors_are_attnkit_error():
    q, k, v = qkv(seed=15)
    assert issubclass(attnkit.Error, ValueError)
    with pytest.raises(attnkit.Error, match="causal"):
        attnkit.attention(q, k, v, "clustered", causal=True)
    with pytest.raises(TypeError, match=r"key_lengths\[0\]: float"):
        attnkit.attention(q, k, v, key_lengths=[1.5, 2])
    with pytest.raises(TypeError, match="key_lengths: dtype float32"):
        attnkit.attention(q, k, v, key_lengths=np.ones(2, np.float32))
    with pytest.raises(ValueError, match="out: read-only"):
        o = np.zeros(q.shape, np.float32)
        o.setflags(write=False)
        attnkit.attention(q, k, v, out=o)
    with pytest.raises(ValueError, match="out: overlaps q"):
        attnkit.attention(q, k, v, out=q)


@pytest.mark.parametrize("spec", default_specs())
def test_four_threads_equal_serial(spec):
    inputs = [qkv(seed=20 + i, B=2, H=4, n=256, d=32) for i in range(4)]
    backend = attnkit.Backend(spec)
    serial = [attnkit.attention(*x, spec) for x in inputs]
    results = [[None] * 3 for _ in inputs]
    barrier = threading.Barrier(4)
    errors = []

    def work(i):
        try:
            barrier.wait()
            for r in range(3):  # spec string and shared Backend object, interleaved
                results[i][r] = backend.forward(*inputs[i]) if r % 2 else attnkit.attention(*inputs[i], spec)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(4):
        for r in range(3):
            assert bits_equal(results[i][r], serial[i]), (i, r)


def test_gil_released_during_compute():
    q, k, v = qkv(seed=30, B=1, H=4, n=1024, d=64)
    t0 = time.perf_counter()
    attnkit.reference(q, k, v, threads=1)
    alone = time.perf_counter() - t0
    done = threading.Event()

    def compute():
        attnkit.reference(q, k, v, threads=1)
        done.set()

    t = threading.Thread(target=compute)
    ticks = 0
    t.start()
    while not done.is_set():  # pure Python work: progresses only if the GIL is free
        ticks += 1
        time.sleep(0)
    t.join()
    # holding the GIL for the whole call would leave this loop a handful of iterations
    assert alone > 0.01 and ticks > 100, (alone, ticks)
