#!/usr/bin/env bash
# Installs the Debian 12 packages attnkit needs, only those missing. Run as root (or with sudo).
set -euo pipefail
# python3-dev, pybind11-dev: the Python module (option python); python3-pip, python3-mesonpy and
# patchelf (meson-python 0.12 bundles the libraries into the wheel with it): pip install .
pkgs=(meson ninja-build g++ pkg-config libxsimd-dev libopenblas-dev catch2 libbenchmark-dev
      python3-numpy python3-matplotlib python3-dev pybind11-dev python3-pip python3-mesonpy patchelf
      openmpi-bin libopenmpi-dev "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
