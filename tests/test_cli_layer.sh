#!/usr/bin/env bash
# `attnkit mha` and `attnkit weights`: success paths, the heatmap PNG, and exit code 2 with a
# one-line message naming the argument for each bad input.
set -u
cli="$1"
py=/usr/bin/python3
. "$(dirname "$0")/cli_checks.sh"

$py - <<'PY'
import numpy as np
rng = np.random.default_rng(1)
E, H = 16, 2
s = lambda name, a, t=np.float32: np.save(name, np.ascontiguousarray(a, dtype=t))
s("x.npy", rng.normal(size=(2, 9, E)))
s("x2.npy", rng.normal(size=(9, E)))
s("x1.npy", rng.normal(size=(E,)))
s("c.npy", rng.normal(size=(2, 5, E)))
s("c_wide.npy", rng.normal(size=(2, 5, E + 1)))
s("c_b3.npy", rng.normal(size=(3, 5, E)))
for n, shape in (("wq", (E, E)), ("wk", (E, E)), ("wv", (E, E)), ("wo", (E, E)), ("wk_gqa", (E, E // 2)),
                 ("wv_gqa", (E, E // 2)), ("wo_gqa", (E, E)), ("in_proj", (3 * E, E)), ("wq_odd", (E, 15)),
                 ("wk_bad", (E, E - 2)), ("wo_bad", (E - 1, E)), ("in_bad", (2 * E, E))):
    s(n + ".npy", rng.normal(0, 0.3, size=shape))
s("bq.npy", rng.normal(size=E)); s("bq_bad.npy", rng.normal(size=E - 1)); s("in_bias.npy", rng.normal(size=3 * E))
s("wq64.npy", rng.normal(size=(E, E)), np.float64)
s("len.npy", [9, 4], np.int32); s("clen.npy", [5, 2], np.int32); s("len_bad.npy", [9], np.int32); s("len_big.npy", [10, 4], np.int32)
# weights: 2 batches, 3 heads, n_q = 12 > n_k = 10 (cross, so causal leaves the first 2 rows empty)
s("q.npy", rng.normal(size=(2, 3, 12, 8))); s("k.npy", rng.normal(size=(2, 3, 10, 8)))
s("qs.npy", rng.normal(size=(12, 8)) * 2); s("ks.npy", rng.normal(size=(12, 8)) * 2)
s("qbig.npy", rng.normal(size=(2049, 1))); s("qhuge.npy", rng.normal(size=(8193, 1)))
open("tok12.txt", "w").write("".join(f"t{i}\n" for i in range(12)))
open("tok5.txt", "w").write("a\nb\nc\nd\ne\n")
PY

native=(--heads 2 --wq wq.npy --wk wk.npy --wv wv.npy --wo wo.npy)
torch=(--heads 2 --in-proj in_proj.npy --out-proj wo.npy)
expect_ok "mha native" "$cli" mha --x x.npy "${native[@]}" --bq bq.npy --out y.npy
$py -c "import numpy as np; y = np.load('y.npy'); assert y.shape == (2, 9, 16) and y.dtype == np.float32" && ok || bad "mha output shape"
expect_ok "mha rank 2" "$cli" mha --x x2.npy "${native[@]}" --out y2.npy --causal --backend reference
$py -c "import numpy as np; assert np.load('y2.npy').shape == (9, 16)" && ok || bad "rank-2 output shape"
expect_ok "mha cross + lengths" "$cli" mha --x x.npy --context c.npy "${native[@]}" --key-lengths clen.npy --causal --out y.npy
expect_ok "mha torch" "$cli" mha --x x.npy "${torch[@]}" --in-proj-bias in_bias.npy --out-proj-bias bq.npy --causal --key-lengths len.npy --out y.npy
expect_ok "mha gqa" "$cli" mha --x x.npy --heads 4 --kv-heads 2 --wq wq.npy --wk wk_gqa.npy --wv wv_gqa.npy --wo wo_gqa.npy --out y.npy
grep -q "kv_heads 2" out.txt && ok || bad "gqa summary lacks kv_heads 2: $(cat out.txt)"

expect_2 "mha no heads" "--heads: required" "$cli" mha --x x.npy --wq wq.npy --wk wk.npy --wv wv.npy --wo wo.npy --out y.npy
expect_2 "mha heads vs wq" "--wq" "$cli" mha --x x.npy --heads 2 --wq wq_odd.npy --wk wk.npy --wv wv.npy --wo wo.npy --out y.npy
expect_2 "mha wk shape" "--wk wk_bad.npy: shape [16, 14]; expected [16, 16]" "$cli" mha --x x.npy --heads 2 --wq wq.npy --wk wk_bad.npy --wv wv.npy --wo wo.npy --out y.npy
expect_2 "mha wo shape" "--wo wo_bad.npy" "$cli" mha --x x.npy --heads 2 --wq wq.npy --wk wk.npy --wv wv.npy --wo wo_bad.npy --out y.npy
expect_2 "mha bias length" "--bq bq_bad.npy: shape [15]; expected [16]" "$cli" mha --x x.npy "${native[@]}" --bq bq_bad.npy --out y.npy
expect_2 "mha x rank 1" "--x x1.npy: shape [16]" "$cli" mha --x x1.npy "${native[@]}" --out y.npy
expect_2 "mha context width" "--context c_wide.npy: d_model 17; expected 16" "$cli" mha --x x.npy --context c_wide.npy "${native[@]}" --out y.npy
expect_2 "mha context batch" "batch 3; expected 2" "$cli" mha --x x.npy --context c_b3.npy "${native[@]}" --out y.npy
expect_2 "mha float64" "dtype '<f8'" "$cli" mha --x x.npy --heads 2 --wq wq64.npy --wk wk.npy --wv wv.npy --wo wo.npy --out y.npy
expect_2 "mha kv-heads" "--kv-heads 3" "$cli" mha --x x.npy "${native[@]}" --kv-heads 3 --out y.npy
expect_2 "mha key lengths count" "--key-lengths len_bad.npy: shape [1]; expected [2]" "$cli" mha --x x.npy "${native[@]}" --key-lengths len_bad.npy --out y.npy
expect_2 "mha key lengths range" "key_lengths[0]: 10" "$cli" mha --x x.npy "${native[@]}" --key-lengths len_big.npy --out y.npy
expect_2 "mha unknown backend" "nosuch" "$cli" mha --x x.npy "${native[@]}" --backend nosuch --out y.npy
expect_2 "mha layouts mixed" "--wq: cannot be mixed with --in-proj" "$cli" mha --x x.npy "${torch[@]}" --wq wq.npy --out y.npy
expect_2 "mha in-proj shape" "--in-proj in_bad.npy: shape [32, 16]; expected [48, 16]" "$cli" mha --x x.npy --heads 2 --in-proj in_bad.npy --out-proj wo.npy --out y.npy
expect_2 "mha in-proj without out-proj" "--out-proj: required" "$cli" mha --x x.npy --heads 2 --in-proj in_proj.npy --out y.npy
expect_2 "mha out-proj alone" "--out-proj: PyTorch layout needs --in-proj" "$cli" mha --x x.npy "${native[@]}" --out-proj wo.npy --out y.npy
expect_2 "mha torch heads" "--heads 3: does not divide d_model = 16" "$cli" mha --x x.npy --heads 3 --in-proj in_proj.npy --out-proj wo.npy --out y.npy
expect_2 "mha in-proj bias" "--in-proj-bias bq.npy: shape [16]; expected [48]" "$cli" mha --x x.npy "${torch[@]}" --in-proj-bias bq.npy --out y.npy
expect_2 "mha missing out" "--out: required" "$cli" mha --x x.npy "${native[@]}"

# weights: exact probabilities, rows sum to 1 (0 for the rows that see no key).
expect_ok "weights" "$cli" weights --q q.npy --k k.npy --batch 1 --head 2 --causal --out w.npy
$py - <<'PY' && ok || bad "weights values"
import numpy as np
q, k, w = np.load("q.npy")[1, 2].astype(np.float64), np.load("k.npy")[1, 2].astype(np.float64), np.load("w.npy")
assert w.shape == (12, 10) and w.dtype == np.float32
s = q @ k.T / np.sqrt(8) + np.triu(np.full((12, 10), -np.inf), 1 + 10 - 12)
e = np.exp(s - np.where(np.isinf(s.max(1)), 0, s.max(1))[:, None])
ref = np.divide(e, e.sum(1, keepdims=True), out=np.zeros_like(e), where=e.sum(1, keepdims=True) > 0)
assert np.abs(w - ref).max() < 1e-6, np.abs(w - ref).max()
sums = w.sum(1)
assert np.all(sums[:2] == 0) and np.allclose(sums[2:], 1, atol=1e-6), sums
PY
expect_2 "weights head range" "--head 3" "$cli" weights --q q.npy --k k.npy --head 3 --out w.npy
expect_2 "weights batch range" "--batch 2" "$cli" weights --q q.npy --k k.npy --batch 2 --out w.npy
expect_2 "weights too many for npy" "expected at most Backend::kMaxWeights" "$cli" weights --q qhuge.npy --k qhuge.npy --out w.npy
expect_2 "weights too many for png" "--png: n_q x n_k = 2049 x 2049" "$cli" weights --q qbig.npy --k qbig.npy --out w.npy --png w.png
expect_2 "weights tokens need png" "--tokens: only labels a heatmap" "$cli" weights --q qs.npy --k ks.npy --out w.npy --tokens tok12.txt
expect_2 "weights unknown compare" "nosuch" "$cli" weights --q qs.npy --k ks.npy --out w.npy --compare nosuch
expect_2 "weights dim mismatch" "k: dim is 8" "$cli" weights --q x2.npy --k ks.npy --out w.npy

if $py -c "import matplotlib" 2>/dev/null; then
  png_ok() {  # file: the 8 signature bytes of a PNG
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]
  }
  expect_ok "weights png" "$cli" weights --q qs.npy --k ks.npy --causal --out w.npy --png w.png --tokens tok12.txt
  png_ok w.png && ok || bad "w.png is not a PNG"
  # tokens with "$" are text, not mathtext (an odd "$" made matplotlib fail)
  printf 'a$b\n$x^$\nprice $5\n' > tokd.txt
  for i in 3 4 5 6 7 8 9 10 11; do echo "t$i" >> tokd.txt; done
  expect_ok "weights png, tokens with \$" "$cli" weights --q qs.npy --k ks.npy --out wd.npy --png wd.png --tokens tokd.txt
  png_ok wd.png && ok || bad "wd.png is not a PNG"
  expect_ok "weights png log" "$cli" weights --q qs.npy --k ks.npy --out wl.npy --png wl.png --log
  png_ok wl.png && ok || bad "wl.png is not a PNG"
  expect_ok "weights compare" "$cli" weights --q qs.npy --k ks.npy --causal --out wc.npy --png wc.png --compare reference
  png_ok wc.png && [ -f wc.compare.npy ] && ok || bad "compare: wc.png / wc.compare.npy missing"
  grep -q "compare   reference: mean row L1" out.txt && ok || bad "compare prints no L1: $(cat out.txt)"
  expect_2 "weights tokens count" "--tokens tok5.txt: 5 lines; expected one token per key position, n_k = 12" \
    "$cli" weights --q qs.npy --k ks.npy --out w.npy --png w.png --tokens tok5.txt
  expect_2 "weights bad python" "--png: cannot run /nonexistent/python3" \
    env ATTNKIT_PYTHON=/nonexistent/python3 "$cli" weights --q qs.npy --k ks.npy --out w.npy --png w.png
  expect_2 "weights script missing" "ATTNKIT_HEATMAP=/nonexistent.py is not a file" \
    env ATTNKIT_HEATMAP=/nonexistent.py "$cli" weights --q qs.npy --k ks.npy --out w.npy --png w.png
  expect_2 "weights png unwritable" "--png: /usr/bin/python3" \
    "$cli" weights --q qs.npy --k ks.npy --out w.npy --png /nonexistent-dir/w.png
else
  echo "SKIP: PNG checks ($py has no matplotlib)"
fi
echo "cli-layer: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
