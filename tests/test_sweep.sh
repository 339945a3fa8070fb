#!/usr/bin/env bash
# A tiny sweep produces well-formed JSON lines with every field, and the report script turns it
# into REPORT.md and valid PNGs.
set -u
cli="$1"
src="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else echo "FAIL: $*"; fail=$((fail + 1)); fi; }

mkdir -p "$work/real"
"$cli" gen --n 96 --d 16 --heads 2 --family local --seed 5 --prefix "$work/real/toy" >/dev/null
"$cli" sweep --suite quick --backends exact,reference --families gaussian,peaky --n 64,200 --heads 2 --d 16 \
  --repeat 2 --inputs "$work/real" --out "$work/out" 2>"$work/progress.txt"
check test $? -eq 0
check grep -q "ETA" "$work/progress.txt"
check /usr/bin/python3 - "$work/out" <<'PY'
import json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/results.jsonl") if l.strip()]
fields = ["spec", "label", "backend", "family", "input", "n", "d", "heads", "causal", "status", "ms_best", "ms_median",
          "gflops", "gflops_actual", "sgemm_gflops", "ratio_sgemm", "speedup", "check", "max_abs", "rel_fro",
          "mean_row_l2", "prob_l1", "bound_max", "bound_holds", "baseline_rel_fro", "beats_baseline",
          "peak_extra_mib"]
for r in rows:
    missing = [f for f in fields if f not in r]
    assert not missing, (missing, r)
# 2 families x 2 sizes + 1 real input x 2 masks = 6 inputs; 2 backends + the mean(V) row each
assert len(rows) == 18, len(rows)
timed = [r for r in rows if r["spec"] != "mean(V)"]
assert all(r["status"] == "ok" for r in timed), timed
assert all(r["rel_fro"] < 2e-6 for r in timed), [r["rel_fro"] for r in timed]
assert all(r["ms_best"] > 0 and r["ms_median"] >= r["ms_best"] for r in timed)
assert all(r["sgemm_gflops"] > 0 for r in timed)
ex = [r for r in timed if r["backend"] == "exact"]
assert all(r["speedup"] == 1 for r in ex)
assert {r["family"] for r in rows} == {"gaussian", "peaky", "trained"}
assert any(r["causal"] for r in rows if r["family"] == "trained")
assert all(0 < r["baseline_rel_fro"] for r in rows)
meta = json.load(open(d + "/meta.json"))
for k in ("cpu", "cores", "sgemm_gflops", "blas", "simd", "threads"):
    assert k in meta, k
csv = open(d + "/results.csv").read().splitlines()
assert len(csv) == 19 and csv[0].startswith("spec,label,backend,family")
PY
check /usr/bin/python3 "$src/reports/make_report.py" "$work/out"
check test -s "$work/out/REPORT.md"
check grep -q "sgemm 2048" "$work/out/REPORT.md"
pngs=$(ls "$work/out"/*.png 2>/dev/null | wc -l)
check test "$pngs" -ge 4
for p in "$work/out"/*.png; do
  check test "$(head -c 8 "$p" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"
done
# bad input
"$cli" sweep --suite nope --out "$work/x" 2>/dev/null
check test $? -eq 2
"$cli" sweep --backends exact:zzz=1 --n 64 --out "$work/x" 2>/dev/null
check test $? -eq 2
"$cli" sweep --n 1 --out "$work/x" 2>/dev/null
check test $? -eq 2
"$cli" sweep --families exact --out "$work/x" 2>/dev/null
check test $? -eq 2
echo "sweep: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
