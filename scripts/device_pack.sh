#!/bin/bash
# Packs the release build into build-dev/ (ignored by git) for the device machine: the test and
# benchmark binaries, the attnkit libraries, Google Benchmark (the device's OS has no Debian
# package of it) and the trained inputs, plus build-dev/device_run.sh, which runs there.
# The device machine (an Intel Xeon with AMX, AVX512-BF16 and AVX512-VNNI, 16 cores) is the only
# place the AMX / AVX512-BF16 kernels of issue 17 and the avx512 decode kernels of issue 18 can run;
# the session machines so far were Zen 2 (AVX2 only).
#   scripts/device_pack.sh            # here, after a release build in build/
#   device tool: run(command="build-dev/device_run.sh", carry=["build-dev"], timeout_s=540)
# What it prints: the CPU, the precision and decode test results per kernel set, and the
# bench_exact rows of sgemm, fp32 exact and bf16 / int8 exact and local at n = 4096 (2 threads);
# $OUT/prec4096.json is the benchmark's JSON (docs/precision.md "Measured (AMX)" reads it).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/bench/bench_exact ] || { echo "device_pack.sh: no build/bench/bench_exact; build first (ninja -C build)" >&2; exit 1; }
rm -rf build-dev
mkdir -p build-dev/lib build-dev/data
cp build/bench/bench_exact build/tests/test_precision build/tests/test_decode build/tests/test_simd build/src/cli/attnkit build-dev/
find build -name 'libattnkit*.so.0' -exec cp -L {} build-dev/lib/ \;
cp -L "$(ldd build/bench/bench_exact | awk '/libbenchmark/ {print $3}')" build-dev/lib/
cp -r ../shared/data/trained-attention build-dev/data/
cat >build-dev/device_run.sh <<'EOF'
#!/bin/bash
# Runs on the device machine (see scripts/device_pack.sh): issue 17's kernel sets and speed rows.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=$PWD/lib OMP_WAIT_POLICY=passive ATTNKIT_DATA_DIR=$PWD/data
OUT=${OUT:-/tmp}
grep -m1 'model name' /proc/cpuinfo; grep -m1 -E '^model\s' /proc/cpuinfo; nproc
grep -m1 -o -w -E 'amx_bf16|avx512_bf16|avx512_vnni' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
for s in amx avx512bf16; do
  ATTNKIT_SIMD=$s OMP_NUM_THREADS=2 timeout 150 ./test_precision >$OUT/tp_$s.txt 2>&1; echo "test_precision $s rc=$? $(tail -2 $OUT/tp_$s.txt | tr '\n' ' ')"
done
ATTNKIT_SIMD=avx512 OMP_NUM_THREADS=2 timeout 60 ./test_decode >$OUT/td_avx512.txt 2>&1; echo "test_decode avx512 rc=$? $(tail -2 $OUT/td_avx512.txt | tr '\n' ' ')"
OMP_NUM_THREADS=2 timeout 240 ./bench_exact --benchmark_filter='sgemm_ceiling|BM_precision.*/n:4096/' \
  --benchmark_out=$OUT/prec4096.json --benchmark_out_format=json 2>&1 | grep -v '^\*\*\*' | tail -30
EOF
chmod +x build-dev/device_run.sh
du -sh build-dev
