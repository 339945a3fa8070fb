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
          "spread", "runs", "gflops", "gflops_actual", "sgemm_gflops", "ratio_sgemm", "speedup", "check", "max_abs", "rel_fro",
          "mean_row_l2", "prob_l1", "bound_max", "bound_holds", "baseline_rel_fro", "beats_baseline",
          "peak_extra_mib"]
for r in rows:
    missing = [f for f in fields if f not in r]
    assert not missing, (missing, r)
# 2 families x 2 sizes + 1 real input x 2 masks = 6 inputs; 2 backends, 2 peers (numpy, torch) and
# the mean(V) row each
assert len(rows) == 30, len(rows)
peers = [r for r in rows if r["backend"] in ("numpy", "torch")]
timed = [r for r in rows if r["spec"] != "mean(V)" and r not in peers]
assert all(r["status"] == "ok" for r in timed), timed
assert all(r["rel_fro"] < 2e-6 for r in timed), [r["rel_fro"] for r in timed]
assert all(r["ms_best"] > 0 and r["ms_median"] >= r["ms_best"] for r in timed)
assert all(r["spread"] == r["ms_median"] / r["ms_best"] or abs(r["spread"] - r["ms_median"] / r["ms_best"]) < 1e-4 * r["spread"]
           for r in timed)
assert all(r["sgemm_gflops"] > 0 for r in timed)
# --repeat 2, and more (up to 1000) while the timed runs add up to less than 0.05 s: a third run
# means the first two took < 50 ms, and every run before the last took at least ms_best
assert all(2 <= r["runs"] <= 1000 and (r["runs"] == 2 or (r["runs"] - 1) * r["ms_best"] < 50) for r in timed), \
    [(r["runs"], r["ms_best"]) for r in timed]
assert any(r["runs"] > 2 for r in timed if r["n"] == 64)  # n = 64 takes microseconds: many runs
# the peers: numpy always runs (the report needs numpy anyway); torch runs or says why not
assert len(peers) == 12, len(peers)
numpy_rows = [r for r in peers if r["label"] == "numpy (unfused)"]
assert len(numpy_rows) == 6 and all(r["status"] == "ok" for r in numpy_rows), numpy_rows
torch_rows = [r for r in peers if r["backend"] == "torch"]
assert len(torch_rows) == 6
for r in torch_rows:
    assert (r["status"] == "ok" and r["label"].startswith("torch ") and r["label"].endswith(" (math)")) or \
        r["status"].startswith("unavailable: "), r
for r in peers:
    if r["status"] == "ok":
        assert r["rel_fro"] < 1e-5 and r["ms_best"] > 0 and r["ms_median"] >= r["ms_best"] and r["runs"] >= 2, r
        ex = [x for x in timed if x["backend"] == "exact" and x["input"] == r["input"] and x["n"] == r["n"]
              and x["causal"] == r["causal"]]
        assert len(ex) == 1 and abs(r["speedup"] - ex[0]["ms_best"] / r["ms_best"]) < 1e-3 * r["speedup"], (r, ex)
ex = [r for r in timed if r["backend"] == "exact"]
assert all(r["speedup"] == 1 for r in ex)
assert {r["family"] for r in rows} == {"gaussian", "peaky", "trained"}
assert any(r["causal"] for r in rows if r["family"] == "trained")
assert all(0 < r["baseline_rel_fro"] for r in rows)
meta = json.load(open(d + "/meta.json"))
for k in ("cpu", "cores", "sgemm_gflops", "blas", "simd", "threads", "warmup_seconds", "peers"):
    assert k in meta, k
assert meta["warmup_seconds"] >= 0.5, meta
csv = open(d + "/results.csv").read().splitlines()
assert len(csv) == 31 and csv[0].startswith("spec,label,backend,family")
PY
check /usr/bin/python3 "$src/reports/make_report.py" "$work/out"
check test -s "$work/out/REPORT.md"
check grep -q "sgemm 2048" "$work/out/REPORT.md"
check grep -q "^| gaussian | numpy (unfused) | " "$work/out/REPORT.md"
check grep -q "spread" "$work/out/REPORT.md"
check grep -q "bound (all rows)" "$work/out/REPORT.md"

# Above full_check_max_n (4096) the checks run on 256 sampled rows: the bound and the probability
# rows are still filled, and the report's headers say so. Peers stop at n = 4096.
"$cli" sweep --backends exact,local:window=16,local:window=64,global=4 --families local --n 4100 --heads 1 --d 16 \
  --repeat 1 --out "$work/big" 2>/dev/null
check test $? -eq 0
check /usr/bin/python3 - "$work/big" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/results.jsonl") if l.strip()]
loc = [r for r in rows if r["backend"] == "local"]
assert len(loc) == 2, rows
for r in loc:
    assert r["check"] == "sampled:256", r
    assert r["bound_holds"] is True and r["bound_max"] > 0, r
    assert 0 < r["prob_l1"] <= 2, r
ex = [r for r in rows if r["backend"] == "exact"]
assert len(ex) == 1 and ex[0]["prob_l1"] < 1e-5, ex
assert not [r for r in rows if r["backend"] in ("numpy", "torch")]
PY
check /usr/bin/python3 "$src/reports/make_report.py" "$work/big"
check grep -q "bound (256 sampled rows)" "$work/big/REPORT.md"
check grep -q "prob. row L1 (256 sampled rows, head 0)" "$work/big/REPORT.md"
check grep -q " holds " "$work/big/REPORT.md"

# Peers that cannot be found: the sweep still runs, without peer rows, and says why.
ATTNKIT_PEERS=/nonexistent.py "$cli" sweep --backends exact --families gaussian --n 32 --heads 1 --d 8 --repeat 1 \
  --out "$work/nopeers" 2>/dev/null
check test $? -eq 0
check grep -q "ATTNKIT_PEERS=/nonexistent.py is not a file" "$work/nopeers/meta.json"
check test "$(grep -c '"backend": "numpy"' "$work/nopeers/results.jsonl")" -eq 0
"$cli" sweep --backends exact --families gaussian --n 32 --heads 1 --d 8 --repeat 1 --no-peers --out "$work/np2" 2>/dev/null
check test "$(grep -c '"backend": "numpy"' "$work/np2/results.jsonl")" -eq 0
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
