#!/usr/bin/env bash
# The test command. Installs missing Debian packages, then:
#   1. release build, every test suite (meson test);
#   2. the same suites built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. each libFuzzer target (clang) for ATTNKIT_FUZZ_SECONDS (default 35) seconds on a copy of
#      tests/fuzz/corpus/.
# Ends with one line "N passed, N failed" over all of it; exits non-zero when anything failed or
# nothing ran. ATTNKIT_TEST_QUICK=1 runs stage 1 only.
set -uo pipefail
cd "$(dirname "$0")/.."
# pytest and torch: the Python module's tests (MultiheadAttention is checked against torch)
scripts/install_deps.sh clang libclang-rt-14-dev libomp-dev python3-pytest python3-torch || exit 1
status=0
logs=()
extra_pass=0
extra_fail=0

stage() { echo "== $*" >&2; }

stage "release build and tests"
if [ ! -f build-test/build.ninja ]; then meson setup build-test --buildtype=release -Dbench=false >/dev/null || exit 1; fi
ninja -C build-test >/dev/null || exit 1
meson test -C build-test --num-processes 2 --print-errorlogs || status=1
logs+=(build-test/meson-logs/testlog.json)

if [ "${ATTNKIT_TEST_QUICK:-0}" != 1 ]; then
  stage "sanitizer build (address, undefined) and tests"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  if [ ! -f build-asan/build.ninja ]; then
    # no Python module: its tests do not run under the sanitizer (it would have to be preloaded).
    # -O1 -g (what the ASan documentation suggests): at -O2 the instrumented SIMD kernels took
    # 1-3 minutes each to compile (avx512 attend 184 s, 29 s at -O1), more than -O1 adds to the runs.
    # (b_ndebug=false: the project's default buildtype is release, whose b_ndebug=if-release would
    # turn assertions off.) -g1: line tables only, enough for the sanitizers' reports (file:line
    # of each frame); full -g made compiles ~1.7x slower (test_conformance 47 -> 28 s with -g1).
    meson setup build-asan -Doptimization=1 -Ddebug=false -Dcpp_args=-g1 -Db_ndebug=false \
      -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false -Dpython=disabled >/dev/null || exit 1
  fi
  ninja -C build-asan >/dev/null || exit 1
  # the install test builds other configurations: the release stage already ran it; so did the
  # per-SIMD-path reruns (suite per-path), whose code paths the default run's memory checks share
  meson test -C build-asan --num-processes 2 --print-errorlogs --timeout-multiplier 3 --no-suite install \
    --no-suite per-path || status=1
  logs+=(build-asan/meson-logs/testlog.json)

  stage "fuzzers (${ATTNKIT_FUZZ_SECONDS:-35} s each)"
  if [ ! -f build-fuzz/build.ninja ]; then
    # -O2 with line tables only (-g1) and assertions on, as the sanitizer build above
    CXX=clang++ meson setup build-fuzz -Doptimization=2 -Ddebug=false -Dcpp_args=-g1 -Db_ndebug=false -Dfuzz=true \
      -Dtests=false -Dbench=false -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
  fi
  # only the fuzz targets: the rest of that configuration (the CLI: ~70 s of compiling) is not fuzzed
  fuzz_targets="npy spec forward"
  ninja -C build-fuzz $(for t in $fuzz_targets; do echo tests/fuzz/fuzz_$t; done) >/dev/null || exit 1
  for target in $fuzz_targets; do
    corpus=$(mktemp -d)
    cp tests/fuzz/corpus/$target/* "$corpus"/
    if build-fuzz/tests/fuzz/fuzz_$target -max_total_time="${ATTNKIT_FUZZ_SECONDS:-35}" -rss_limit_mb=2048 \
        -timeout=20 -print_final_stats=1 -artifact_prefix="build-fuzz/crash-$target-" "$corpus" \
        >"build-fuzz/fuzz_$target.log" 2>&1; then
      echo "fuzz_$target: OK ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/fuzz_$target.log" | grep -o '[0-9]*$') runs)"
      extra_pass=$((extra_pass + 1))
    else
      echo "fuzz_$target: FAILED (see build-fuzz/fuzz_$target.log)"
      tail -40 "build-fuzz/fuzz_$target.log"
      extra_fail=$((extra_fail + 1))
      status=1
    fi
    rm -rf "$corpus"
  done
fi

/usr/bin/python3 scripts/count_tests.py "${logs[@]}" --extra $extra_pass $extra_fail || status=1
exit $status
