#!/usr/bin/env bash
# Decode measurements (issue 18): JSON lines from `attnkit decode`, one per run, into
# $OUT/decode.jsonl (default results/decode), and a markdown table from them.
#   speed:   ms/token and cache GB/s vs the read bandwidth of the same run, per backend and storage,
#            generated inputs (heads 32, kv heads 8, d 128) at each cache length of $NS
#   trained: decode error (vs fp64) of every backend on the last 256 positions of every trained
#            input (../shared/data/trained-attention), pages:keep=N/8 next to local:window of the
#            same number of keys (keep + the newest page)
# Usage: scripts/decode_report.sh [speed|trained|all]   (env: NS="4096 16384 65536", THREADS=2, STEPS=8)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
cli=./build/src/cli/attnkit
out=${OUT:-results/decode}
mkdir -p "$out"
NS=${NS:-"4096 16384 65536"}
THREADS=${THREADS:-2}
STEPS=${STEPS:-8}
if [ "$what" = speed ] || [ "$what" = all ]; then
  for n in $NS; do
    for st in f32 bf16 int8; do
      for spec in exact "pages:page=16,keep=$((n / 8))"; do
        "$cli" decode --backend "$spec" --storage $st --cache "$n" --steps "$STEPS" --threads "$THREADS" --json >>"$out/decode.jsonl"
      done
    done
    "$cli" decode --backend "local:window=$((n / 8 + 16))" --cache "$n" --steps "$STEPS" --threads "$THREADS" --json >>"$out/decode.jsonl"
  done
fi
if [ "$what" = trained ] || [ "$what" = all ]; then
  data=../shared/data/trained-attention
  for q in "$data"/*_q.npy; do
    base=${q%_q.npy}
    n=$(/usr/bin/python3 -c "import numpy as np; print(np.load('$q', mmap_mode='r').shape[2])")
    for spec in exact "pages:page=16,keep=$((n / 8))" "local:window=$((n / 8 + 16))" performer linear; do
      for st in f32 bf16 int8; do
        case $spec in performer|linear) [ $st = f32 ] || continue ;; esac
        "$cli" decode --backend "$spec" --storage $st --steps 256 --threads "$THREADS" --q "$q" --k "${base}_k.npy" \
          --v "${base}_v.npy" --check --json | sed "s|^{|{\"input\": \"$(basename "$base")\", |" >>"$out/decode.jsonl"
      done
    done
  done
fi
/usr/bin/python3 - "$out/decode.jsonl" "$out/decode_speed.png" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
speed = [r for r in rows if 'input' not in r]
if speed:
    # ms/token vs cache length per backend and storage; dashed: the time to read the exact cache
    # of each storage once at the read bandwidth measured in the same runs (the bandwidth line).
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = {}
    for r in speed:
        series.setdefault((r['backend'].split(':')[0], r['storage']), []).append(r)
    for (b, st), rs in sorted(series.items()):
        rs.sort(key=lambda r: r['cache'])
        ax.plot([r['cache'] for r in rs], [r['ms_per_token'] for r in rs], marker='o', label=f'{b} {st}')
    bpe = {'f32': 4, 'bf16': 2, 'int8': 1}
    for st, e in bpe.items():
        rs = sorted([r for r in speed if r['backend'] == 'exact' and r['storage'] == st], key=lambda r: r['cache'])
        if rs:
            ideal = [r['cache'] * r['kv_heads'] * r['batch'] * (r['d'] + r['d_v']) * e / (r['read_gbps'] * 1e9) * 1e3 for r in rs]
            ax.plot([r['cache'] for r in rs], ideal, linestyle='--', color='gray', linewidth=0.8)
            ax.annotate(f'read bw, {st}', (rs[-1]['cache'], ideal[-1]), fontsize=7, color='gray')
    ax.set_xscale('log', base=2)
    ax.set_yscale('log')
    ax.set_xlabel('cached positions')
    ax.set_ylabel('ms per token (best step)')
    ax.set_title(f"decode, {speed[0]['heads']} heads / {speed[0]['kv_heads']} kv heads, d={speed[0]['d']}, {speed[0]['threads']} threads")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
if speed:
    print('| cache | backend | storage | threads | ms/token | cache GB/s | read GB/s | ratio |')
    print('|---|---|---|---|---|---|---|---|')
    for r in speed:
        print(f"| {r['cache']} | {r['backend']} | {r['storage']} | {r['threads']} | {r['ms_per_token']:.3f} | "
              f"{r['cache_gbps']:.2f} | {r['read_gbps']:.2f} | {r['ratio_read']:.2f} |")
err = [r for r in rows if 'input' in r]
if err:
    print('\n| input | backend | storage | rel. Frobenius vs fp64 | max abs |')
    print('|---|---|---|---|---|')
    for r in err:
        print(f"| {r['input']} | {r['backend'].split(',')[0]} | {r['storage']} | {r['rel_fro']:.3g} | {r['max_abs']:.3g} |")
PY
