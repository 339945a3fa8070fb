"""torch CPU tensors in, torch tensors out; MultiheadAttention against torch.nn.MultiheadAttention."""
import numpy as np
import pytest

import attnkit
from conftest import bits_equal, qkv

torch = pytest.importorskip("torch")

TOL = 1e-5


def test_tensors_in_tensors_out():
    q, k, v = qkv(seed=50)
    tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
    out = attnkit.attention(tq, tk, tv, "exact", causal=True)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert bits_equal(out.numpy(), attnkit.attention(q, k, v, causal=True))
    assert isinstance(attnkit.Backend("exact").weights(tq, tk, tv), torch.Tensor)
    # numpy q with tensor k, v: the result follows q
    assert isinstance(attnkit.attention(q, tk, tv), np.ndarray)


def test_tensor_views_and_out_without_copy():
    B, N, H, D = 2, 64, 4, 16
    g = torch.Generator().manual_seed(0)
    proj = [torch.randn(B, N, H, D, generator=g, requires_grad=True) for _ in range(3)]
    views = [p.transpose(1, 2) for p in proj]  # [B,H,N,D] views of [B,N,H,D] storage
    want = attnkit.attention(*(np.ascontiguousarray(p.detach().numpy().transpose(0, 2, 1, 3)) for p in proj))
    out_store = torch.empty(B, N, H, D)
    out = out_store.transpose(1, 2)
    ret = attnkit.attention(*views, out=out)
    assert ret is out
    assert bits_equal(out_store.transpose(1, 2).contiguous().numpy(), want)


def test_tensor_dtype_and_layout_errors():
    q, k, v = (torch.from_numpy(a) for a in qkv(seed=51))
    with pytest.raises(TypeError, match="q: dtype float64"):
        attnkit.attention(q.double(), k, v)
    with pytest.raises(TypeError, match="k: "):
        attnkit.attention(q, k.to(torch.bfloat16), v)
    with pytest.raises(ValueError, match="q: last-axis stride"):
        attnkit.attention(q.transpose(2, 3), k, v)
    assert bits_equal(attnkit.attention(q.double(), k, v, copy=True).numpy(), attnkit.attention(q, k, v).numpy())
    # copy=True converts bfloat16 (no numpy dtype) as torch's .float() does; complex is refused
    kb = k.to(torch.bfloat16)
    assert bits_equal(attnkit.attention(q, kb, v, copy=True).numpy(), attnkit.attention(q, kb.float(), v).numpy())
    with pytest.raises(TypeError, match="q: dtype complex64; expected real numbers"):
        attnkit.attention(q.to(torch.complex64), k, v, copy=True)
    lengths = torch.tensor([3, 64])
    assert bits_equal(attnkit.attention(q, k, v, key_lengths=lengths).numpy(),
                      attnkit.attention(q, k, v, key_lengths=[3, 64]).numpy())


def torch_layer(d_model, heads, seed, bias=True):
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(d_model, heads, batch_first=True, bias=bias)
    with torch.no_grad():  # non-trivial biases (torch initialises in_proj_bias to zeros)
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    # training mode with dropout 0 is the same math; it avoids torch 1.13's eval fast path, which
    # fails for bias=False
    return m.train()


def close(got, want):
    got = got.detach().double()
    want = want.detach().double()
    rel_fro = ((got - want).norm() / want.norm()).item()
    rel_max = ((got - want).abs().max() / want.abs().max()).item()
    return rel_fro <= TOL and rel_max <= TOL, (rel_fro, rel_max)


@pytest.mark.parametrize("bias", [True, False])
def test_mha_self_attention_matches_torch(bias):
    m = torch_layer(64, 4, 1, bias)
    layer = attnkit.MultiheadAttention(m.state_dict(), 4)
    x = torch.randn(3, 37, 64)
    with torch.no_grad():
        want = m(x, x, x, need_weights=False)[0]
    got = layer(x)
    assert isinstance(got, torch.Tensor) and got.shape == want.shape
    ok, err = close(got, want)
    assert ok, err
    # numpy in, numpy out, same numbers
    assert bits_equal(layer(x.numpy()), got.numpy())


