"""attnkit.Decoder: token-by-token decoding against the causal forward and an fp64 reference, every
storage and decode backend, bad input, out= buffers, and the one-thread-at-a-time guard."""
import threading
import time

import numpy as np
import pytest

import attnkit
from conftest import bits_equal, randn

if not hasattr(attnkit, "Decoder"):
    pytest.skip("the decode family is not built (-Ddecode=disabled)", allow_module_level=True)

BACKENDS = {b["name"] for b in attnkit.backends()}
KERNELIZED = {"performer", "linear"} <= BACKENDS


def seq(seed, B=2, H=8, G=2, N=96, d=16, d_v=None):
    """Random float32 q [B,H,N,d], k [B,G,N,d], v [B,G,N,d_v] (gaussian)."""
    rng = np.random.default_rng(seed)
    d_v = d if d_v is None else d_v
    return randn(rng, B, H, N, d), randn(rng, B, G, N, d), randn(rng, B, G, N, d_v)


def decoder(spec, q, v, storage="f32", max_step=1, **kw):
    B, H, N, d = q.shape
    kw.setdefault("capacity", N)
    return attnkit.Decoder(spec, batch=B, heads=H, kv_heads=v.shape[1], d=d, d_v=v.shape[3], storage=storage,
                           max_step=max_step, **kw)


def decode_last(dec, q, k, v, S, t=1):
    """Appends the first N - S positions, then decodes the last S, t at a time (step on slices of
    the arrays: strided views used in place). Returns [B, H, S, d_v]."""
    N = q.shape[2]
    if N - S > 0:
        dec.append(k[:, :, :N - S], v[:, :, :N - S])
    outs = []
    for a in range(N - S, N, t):
        e = min(N, a + t)
        outs.append(dec.step(q[:, :, a:e], k[:, :, a:e], v[:, :, a:e]))
    return np.concatenate(outs, axis=2)


