"""attnkit.Backend (spec, capabilities, forward, error_bound, weights, cost) and attnkit.backends()."""
import numpy as np
import pytest

import attnkit
from conftest import bits_equal, qkv


def test_backends_list():
    infos = attnkit.backends()
    names = [b["name"] for b in infos]
    assert names[:2] == ["reference", "exact"]
    assert len(set(names)) == len(names)
    for info in infos:
        assert info["summary"]
        assert set(info["capabilities"]) == {"causal", "key_lengths", "cross", "gqa", "weights",
                                             "causal_future_independent"}
        assert info["capabilities"]["causal_future_independent"] == (info["name"] != "lsh")
        spec = attnkit.Backend(info["name"]).spec
        for p in info["params"]:
            assert p["type"] in ("int", "float", "bool", "str")
            if p["type"] in ("int", "float"):
                assert p["min"] <= p["default"] <= p["max"]
                text = str(int(p["default"])) if p["type"] == "int" else None
                if text is not None:
                    assert f"{p['name']}={text}" in spec, (spec, p)
            elif p["type"] == "bool":
                assert f"{p['name']}={int(p['default'])}" in spec


def test_spec_and_capabilities():
    b = attnkit.Backend("local:window=32")
    assert b.spec.startswith("local:window=32,")
    assert attnkit.Backend(b.spec).spec == b.spec
    assert repr(b) == f"attnkit.Backend('{b.spec}')"
    assert attnkit.Backend("clustered").capabilities["causal"] is False
    assert attnkit.Backend("exact").capabilities == {"causal": True, "key_lengths": True, "cross": True,
                                                     "gqa": True, "weights": True,
                                                     "causal_future_independent": True}
    with pytest.raises(ValueError, match="window"):
        attnkit.Backend("local:window=-1")


def test_forward_out_in_place():
    q, k, v = qkv(seed=40)
    b = attnkit.Backend("exact")
    out = np.full(q.shape, np.nan, np.float32)
    assert b.forward(q, k, v, out) is out
    assert bits_equal(out, b.forward(q, k, v))


def test_error_bound_local_holds():
    q, k, v = qkv(seed=41, B=2, H=2, n=96, d=16)
    b = attnkit.Backend("local:window=16")
    for causal in (False, True):
        eb = b.error_bound(q, k, v, causal=causal)
        assert eb["description"]
        assert eb["out_l2"].shape == (2, 2, 96) and eb["out_l2"].dtype == np.float64
        assert eb["prob_l1"].shape == (2, 2, 96)
        err = np.linalg.norm(b.forward(q, k, v, causal=causal).astype(np.float64)
                             - attnkit.reference(q, k, v, causal=causal), axis=-1)
        assert np.all(err <= eb["out_l2"] * (1 + 1e-4) + 1e-5)
        assert np.any(eb["out_l2"] > 0)
    # rank 2 inputs: per-row arrays of shape [n_q]
    assert b.error_bound(q[0, 0], k[0, 0], v[0, 0])["out_l2"].shape == (96,)
    assert attnkit.Backend("performer").error_bound(q, k, v) is None


def test_weights_match_softmax():
    q, k, v = qkv(seed=42, B=2, H=3, n=20, n_k=30, d=8)
    w = attnkit.Backend("exact").weights(q, k, v, 1, 2, causal=True, key_lengths=[30, 25])
    s = (q[1, 2].astype(np.float64) @ k[1, 2].T.astype(np.float64)) / np.sqrt(8)
    allowed = (np.arange(30)[None, :] <= np.arange(20)[:, None] + 10) & (np.arange(30)[None, :] < 25)
    s = np.where(allowed, s, -np.inf)
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert w.shape == (20, 30) and w.dtype == np.float32
    assert np.abs(w - p).max() < 1e-6
    with pytest.raises(ValueError, match="h"):
        attnkit.Backend("exact").weights(q, k, v, 0, 3)


def test_cost():
    b = attnkit.Backend("exact")
    c = b.cost(1024, d=64, batch=2, heads=4)
    assert c["flops"] == 4 * 2 * 4 * 1024 * 1024 * 64
    assert c["bytes"] > 0
    assert b.cost(1024, d=64, causal=True)["flops"] < b.cost(1024, d=64)["flops"]
    assert attnkit.Backend("local:window=64").cost(4096)["flops"] < b.cost(4096)["flops"] / 10
    with pytest.raises(ValueError, match="kv_heads"):
        b.cost(16, heads=4, kv_heads=3)
    with pytest.raises(ValueError, match="n_q"):
        b.cost(0)
    # Sizes past int64 element counts are refused (they wrapped to negative or zero counts), and
    # the largest accepted give positive, finite counts on every backend.
    with pytest.raises(ValueError, match="2\\^62"):
        b.cost(16, d=2**62)
    with pytest.raises(ValueError, match="2\\^62"):
        attnkit.Backend("uniform").cost(16, batch=2**32, heads=2**32)
    for name in [info["name"] for info in attnkit.backends()]:
        c = attnkit.Backend(name).cost(16, batch=2**25, heads=2**25, d=16)
        assert 0 < c["flops"] < float("inf") and 0 < c["bytes"] < float("inf"), (name, c)


def test_docstrings_everywhere():
    assert attnkit.__doc__ and attnkit.__version__
    public = [getattr(attnkit, n) for n in dir(attnkit) if not n.startswith("_")]
    for obj in public:
        assert obj.__doc__, obj
    for cls in (attnkit.Backend, getattr(attnkit, "MultiheadAttention", attnkit.Backend)):
        for name, member in vars(cls).items():
            if not name.startswith("_") or name in ("__init__", "__call__"):
                assert member.__doc__, (cls, name)
    assert attnkit.attention.__doc__.startswith("attention(q, k, v, backend=")
