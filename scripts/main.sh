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
report=$(/usr/bin/python3 reports/make_report.py "$out")
echo "report: $report"
