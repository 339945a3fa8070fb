#!/usr/bin/env bash
# Decode measurements (issue 18): JSON lines from `attnkit decode`, one per run, into $OUT
# (default results/decode), then the tables (and decode_speed.png) of reports/decode_section.py.
#   quick:      what scripts/main.sh runs (about a minute on 2 cores): the speed grid at small cache
#               lengths (NS, default "1024 4096 16384") and the trained-input errors of every backend
#               at f32 plus exact at bf16 / int8 (decode.jsonl)
#   speed:      ms/token and cache GB/s vs the read bandwidth of the same run, per backend and storage,
#               generated inputs (heads 32, kv heads 8, d 128) at each cache length of NS
#               (default "4096 16384 65536") (decode.jsonl)
#   trained:    decode error (vs fp64) of every backend and storage on the last 256 positions of every
#               trained input (../shared/data/trained-attention); pages:keep=N/8 next to local:window
#               of the same number of keys (keep + the newest page) (decode.jsonl)
#   acceptance: the issue's shape, N = 65536, H = 32, G = 8, d = 128: exact f32 at 1 and 2 threads,
#               bf16 / int8 / pages:page=16,keep=8192 at 2 threads (and pages at 1), REPS rounds
#               (default 3) in alternation so that each configuration meets the same machine states;
#               the tables take the best round of each (acceptance.jsonl; about 3 s per run)
#   all:        speed + trained
# Usage: scripts/decode_report.sh [quick|speed|trained|acceptance|all]
#        (env: OUT, NS, THREADS=2, STEPS=8, REPS=3, OMP_WAIT_POLICY=passive)
# OMP_WAIT_POLICY defaults to passive here (idle OpenMP threads sleep instead of spinning): on a 2-core
# machine shared with other jobs, spinning threads made 2-thread steps of a small cache take 20-50 ms
# instead of 0.3 ms (the spinning thread holds a core that the working one needs).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
cli=./build/src/cli/attnkit
out=${OUT:-results/decode}
mkdir -p "$out"
THREADS=${THREADS:-2}
STEPS=${STEPS:-8}
REPS=${REPS:-3}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
data=../shared/data/trained-attention

# Each JSON line gets the 1-minute load average at its start (the machine state it was measured in)
# and the commit of the code measured (with "+" if the work tree differed from it).
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src include 2>/dev/null || rev="$rev+"
load() { sed "s|^{|{\"loadavg\": $(cut -d' ' -f1 /proc/loadavg), \"commit\": \"$rev\", |"; }

speed() {  # speed NS STORAGES
  for n in $1; do
    for st in $2; do
      for spec in exact "pages:page=16,keep=$((n / 8))"; do
        "$cli" decode --backend "$spec" --storage "$st" --cache "$n" --steps "$STEPS" --threads "$THREADS" --json | load >>"$out/decode.jsonl"
      done
    done
    "$cli" decode --backend "local:window=$((n / 8 + 16))" --cache "$n" --steps "$STEPS" --threads "$THREADS" --json | load >>"$out/decode.jsonl"
  done
}

trained() {  # trained STORAGES_OF_EXACT STORAGES_OF_THE_OTHERS
  [ -d "$data" ] || { echo "decode_report: $data not found; no trained-input errors" >&2; return 0; }
  for q in "$data"/*_q.npy; do
    base=${q%_q.npy}
    n=$(/usr/bin/python3 -c "import numpy as np; print(np.load('$q', mmap_mode='r').shape[2])")
    for spec in exact "pages:page=16,keep=$((n / 8))" "local:window=$((n / 8 + 16))" performer linear; do
      sts=$2
      case $spec in exact) sts=$1 ;; performer|linear) sts=f32 ;; esac
      for st in $sts; do
        "$cli" decode --backend "$spec" --storage "$st" --steps 256 --threads "$THREADS" --q "$q" --k "${base}_k.npy" \
          --v "${base}_v.npy" --check --json | sed "s|^{|{\"input\": \"$(basename "$base")\", |" >>"$out/decode.jsonl"
      done
    done
  done
}

acceptance() {
  local n=65536 a="--cache 65536 --heads 32 --kv-heads 8 --d 128 --steps $STEPS --json"
  for r in $(seq "$REPS"); do
    for t in 1 2; do "$cli" decode --backend exact --storage f32 $a --threads $t | load >>"$out/acceptance.jsonl"; done
    for st in bf16 int8; do "$cli" decode --backend exact --storage $st $a --threads 2 | load >>"$out/acceptance.jsonl"; done
    for t in 1 2; do
      "$cli" decode --backend "pages:page=16,keep=$((n / 8))" --storage f32 $a --threads $t | load >>"$out/acceptance.jsonl"
    done
  done
}

case $what in
  quick)
    speed "${NS:-1024 4096 16384}" "f32 bf16 int8"
    trained "f32 bf16 int8" "f32"
    ;;
  speed) speed "${NS:-4096 16384 65536}" "f32 bf16 int8" ;;
  trained) trained "f32 bf16 int8" "f32 bf16 int8" ;;
  acceptance) acceptance ;;
  all)
    speed "${NS:-4096 16384 65536}" "f32 bf16 int8"
    trained "f32 bf16 int8" "f32 bf16 int8"
    ;;
  *) echo "usage: scripts/decode_report.sh [quick|speed|trained|acceptance|all]" >&2; exit 2 ;;
esac
/usr/bin/python3 reports/decode_section.py "$out"
