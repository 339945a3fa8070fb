#!/usr/bin/env bash
# precision=bf16|int8 through the CLI (docs/precision.md): `list` and `list --json` name the kernel
# set, `run --json` says which set ran and checks against fp64, bad values exit 2, ATTNKIT_SIMD with
# an fp32 path runs the portable set, and a tiny sweep records the set in meta.json, gives the
# precision points no bound, and the report draws them.
set -u
cli="$1"
src="$2"
. "$(dirname "$0")/cli_checks.sh"

expect_ok "list" "$cli" list
head -1 out.txt | grep -Eq "^precision kernels: (amx|avx512bf16|portable) " && ok || bad "list: first line $(head -1 out.txt)"
set_name=$(head -1 out.txt | sed -E 's/^precision kernels: ([a-z0-9]+) .*/\1/')
grep -q "precision    string default=fp32" out.txt && ok || bad "list shows no precision parameter"
expect_ok "list --json" "$cli" list --json
/usr/bin/python3 - "$set_name" <<'PY' && ok || bad "list --json: $(head -c 300 out.txt)"
import json, sys
r = json.load(open("out.txt"))
assert r["precision_kernels"] == sys.argv[1], r["precision_kernels"]
for b in r["backends"]:
    if b["name"] in ("exact", "local", "pruned") and b["built"]:
        p = [x for x in b["params"] if x["name"] == "precision"]
        assert p and p[0]["default"] == "fp32" and p[0]["type"] == "string", b
PY

expect_ok "gen" "$cli" gen --n 256 --d 64 --heads 4 --family gaussian --seed 3 --prefix p
for case in "exact:precision=bf16 1e-2" "exact:precision=int8 3e-2" "local:window=64,precision=bf16 1e-2"; do
  spec=${case% *} tol=${case##* }
  expect_ok "run $spec" "$cli" run --backend "$spec" --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy --causal --check --json
  /usr/bin/python3 - "$spec" "$tol" "$set_name" <<'PY' && ok || bad "run $spec: $(cat out.txt)"
import json, sys
spec, tol, s = sys.argv[1], float(sys.argv[2]), sys.argv[3]
r = json.load(open("out.txt"))
prec = spec.split("precision=")[1]
assert r["backend"].endswith(",precision=" + prec), r["backend"]
assert r["precision"] == prec and r["precision_kernels"] == s, r
assert r["simd_kernels"].get("lowp", s) == s, r["simd_kernels"]
if spec.startswith("exact"):  # local's window error is on top of the rounding
    assert 1e-5 < r["rel_fro"] <= tol, r["rel_fro"]
PY
done
expect_ok "run fp32" "$cli" run --backend exact:precision=fp32 --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy --json
/usr/bin/python3 -c "
import json; r = json.load(open('out.txt'))
assert r['backend'] == 'exact:block_q=0,block_k=0' and 'precision' not in r, r" && ok || bad "fp32 run: $(cat out.txt)"
expect_2 "bad precision" "exact: precision=fp16; expected fp32, bf16 or int8" "$cli" run --backend exact:precision=fp16 \
  --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy
expect_2 "bad precision (pruned)" "pruned: precision=int4; expected fp32, bf16 or int8" "$cli" run \
  --backend pruned:precision=int4 --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy
# An fp32 SIMD path forced by ATTNKIT_SIMD runs the portable set (compiled for that path).
for path in sse2 avx2 avx512; do
  ATTNKIT_SIMD=$path "$cli" run --backend exact --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy >/dev/null 2>&1 || continue
  expect_ok "ATTNKIT_SIMD=$path bf16" env ATTNKIT_SIMD=$path "$cli" run --backend exact:precision=bf16 --q p_q.npy \
    --k p_k.npy --v p_v.npy --out o.npy --json
  /usr/bin/python3 -c "
import json; r = json.load(open('out.txt'))
assert r['simd'] == '$path' and r['precision_kernels'] == 'portable', r" && ok || bad "ATTNKIT_SIMD=$path: $(cat out.txt)"
done

# A tiny sweep with the precision points: meta.json names the set; no bound, no prob. rows; the
# report has them as their own series.
"$cli" sweep --suite quick --backends exact:precision=bf16,exact:precision=int8,local:window=32,precision=bf16 \
  --families gaussian --n 128 --heads 2 --d 32 --repeat 2 --no-peers --out sw 2>progress.txt
[ $? -eq 0 ] && ok || bad "sweep: $(tail -3 progress.txt)"
/usr/bin/python3 - "$set_name" <<'PY' && ok || bad "sweep results"
import json, sys
meta = json.load(open("sw/meta.json"))
assert meta["precision_kernels"] == sys.argv[1], meta
rows = [json.loads(l) for l in open("sw/results.jsonl") if l.strip()]
lowp = [r for r in rows if "precision=" in r["spec"]]
assert len(lowp) == 3, [r["spec"] for r in rows]  # 3 settings x 1 generated input (non-causal)
assert all(r["status"] == "ok" and r["bound_holds"] is None and r["prob_l1"] is None for r in lowp), lowp
# checked against fp64 like every approximation
assert all(0 < r["rel_fro"] <= (1e-2 if "bf16" in r["label"] else 3e-2)
           for r in lowp if r["label"].startswith("exact")), [(r["label"], r["rel_fro"]) for r in lowp]
PY
/usr/bin/python3 "$src/reports/make_report.py" sw >report.txt 2>&1 && ok || bad "report: $(tail -5 report.txt)"
grep -q "exact:precision=bf16" sw/REPORT.md && grep -q "kernel set of precision" sw/REPORT.md && ok || bad "REPORT.md lacks the precision points"
echo "precision-cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
