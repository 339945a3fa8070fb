#!/usr/bin/env bash
# CLI behaviour: success paths and exit code 2 with a message for each bad input.
set -u
cli="$1"
. "$(dirname "$0")/cli_checks.sh"

expect_ok "list" "$cli" list
grep -q "^exact" out.txt && grep -q "^reference" out.txt && ok || bad "list lacks exact/reference"
expect_ok "run --help" "$cli" run --backend exact --help
grep -q "^  run --backend SPEC" out.txt && ! grep -q "^  gen " out.txt && ok || bad "run --help: $(cat out.txt)"
expect_ok "sweep -h" "$cli" sweep -h
grep -q "defaults: --suite quick, --threads 2" out.txt && ok || bad "sweep -h: $(cat out.txt)"
expect_2 "unknown command with --help" "unknown command 'nosuch'" "$cli" nosuch --help
expect_ok "gen" "$cli" gen --n 300 --d 32 --heads 2 --family peaky --seed 3 --prefix p
expect_2 "OMP_NUM_THREADS=100000" "OMP_NUM_THREADS gives 100000 threads; expected at most 4096" env OMP_NUM_THREADS=100000 \
  "$cli" run --backend exact --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy
expect_ok "OMP_NUM_THREADS=100000 with --threads" env OMP_NUM_THREADS=100000 "$cli" run --backend exact --q p_q.npy \
  --k p_k.npy --v p_v.npy --out o.npy --threads 2
expect_ok "run --check" "$cli" run --backend exact --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy --check --repeat 3
grep -q "rel_fro" out.txt && ok || bad "run --check prints no rel_fro"
expect_ok "run --json" "$cli" run --backend exact --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy --check --json --causal --threads 1
/usr/bin/python3 - <<'PY' && ok || bad "json output"
import json, numpy as np
r = json.load(open("out.txt"))
for key in ("backend", "shape", "ms_best", "ms_median", "gflops", "max_abs", "rel_fro"):
    assert key in r, key
