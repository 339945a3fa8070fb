#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds (release), runs every test suite,
# and ends with one line "N passed, N failed". Exit status non-zero when any test fails or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
build=${ATTNKIT_TEST_BUILD:-build-test}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release -Dbench=false >/dev/null
ninja -C "$build" >/dev/null
status=0
meson test -C "$build" --num-processes 2 --print-errorlogs || status=$?
/usr/bin/python3 scripts/count_tests.py "$build/meson-logs/testlog.json" || status=1
exit $status
