#!/usr/bin/python3
"""`attnkit mha` against torch.nn.MultiheadAttention's math, written in numpy (float64).

PyTorch is not installed here, so this follows torch.nn.functional.multi_head_attention_forward
line by line for batch_first=True: in_proj_weight [3E, E] split into W_q; W_k; W_v and applied as
x @ W.T + b; heads are reshapes of [B, L, E] to [B, L, H, E/H]; q is scaled by 1/sqrt(E/H);
attn_mask (causal: -inf above the diagonal) and key_padding_mask (True = ignore) are added as
-inf; softmax over keys; out_proj as o @ W_o.T + b_o. The outputs must agree to 1e-5 relative
(Frobenius, and max abs error over max abs value).

usage: test_mha_torch.py ATTNKIT_EXECUTABLE
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

TOL = 1e-5


def linear(x, w, b):  # torch.nn.functional.linear: x @ w.T + b
    y = x @ w.T
    return y if b is None else y + b


def torch_mha(query, key, value, H, in_proj_weight, in_proj_bias, out_w, out_b, key_padding_mask=None,
              attn_mask=None):
    """nn.MultiheadAttention(E, H, batch_first=True).forward(query, key, value, key_padding_mask,
    attn_mask=attn_mask, need_weights=False) in float64 numpy."""
    q_in, k_in, v_in = (np.asarray(t, np.float64) for t in (query, key, value))
    B, L, E = q_in.shape
    S = k_in.shape[1]
    hd = E // H
    w_q, w_k, w_v = np.split(np.asarray(in_proj_weight, np.float64), 3)
    b_q, b_k, b_v = (None, None, None) if in_proj_bias is None else np.split(np.asarray(in_proj_bias, np.float64), 3)
    q = linear(q_in, w_q, b_q).reshape(B, L, H, hd).transpose(0, 2, 1, 3)
    k = linear(k_in, w_k, b_k).reshape(B, S, H, hd).transpose(0, 2, 1, 3)
    v = linear(v_in, w_v, b_v).reshape(B, S, H, hd).transpose(0, 2, 1, 3)
    mask = np.zeros((B, 1, L, S))
    if attn_mask is not None:
        mask = mask + attn_mask[None, None]
    if key_padding_mask is not None:
        mask = mask + np.where(key_padding_mask, -np.inf, 0.0)[:, None, None, :]
    q = q * (1.0 / np.sqrt(hd))
    s = q @ k.transpose(0, 1, 3, 2) + mask
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p = p / p.sum(axis=-1, keepdims=True)
    o = (p @ v).transpose(0, 2, 1, 3).reshape(B, L, E)
    return linear(o, np.asarray(out_w, np.float64), None if out_b is None else np.asarray(out_b, np.float64))


def gqa_mha(x, c, H, G, wq, wk, wv, wo, bq, bk, bv, bo, causal):
    """Grouped-query attention in the native layout (y = x @ W): kv head g serves query heads
    g*H/G .. (g+1)*H/G - 1, like torch's scaled_dot_product_attention(enable_gqa=True)."""
    x, c = np.asarray(x, np.float64), np.asarray(c, np.float64)
    B, n, _ = x.shape
    m = c.shape[1]
    d = wq.shape[1] // H
    dv = wv.shape[1] // G
    q = (x @ wq + bq).reshape(B, n, H, d).transpose(0, 2, 1, 3)
    k = np.repeat((c @ wk + bk).reshape(B, m, G, d).transpose(0, 2, 1, 3), H // G, axis=1)
    v = np.repeat((c @ wv + bv).reshape(B, m, G, dv).transpose(0, 2, 1, 3), H // G, axis=1)
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    if causal:
        s = s + np.triu(np.full((n, m), -np.inf), 1 + m - n)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p @ v).transpose(0, 2, 1, 3).reshape(B, n, H * dv) @ wo + bo


class Runner:
    def __init__(self, exe, work):
        self.exe, self.work, self.n = exe, work, 0
        self.failures = 0

    def save(self, a, dtype=np.float32):
        self.n += 1
        path = os.path.join(self.work, f"a{self.n}.npy")
        np.save(path, np.ascontiguousarray(a, dtype=dtype))
        return path

    def mha(self, args):
        out = os.path.join(self.work, "y.npy")
        r = subprocess.run([self.exe, "mha", *args, "--out", out], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"attnkit mha {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return np.load(out)

    def check(self, what, got, ref):
        ref = np.asarray(ref, np.float64)
        rel_fro = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        rel_max = np.abs(got - ref).max() / np.abs(ref).max()
        ok = got.shape == ref.shape and got.dtype == np.float32 and rel_fro <= TOL and rel_max <= TOL
        print(f"{'ok  ' if ok else 'FAIL'} {what}: rel Frobenius {rel_fro:.2e}, max abs / max |ref| {rel_max:.2e}")
        if not ok:
            self.failures += 1


def main():
    exe = sys.argv[1]
    rng = np.random.default_rng(2024)
    with tempfile.TemporaryDirectory() as work:
        t = Runner(exe, work)
        E, H, B, L, S = 64, 4, 3, 50, 37
        for gain in (1.0, 3.0):  # 3.0: peaked attention (logits of a few tens)
            ipw = rng.normal(0, gain / np.sqrt(E), (3 * E, E))
            ipb = rng.normal(0, 0.2, 3 * E)
            ow = rng.normal(0, 1 / np.sqrt(E), (E, E))
            ob = rng.normal(0, 0.2, E)
            x = rng.normal(0, 1, (B, L, E))
            c = rng.normal(0, 1, (B, S, E))
            lengths = np.array([L, 33, 1], np.int32)
            clen = np.array([S, 20, 5], np.int32)
            causal = np.triu(np.full((L, L), -np.inf), 1)
            pad = np.arange(L)[None, :] >= lengths[:, None]
            cpad = np.arange(S)[None, :] >= clen[:, None]
            P = [t.save(a) for a in (x, ipw, ipb, ow, ob)]
            torch_args = ["--x", P[0], "--heads", str(H), "--in-proj", P[1], "--in-proj-bias", P[2], "--out-proj", P[3],
                          "--out-proj-bias", P[4]]
            native = [t.save(a) for a in (ipw[:E].T, ipw[E:2 * E].T, ipw[2 * E:].T, ow.T)]
            native_args = ["--x", P[0], "--heads", str(H), "--wq", native[0], "--wk", native[1], "--wv", native[2],
                           "--wo", native[3], "--bq", t.save(ipb[:E]), "--bk", t.save(ipb[E:2 * E]),
                           "--bv", t.save(ipb[2 * E:]), "--bo", P[4]]
            L_path, C_path, CL_path = t.save(lengths, np.int32), t.save(c), t.save(clen, np.int32)
            tag = f"gain {gain}"

            ref = torch_mha(x, x, x, H, ipw, ipb, ow, ob)
            y = t.mha(torch_args)
            t.check(f"{tag} self, PyTorch layout", y, ref)
            y_native = t.mha(native_args)
            t.check(f"{tag} self, native layout", y_native, ref)
            if not np.array_equal(y, y_native):
                print("FAIL native and PyTorch layouts differ bitwise")
                t.failures += 1
            t.check(f"{tag} self, reference backend", t.mha(torch_args + ["--backend", "reference"]), ref)

            ref = torch_mha(x, x, x, H, ipw, ipb, ow, ob, key_padding_mask=pad, attn_mask=causal)
            t.check(f"{tag} self, causal + key padding", t.mha(torch_args + ["--causal", "--key-lengths", L_path]), ref)
            t.check(f"{tag} self, causal + key padding, native",
                    t.mha(native_args + ["--causal", "--key-lengths", L_path]), ref)

            ref = torch_mha(x, c, c, H, ipw, ipb, ow, ob, key_padding_mask=cpad)
            t.check(f"{tag} cross, key padding", t.mha(torch_args + ["--context", C_path, "--key-lengths", CL_path]), ref)

            ref = torch_mha(x, x, x, H, ipw, None, ow, None, attn_mask=causal)
            t.check(f"{tag} self, bias=False, causal",
                    t.mha(["--x", P[0], "--heads", str(H), "--in-proj", P[1], "--out-proj", P[3], "--causal"]), ref)

            ref = torch_mha(x[1:2], x[1:2], x[1:2], H, ipw, ipb, ow, ob)[0]
            t.check(f"{tag} rank-2 x", t.mha(torch_args[:0] + ["--x", t.save(x[1])] + torch_args[2:]), ref)

        # Grouped-query attention (native layout only: PyTorch's MultiheadAttention has none).
        Hq, G, d, dv = 8, 2, 8, 12
        wq, wk, wv = (rng.normal(0, 1 / np.sqrt(E), s) for s in ((E, Hq * d), (E, G * d), (E, G * dv)))
        wo = rng.normal(0, 1 / np.sqrt(Hq * dv), (Hq * dv, E))
        bq, bk, bv, bo = (rng.normal(0, 0.2, s) for s in (Hq * d, G * d, G * dv, E))
        x = rng.normal(0, 1, (2, 40, E))
        c = rng.normal(0, 1, (2, 23, E))
        base = ["--heads", str(Hq), "--kv-heads", str(G), "--wq", t.save(wq), "--wk", t.save(wk), "--wv", t.save(wv),
                "--wo", t.save(wo), "--bq", t.save(bq), "--bk", t.save(bk), "--bv", t.save(bv), "--bo", t.save(bo)]
        t.check("GQA self causal", t.mha(["--x", t.save(x), "--causal"] + base),
                gqa_mha(x, x, Hq, G, wq, wk, wv, wo, bq, bk, bv, bo, True))
        t.check("GQA cross", t.mha(["--x", t.save(x), "--context", t.save(c)] + base),
                gqa_mha(x, c, Hq, G, wq, wk, wv, wo, bq, bk, bv, bo, False))
        print(f"mha vs nn.MultiheadAttention math: {t.failures} failures")
        return 1 if t.failures else 0


if __name__ == "__main__":
    sys.exit(main())