assert r["rel_fro"] <= 2e-6, r
o = np.load("o.npy")
assert o.shape == (1, 2, 300, 32) and o.dtype == np.float32
PY
/usr/bin/python3 - <<'PY'
import numpy as np
q = np.load("p_q.npy")[0, 0]
np.save("q2.npy", q)  # [N, D]
np.save("k2.npy", np.load("p_k.npy")[0, 0])
np.save("v2.npy", np.load("p_v.npy")[0, 0])
np.save("len.npy", np.array([100], dtype=np.int32))
np.save("lenf.npy", np.array([100.0], dtype=np.float32))
np.save("len3.npy", np.array([400], dtype=np.int32))
np.save("len0.npy", np.zeros(0, dtype=np.int32))
np.save("len2.npy", np.array([100, 100], dtype=np.int32))
np.save("q64.npy", q.astype(np.float64))
np.save("qF.npy", np.asfortranarray(np.load("p_q.npy")[0, 0][:, :8]))
np.save("k5.npy", np.load("p_k.npy")[0, 0][:, :5])
PY
expect_ok "rank-2 run with key lengths" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o2.npy --key-lengths len.npy --check
/usr/bin/python3 -c "import numpy as np; assert np.load('o2.npy').shape == (300, 32)" && ok || bad "rank-2 output"
expect_2 "unknown backend" "unknown" "$cli" run --backend nosuch --q q2.npy --k k2.npy --v v2.npy --out o.npy
expect_2 "bad spec key" "unknown key" "$cli" run --backend exact:foo=1 --q q2.npy --k k2.npy --v v2.npy --out o.npy
expect_2 "missing file" "cannot open" "$cli" run --backend exact --q nofile.npy --k k2.npy --v v2.npy --out o.npy
mkdir -p adir
expect_2 "directory as npy" "npy file 'adir': is a directory; expected an .npy file" "$cli" run --backend exact --q q2.npy --k k2.npy --v adir --out o.npy
expect_2 "float64" "dtype '<f8'" "$cli" run --backend exact --q q64.npy --k k2.npy --v v2.npy --out o.npy
expect_2 "fortran" "Fortran" "$cli" run --backend exact --q qF.npy --k k2.npy --v v2.npy --out o.npy
expect_2 "dim mismatch" "k: dim is 5" "$cli" run --backend exact --q q2.npy --k k5.npy --v v2.npy --out o.npy
expect_2 "float key lengths" "expected int32" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --key-lengths lenf.npy
# An empty L.npy is not "no key lengths": B = 1 here, so it must have one entry (run and weights).
expect_2 "empty key lengths" "--key-lengths len0.npy: shape [0]; expected [1] (one per batch)" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --key-lengths len0.npy
expect_2 "key lengths count" "--key-lengths len2.npy: shape [2]; expected [1]" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --key-lengths len2.npy
expect_2 "weights empty key lengths" "--key-lengths len0.npy: shape [0]; expected [1]" "$cli" weights --q q2.npy --k k2.npy --out w.npy --key-lengths len0.npy
expect_2 "key length range" "key_lengths[0]: 400" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --key-lengths len3.npy
expect_2 "bad scale" "--scale -1: expected a finite value > 0" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --scale -1
# The value as typed, not as rounded to float32 (0 and inf), and the flag's name.
expect_2 "scale underflow" "--scale 1e-50: 0 as float32" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --scale 1e-50
expect_2 "scale overflow" "--scale 1e39: above float32's largest value" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --scale 1e39
expect_2 "weights scale underflow" "--scale 1e-50: 0 as float32" "$cli" weights --q q2.npy --k k2.npy --out w.npy --scale 1e-50
expect_2 "bad repeat" "--repeat" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --repeat 0
expect_2 "missing --out" "--out: required" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy
expect_2 "unknown flag" "unknown argument" "$cli" run --bogus
expect_2 "unknown command" "unknown command" "$cli" frobnicate
expect_2 "gen bad family" "family" "$cli" gen --n 4 --d 4 --family nope --prefix x
expect_2 "gen bad n" "--n" "$cli" gen --n 0 --d 4 --prefix x
expect_2 "gen missing d" "--d" "$cli" gen --n 4 --prefix x
# An empty value is refused for every flag, naming it (an empty --png wrote a hidden ".png").
expect_2 "empty --png" "--png '': empty value" "$cli" weights --q q2.npy --k k2.npy --out w.npy --png ""
[ ! -e .png ] && [ ! -e w.npy ] && ok || bad "empty --png wrote a file"
expect_2 "empty --out" "--out '': empty value" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out ""
expect_2 "empty --key-lengths" "--key-lengths '': empty value" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out o.npy --key-lengths ""
expect_2 "gen empty prefix" "--prefix '': empty value" "$cli" gen --n 4 --d 4 --prefix ""
[ ! -e _q.npy ] && ok || bad "gen --prefix '' wrote _q.npy"
# sweep: a list with no entries is refused (it ran nothing, or exact alone), and nothing is created
# before every argument is checked.
expect_2 "sweep empty --n" "--n '': empty value" "$cli" sweep --n "" --families gaussian --backends exact --no-peers --out sw
expect_2 "sweep --n ," "--n ',': no entries; expected a comma-separated list of sequence lengths" "$cli" sweep --n , --no-peers --out sw
expect_2 "sweep --families ," "--families ',': no entries; expected a comma-separated list of input families" "$cli" sweep --families , --no-peers --out sw
expect_2 "sweep --backends ,," "--backends ',,': no entries; expected a comma-separated list of backend specs" "$cli" sweep --backends ,, --no-peers --out sw
expect_2 "sweep bogus backend" "bogus" "$cli" sweep --backends bogus --n 64 --no-peers --out sw
[ ! -e sw ] && ok || bad "sweep with bad arguments created its --out folder"
# One SIMD dispatch (docs/simd.md): ATTNKIT_SIMD reaches every kernel group a backend runs, and
# `run --json` reports the path each group ran on (recorded by the kernels themselves).
"$cli" list >list.txt 2>&1
for path in sse2 avx2 avx512; do
  if ! ATTNKIT_SIMD=$path "$cli" run --backend exact --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy >/dev/null 2>&1; then
    continue  # this CPU or build lacks the path (non-x86, -Dnative, no AVX-512)
  fi
  for case in "exact attend" "performer:features=32 elementwise" "linear elementwise" "clustered:clusters=8 attend,hamming" \
              "clustered:clusters=8,topk=4 hamming"; do
    spec=${case% *} groups=${case##* }
    grep -q "^${spec%%:*}" list.txt || continue  # family not built
    expect_ok "ATTNKIT_SIMD=$path run $spec" env ATTNKIT_SIMD=$path "$cli" run --backend "$spec" --q p_q.npy --k p_k.npy \
      --v p_v.npy --out o.npy --json
    /usr/bin/python3 - "$path" "$groups" <<'PY' && ok || bad "ATTNKIT_SIMD=$path $spec: kernels $(cat out.txt)"
import json, sys
r = json.load(open("out.txt"))
path, groups = sys.argv[1], sys.argv[2].split(",")
assert r["simd"] == path, r
for g in groups:
    assert r["simd_kernels"].get(g) == path, (g, r["simd_kernels"])
PY
  done
done
# A bad ATTNKIT_SIMD is a clear error from every backend, also from those whose first kernel call
# is inside an OpenMP region (there an exception was std::terminate: exit 134).
for spec in $(sed -n 's/^\([a-z][a-z]*\)$/\1/p' list.txt); do
  expect_2 "ATTNKIT_SIMD=bogus run $spec" "ATTNKIT_SIMD=bogus is not available" env ATTNKIT_SIMD=bogus "$cli" run \
    --backend "$spec" --q p_q.npy --k p_k.npy --v p_v.npy --out o.npy
done
# --json stays valid JSON when the spec holds '"' or '\' (performer's projection= is a file name).
if grep -q "^performer$" list.txt; then
  /usr/bin/python3 -c "import numpy as np; np.save('p\"r\\\\oj.npy', np.random.default_rng(0).normal(size=(16, 32)).astype(np.float32))"
  expect_ok "run --json quoted spec" "$cli" run --backend 'performer:features=16,projection=p"r\oj.npy' --q p_q.npy --k p_k.npy \
    --v p_v.npy --out o.npy --json
  /usr/bin/python3 -c "import json; r = json.load(open('out.txt')); assert 'projection=p\"r\\\\oj.npy' in r['backend'], r" \
    && ok || bad "run --json with a quoted spec: $(cat out.txt)"
fi
# Out of memory end to end: a clear line and exit 2, not a crash. Under a 4 GiB address-space limit
# (ulimit -v), which the sanitizers' shadow memory cannot run in: skipped for a sanitizer build.
if ldd "$cli" 2>/dev/null | grep -qE 'libasan|libubsan'; then
  echo "cli: out-of-memory check skipped (sanitizer build)"
else
  expect_2 "gen past the memory limit" "could not allocate" bash -c "ulimit -v 4000000 && exec \"\$0\" gen --n 3000000 --d 256 --heads 8 --prefix huge" "$cli"
fi
printf 'garbage garbage garbage' > junk.npy
expect_2 "garbage npy" "magic" "$cli" run --backend exact --q junk.npy --k k2.npy --v v2.npy --out o.npy
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