def test_mha_masks_and_cross_match_torch():
    m = torch_layer(48, 6, 2)
    layer = attnkit.MultiheadAttention(m.state_dict(), 6, "exact")
    x = torch.randn(2, 20, 48)
    c = torch.randn(2, 31, 48)
    lengths = [31, 17]
    pad = torch.arange(31)[None, :] >= torch.tensor(lengths)[:, None]
    with torch.no_grad():
        want = m(x, c, c, key_padding_mask=pad, need_weights=False)[0]
    ok, err = close(layer(x, c, key_lengths=lengths), want)
    assert ok, err
    causal = torch.triu(torch.full((20, 20), float("-inf")), 1)
    with torch.no_grad():
        want = m(x, x, x, attn_mask=causal, need_weights=False)[0]
    ok, err = close(layer(x, causal=True), want)
    assert ok, err
    # per-head weights as torch's average_attn_weights=False
    with torch.no_grad():
        w_t = m(x, c, c, key_padding_mask=pad, need_weights=True, average_attn_weights=False)[1]
    w = layer.weights(x, 1, 4, c, key_lengths=lengths)
    assert (w - w_t[1, 4]).abs().max().item() < 1e-6


def test_mha_unbatched_and_numpy_state_dict():
    m = torch_layer(32, 2, 3)
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    layer = attnkit.MultiheadAttention(sd, 2, attnkit.Backend("exact"))
    assert (layer.d_model, layer.heads) == (32, 2) and layer.backend.startswith("exact")
    x = torch.randn(9, 32)
    with torch.no_grad():
        want = m(x[None], x[None], x[None], need_weights=False)[0][0]
    ok, err = close(layer(x), want)
    assert ok, err


def test_mha_errors():
    m = torch_layer(32, 4, 4)
    sd = m.state_dict()
    with pytest.raises(ValueError, match="heads: 5"):
        attnkit.MultiheadAttention(sd, 5)
    with pytest.raises(ValueError, match="unexpected key 'layer.in_proj_weight'"):
        attnkit.MultiheadAttention({"layer." + k: v for k, v in sd.items()}, 4)
    kv = torch.nn.MultiheadAttention(32, 4, add_bias_kv=True, batch_first=True)
    with pytest.raises(ValueError, match="bias_k"):
        attnkit.MultiheadAttention(kv.state_dict(), 4)
    with pytest.raises(TypeError, match="float64"):
        attnkit.MultiheadAttention({k: v.double() for k, v in sd.items()}, 4)
    with pytest.raises(TypeError, match=r"state_dict\[.*\]: dtype complex64"):
        attnkit.MultiheadAttention({k: v.to(torch.complex64) for k, v in sd.items()}, 4, copy=True)
    attnkit.MultiheadAttention({k: v.to(torch.bfloat16) for k, v in sd.items()}, 4, copy=True)
    layer = attnkit.MultiheadAttention({k: v.double() for k, v in sd.items()}, 4, copy=True)
    x = torch.randn(2, 5, 32)
    with pytest.raises(ValueError, match="x: last axis 16; expected d_model = 32"):
        layer(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="x: not C-contiguous"):
        layer(x.transpose(0, 1))
    with pytest.raises(ValueError, match="key_lengths"):
        layer(x, key_lengths=[1])
    with pytest.raises(attnkit.Error, match="key_lengths: 0 entries; expected 2"):
        layer(x, key_lengths=[])
    with pytest.raises(attnkit.Error, match=r"^x: shape \[2, 0, 32\]"):  # not the output buffer y
        layer(np.zeros((2, 0, 32), np.float32))
    with pytest.raises(attnkit.Error, match="key_lengths: 0 entries; expected 2"):
        layer.weights(x, key_lengths=torch.zeros(0, dtype=torch.int32))
    with pytest.raises(TypeError, match="x: dtype float64"):
        layer(x.double())