def causal_fp64(q, k, v, S):
    """float64 causal GQA attention of the last S positions: [B, H, S, d_v]."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    B, H, N, d = q.shape
    k = np.repeat(k, H // k.shape[1], axis=1)
    v = np.repeat(v, H // v.shape[1], axis=1)
    s = q[:, :, N - S:] @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    allowed = np.arange(N)[None, :] <= np.arange(N - S, N)[:, None]
    s = np.where(allowed, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def rel_err(out, ref):
    return np.linalg.norm(out.astype(np.float64) - ref) / np.linalg.norm(ref)


@pytest.mark.parametrize("t", [1, 4])
def test_exact_decode_equals_causal_forward(t):
    q, k, v = seq(1, B=2, H=8, G=2, N=200, d=32)
    S = 16
    ref = attnkit.Backend("exact").forward(q, k, v, causal=True)[:, :, -S:]
    dec = decoder("exact", q, v)
    out = decode_last(dec, q, k, v, S, t)
    assert out.shape == (2, 8, S, 32) and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 1e-6
    assert dec.size == 200
    assert dec.bytes_read > 0 and dec.bytes > 0


def decode_specs():
    """The decode backends of tests/test_decode.cpp, with the storages each supports."""
    specs = [("exact", ("f32", "bf16", "int8")), ("local:window=20", ("f32", "bf16", "int8")),
             ("pages:page=16,keep=64", ("f32", "bf16", "int8"))]
    if KERNELIZED:
        specs += [("performer:features=64,seed=3", ("f32",)), ("linear", ("f32",))]
    return [(spec, st) for spec, storages in specs for st in storages]


@pytest.mark.parametrize("spec,storage", decode_specs())
def test_every_backend_and_storage_runs(spec, storage):
    # small inputs (diffuse scores) so that performer's random features approximate well
    q, k, v = (a * 0.5 for a in seq(2, B=2, H=8, G=2, N=120, d=16, d_v=8))
    S, t = 6, 3
    dec = decoder(spec, q, v, storage=storage, max_step=t)
    out = decode_last(dec, q, k, v, S, t)
    assert out.shape == (2, 8, S, 8) and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert dec.size == 120 and dec.config["storage"] == storage
    name = spec.split(":")[0]
    if storage == "f32" and name in BACKENDS:
        # the decoder equals its backend's causal forward on the whole sequence
        ref = attnkit.Backend(spec).forward(q, k, v, causal=True)[:, :, -S:]
        assert np.abs(out - ref).max() <= (1e-5 if name in ("performer", "linear") else 1e-6)
    if name == "pages":
        pages = dec.selected_pages(1, 1)
        assert pages == sorted(pages) and all(isinstance(p, int) for p in pages)
        assert 119 // 16 in pages and len(pages) <= 64 // 16 + 2
    else:
        assert dec.selected_pages(1, 1) == []


@pytest.mark.parametrize("storage,bound", [("f32", 1e-5), ("bf16", 1e-2), ("int8", 3e-2)])
@pytest.mark.parametrize("spec", ["exact", "local:window=1000", "pages:page=16,keep=1000"])
def test_storage_error_vs_fp64(spec, storage, bound):
    q, k, v = seq(3, B=1, H=8, G=2, N=300, d=64)
    S = 4
    out = decode_last(decoder(spec, q, v, storage=storage), q, k, v, S)
    err = rel_err(out, causal_fp64(q, k, v, S))
    assert err <= bound, err
    if storage != "f32":
        assert err > 0  # the storage really is compressed


def test_bad_input_names_the_argument():
    q, k, v = seq(4, B=2, H=8, G=2, N=50, d=16)
    with pytest.raises(attnkit.Error, match="heads=6 is not a multiple of kv_heads=4"):
        attnkit.Decoder("exact", batch=2, heads=6, kv_heads=4, d=16)
    with pytest.raises(attnkit.Error, match="storage 'fp8' is unknown; expected f32, bf16 or int8"):
        attnkit.Decoder("exact", storage="fp8")
    with pytest.raises(attnkit.Error, match="expected exact, local, pages, performer or linear"):
        attnkit.Decoder("nope")
    with pytest.raises(attnkit.Error, match="capacity=0"):
        attnkit.Decoder("exact", capacity=0)
    with pytest.raises(attnkit.Error, match="key_lengths has 1 entries; expected batch=2"):
        attnkit.Decoder("exact", batch=2, key_lengths=[3])
    with pytest.raises(attnkit.Error, match="key_lengths: 0 entries; expected 2"):
        attnkit.Decoder("exact", batch=2, key_lengths=[])
    with pytest.raises(attnkit.Error, match=r"key_lengths\[1\]=1000000000; expected a value in \[0, 16\]"):
        attnkit.Decoder("exact", batch=2, d=8, capacity=16, key_lengths=[1, 10**9])
    attnkit.Decoder("pages", batch=2, d=8, capacity=16, key_lengths=[16, 0])  # capacity itself is fine
    if KERNELIZED:
        with pytest.raises(attnkit.Error, match="expected f32"):
            attnkit.Decoder("linear", storage="int8")
    assert issubclass(attnkit.Error, ValueError)

    dec = decoder("exact", q, v)  # capacity 50
    with pytest.raises(attnkit.Error, match="t=1 new positions but the cache holds 0"):
        dec.attend(q[:, :, :1])
    dec.append(k[:, :, :48], v[:, :, :48])
    # dtype: refused (TypeError naming the argument) unless copy=True
    with pytest.raises(TypeError, match="k: dtype float64; expected float32"):
        dec.append(k[:, :, 48:49].astype(np.float64), v[:, :, 48:49])
    with pytest.raises(TypeError, match="q: dtype float16; expected float32"):
        dec.attend(q[:, :, 47:48].astype(np.float16))
    with pytest.raises(TypeError, match="v: list"):
        dec.append(k[:, :, 48:49], v[:, :, 48:49].tolist())
    # layout: a non-unit last stride is refused (ValueError) unless copy=True
    with pytest.raises(ValueError, match="q: last-axis stride"):
        dec.attend(np.repeat(q[:, :, 47:48], 2, axis=3)[..., ::2])
    # shapes
    with pytest.raises(attnkit.Error, match=r"k has shape \[2,2,1,15\]"):
        dec.append(k[:, :, 48:49, :15], v[:, :, 48:49])
    with pytest.raises(attnkit.Error, match="append: v has t=2 new positions"):
        dec.append(k[:, :, 48:49], v[:, :, 48:50])
    with pytest.raises(attnkit.Error, match="q has 5 heads; expected 8"):
        dec.attend(q[:, :5, 47:48])
    with pytest.raises(attnkit.Error, match="out has shape"):
        dec.attend(q[:, :, 47:48], np.zeros((2, 8, 1, 15), np.float32))
    with pytest.raises(TypeError, match="out: dtype float64"):
        dec.attend(q[:, :, 47:48], np.zeros((2, 8, 1, 16)))
    ro = np.zeros((2, 8, 1, 16), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: read-only"):
        dec.attend(q[:, :, 47:48], ro)
    with pytest.raises(attnkit.Error, match="selected_pages"):
        dec.selected_pages(2, 0)
    # past the capacity: refused, the cache unchanged and still usable
    with pytest.raises(attnkit.Error, match="exceed the capacity 50"):
        dec.append(k[:, :, 45:48], v[:, :, 45:48])
    assert dec.size == 48
    with pytest.raises(attnkit.Error, match="exceed the capacity"):  # step appends first: nothing changes
        dec.step(q[:, :, 45:48], k[:, :, 45:48], v[:, :, 45:48])
    assert dec.size == 48
    out = np.concatenate([dec.step(q[:, :, a:a + 1], k[:, :, a:a + 1], v[:, :, a:a + 1]) for a in (48, 49)], axis=2)
    assert dec.size == 50
    ref = attnkit.Backend("exact").forward(q, k, v, causal=True)[:, :, 48:]
    assert np.abs(out - ref).max() <= 1e-6
    # copy=True converts float64 input (the cache is full now: a fresh decoder)
    dec2 = decoder("exact", q, v)
    dec2.append(k.astype(np.float64), v, copy=True)
    assert np.abs(dec2.attend(q[:, :, 49:].astype(np.float64), copy=True) - ref[:, :, 1:]).max() <= 1e-6


def test_out_is_written_and_returned():
    q, k, v = seq(5, B=2, H=8, G=2, N=40, d=16, d_v=8)
    dec = decoder("pages:page=8,keep=16", q, v, max_step=2)
    dec.append(k[:, :, :36], v[:, :, :36])
    expected = dec.attend(q[:, :, 34:36])
    out = np.full((2, 8, 2, 8), np.nan, np.float32)
    assert dec.attend(q[:, :, 34:36], out) is out
    assert bits_equal(out, expected)
    # a strided view of a bigger buffer (unit last stride) is written in place
    buf = np.full((2, 8, 4, 8), np.nan, np.float32)
    for i, a in enumerate(range(36, 40)):
        view = buf[:, :, i:i + 1]
        assert dec.step(q[:, :, a:a + 1], k[:, :, a:a + 1], v[:, :, a:a + 1], out=view) is view
    ref = decode_last(decoder("pages:page=8,keep=16", q, v), q, k, v, 4)
    assert bits_equal(buf, ref)


def test_defaults_properties_and_repr():
    dec = attnkit.Decoder("pages")
    assert dec.spec == "pages:page=16,keep=1024"
    assert dec.config == {"batch": 1, "heads": 1, "kv_heads": 1, "capacity": 4096, "d": 64, "d_v": 64,
                          "storage": "f32", "max_step": 1, "key_lengths": None, "scale": None}
    assert dec.size == 0 and dec.bytes_read == 0 and dec.bytes > 0
    r = repr(dec)
    assert r.startswith("<attnkit.Decoder 'pages:page=16,keep=1024' batch=1") and r.endswith("size=0>")
    d2 = attnkit.Decoder("exact", d=32, storage="int8", key_lengths=np.array([5]), scale=0.5)
    assert d2.config["d_v"] == 32 and d2.config["key_lengths"] == [5] and d2.config["scale"] == 0.5
    assert "key_lengths=[5]" in repr(d2) and "storage=int8" in repr(d2)
    # int8 stores a quarter of f32's bytes plus a scale per row
    assert d2.bytes < attnkit.Decoder("exact", d=32).bytes / 3


def test_key_lengths_and_scale_match_forward():
    q, k, v = seq(6, B=2, H=4, G=4, N=60, d=16)
    lengths = [60, 41]
    dec = decoder("exact", q, v, key_lengths=lengths, scale=0.3)
    out = decode_last(dec, q, k, v, 5)
    ref = attnkit.Backend("exact").forward(q, k, v, causal=True, key_lengths=lengths, scale=0.3)[:, :, -5:]
    assert np.abs(out - ref).max() <= 1e-6


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    q, k, v = seq(7, B=1, H=4, G=2, N=30, d=16)
    a = decoder("exact", q, v)
    b = decoder("exact", q, v)
    a.append(k, v)
    b.append(torch.from_numpy(k), torch.from_numpy(v))
    y = b.attend(torch.from_numpy(q[:, :, -2:]))
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and tuple(y.shape) == (1, 4, 2, 16)
    assert bits_equal(y.numpy(), a.attend(q[:, :, -2:]))


def test_second_thread_is_refused_while_a_call_runs():
    # A long attend in a thread (the GIL released inside); the main thread's calls meanwhile raise
    # RuntimeError instead of racing on the cache. The thread repeats its attend until the main
    # thread has seen the refusal (or 200 rounds), so the check does not depend on timing.
    q, k, v = seq(8, B=1, H=8, G=1, N=1024, d=64)
    dec = decoder("exact", q, v)
    dec.append(k, v)
    expected = dec.attend(q[:, :, -256:])
    seen = threading.Event()
    results = []

    def work():
        for _ in range(200):
            results.append(dec.attend(q[:, :, -256:]))
            if seen.is_set():
                return

    th = threading.Thread(target=work)
    th.start()
    deadline = time.monotonic() + 20
    while th.is_alive() and not seen.is_set() and time.monotonic() < deadline:
        try:
            assert dec.size == 1024
        except RuntimeError as e:
            assert "in use by another thread" in str(e)
            seen.set()
    th.join()
    assert seen.is_set()
    assert dec.size == 1024
    assert all(bits_equal(r, expected) for r in results)
