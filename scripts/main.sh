#!/usr/bin/env bash
# The main job: installs missing Debian packages, builds (release), runs the quick benchmark
# sweep (every backend of the build, every input family, the trained-model inputs) and writes the
# accuracy-vs-speed report. Usage: scripts/main.sh [quick|full] (default quick).
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:-quick}
scripts/install_deps.sh python3-torch  # torch: the report's PyTorch peer row
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
out=${ATTNKIT_OUT:-results/$suite}
inputs=()
data=../shared/data/trained-attention
if [ -d "$data" ]; then
  inputs=(--inputs "$data")
else
  echo "main: $data not found; the sweep runs on generated inputs only" >&2
fi
./build/src/cli/attnkit sweep --suite "$suite" "${inputs[@]}" --out "$out"
# Decode (issue 18): small cache lengths in the quick suite (about a minute); the full grid and the
# issue's N = 65536 shape are `scripts/decode_report.sh all|acceptance` (see reports/decode/README.md).
decode_msg=$(./build/src/cli/attnkit decode 2>&1 || true)
case $decode_msg in
  *"built without decode"*) echo "main: attnkit was built without decode; no decode section" >&2 ;;
  *)
    rm -f "$out/decode/decode.jsonl"
    OUT="$out/decode" scripts/decode_report.sh "$([ "$suite" = quick ] && echo quick || echo all)" >/dev/null
    ;;
esac
report=$(/usr/bin/python3 reports/make_report.py "$out")
echo "report: $report"
