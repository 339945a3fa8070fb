#!/usr/bin/env bash
# The CLI with the local backend: listed, runs with --check (full-coverage window = exact), causal.
set -eu
cli="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$cli" list | grep -q "^local" || { echo "FAIL: list lacks local"; exit 1; }
"$cli" gen --n 200 --d 16 --heads 2 --family local --seed 1 --prefix p >/dev/null
"$cli" run --backend local:window=401 --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy --check --json >out.json
/usr/bin/python3 -c "
import json; r = json.load(open('out.json'))
assert r['backend'].startswith('local:window=401,'), r
assert r['rel_fro'] <= 2e-6, r"
"$cli" run --backend local:window=32,global=4 --causal --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy --check >out.txt
grep -q "rel_fro" out.txt || { echo "FAIL: no check line"; exit 1; }
if "$cli" run --backend local:window=0 --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy 2>err.txt; then
  echo "FAIL: local without window or blocks accepted"; exit 1
fi
grep -q "window=0 and blocks=0" err.txt || { echo "FAIL: message $(cat err.txt)"; exit 1; }
echo "local cli: ok"
