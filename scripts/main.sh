#!/usr/bin/env bash
# The main job: installs missing Debian packages, builds (release), generates a problem and runs
# exact attention on it, checked against the fp64 reference.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
out=${ATTNKIT_OUT:-results}
mkdir -p "$out"
./build/src/cli/attnkit gen --n 4096 --d 64 --heads 8 --family gaussian --seed 0 --prefix "$out/gaussian"
./build/src/cli/attnkit run --backend exact --q "$out/gaussian_q.npy" --k "$out/gaussian_k.npy" \
  --v "$out/gaussian_v.npy" --out "$out/gaussian_out.npy" --repeat 5 --check
