#!/usr/bin/env bash
# `attnkit ring` under mpirun (registered only when meson found MPI): P = 2, 3, 4 ranks, causal and
# not, contiguous and zigzag, B=1 H=4 d=64, n = 1001 (divisible by none of P and 2P), one thread
# per rank: the output equals single-process `attnkit run --backend exact` to 1e-6 relative.
# Then bad input: every rank exits non-zero (each rank's exit status is recorded by a wrapper),
# within a time limit (no hang).
set -u
cli="$1"
mpirun="${2:-mpirun}"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cli_checks.sh"
mpi=("$mpirun" --allow-run-as-root --oversubscribe)
# In the sanitizer stage: OpenMPI's own never-freed allocations are not ours (see the file).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$here/lsan_openmpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export OMPI_MCA_mca_base_component_disable_dlclose=1
py=/usr/bin/python3
export OMP_NUM_THREADS=1

# Relative Frobenius difference and max |diff| / max |ref| of two .npy files, both <= 1e-6.
same() {
  $py - "$1" "$2" <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
assert a.shape == b.shape, (a.shape, b.shape)
rel = np.linalg.norm(a - b) / np.linalg.norm(b)
mx = np.abs(a - b).max() / np.abs(b).max()
assert rel <= 1e-6 and mx <= 1e-6, (rel, mx)
PY
}

expect_ok "gen" "$cli" gen --n 1001 --d 64 --heads 4 --seed 11 --prefix g
expect_ok "exact" "$cli" run --backend exact --q g_q.npy --k g_k.npy --v g_v.npy --out ref.npy --threads 1
expect_ok "exact causal" "$cli" run --backend exact --q g_q.npy --k g_k.npy --v g_v.npy --out ref_c.npy --threads 1 --causal
# Under the sanitizers (ATTNKIT_TEST_SANITIZED, ~7 s per mpirun) P = 3 only: the release stage runs all.
ranks="2 3 4"
[ -n "${ATTNKIT_TEST_SANITIZED:-}" ] && ranks=3
for P in $ranks; do
  for layout in contiguous zigzag; do
    for causal in "" --causal; do
      what="P=$P $layout ${causal:-full}"
      expect_ok "$what" timeout 120 "${mpi[@]}" -np $P "$cli" ring --q g_q.npy --k g_k.npy --v g_v.npy --out o.npy \
        --layout $layout --threads 1 --json $causal
      ref=ref.npy
      [ -n "$causal" ] && ref=ref_c.npy
      same o.npy $ref && ok || bad "$what: output differs from exact"
      $py - $P <<'PY' && ok || bad "$what: json"
import json, sys
r = json.load(open("out.txt"))
P = int(sys.argv[1])
assert r["ms"] > 0 and r["size"] == P
assert [x["rank"] for x in r["ranks"]] == list(range(P)), r["ranks"]
assert sum(x["rows"] for x in r["ranks"]) == 1001
for x in r["ranks"]:
    assert x["compute_ms"] >= 0 and x["wait_ms"] >= 0
PY
    done
  done
done

# Key lengths (global positions) and rank-2 files: against `run` on the same files.
$py - <<'PY'
import numpy as np
for t in "qkv":
    np.save(f"{t}2.npy", np.load(f"g_{t}.npy")[0, 1])
np.save("len.npy", np.array([700], dtype=np.int32))
np.save("k_short.npy", np.load("g_k.npy")[:, :, :1000])
np.save("q5.npy", np.load("g_q.npy")[0, 0, :5])
np.save("len_big.npy", np.array([2000], dtype=np.int32))
PY
expect_ok "exact key lengths" "$cli" run --backend exact --q q2.npy --k k2.npy --v v2.npy --out ref_l.npy --causal --key-lengths len.npy
expect_ok "ring key lengths" timeout 120 "${mpi[@]}" -np 3 "$cli" ring --q q2.npy --k k2.npy --v v2.npy --out o_l.npy \
  --causal --layout zigzag --key-lengths len.npy
same o_l.npy ref_l.npy && ok || bad "key lengths: output differs from exact"

# Bad input. Each rank runs under a wrapper that records its exit status in rc.<rank>.
cat >rank.sh <<'SH'
#!/usr/bin/env bash
# Rank 1 may get its own --k (BAD_K_RANK1) to fail alone.
r=${OMPI_COMM_WORLD_RANK:-x}
args=("$@")
if [ "$r" = 1 ] && [ -n "${BAD_K_RANK1:-}" ]; then
  for i in "${!args[@]}"; do [ "${args[$i]}" = "--k" ] && args[$((i + 1))]=$BAD_K_RANK1; done
fi
"${args[@]}"
rc=$?
echo $rc >"rc.$r"
# RECORD_ONLY: exit 0, since once one rank exits non-zero mpirun kills the others, maybe before
# they have recorded their status. Otherwise pass the status on to mpirun.
[ -n "${RECORD_ONLY:-}" ] && exit 0
exit $rc
SH
chmod +x rank.sh
# every_rank_fails WHAT MESSAGE P [ENV...] -- ARGS...: within the time limit each of the P ranks
# exits 2, stderr names the problem, no output file is left, and mpirun exits non-zero.
every_rank_fails() {
  local what="$1" msg="$2" P="$3"; shift 3
  local envs=()
  while [ "$1" != "--" ]; do envs+=(-x "$1"); shift; done
  shift
  rm -f rc.* o.npy
  RECORD_ONLY=1 timeout 120 "${mpi[@]}" -np "$P" -x RECORD_ONLY "${envs[@]}" ./rank.sh "$cli" ring "$@" >out.txt 2>err.txt
  local rc=$?
  if [ $rc -eq 124 ]; then bad "$what: hangs"; return; fi
  for ((r = 0; r < P; r++)); do
    if [ "$(cat rc.$r 2>/dev/null)" != 2 ]; then bad "$what: rank $r exit '$(cat rc.$r 2>/dev/null)', expected 2"; return; fi
  done
  grep -qF -- "$msg" err.txt && ok || bad "$what: stderr lacks '$msg': $(cat err.txt)"
  [ ! -e o.npy ] && ok || bad "$what: left an output file behind"
  # Passing the ranks' status on, mpirun itself fails (mpirun's behaviour, not attnkit's code: not
  # repeated under the sanitizers).
  [ -n "${ATTNKIT_TEST_SANITIZED:-}" ] && return
  timeout 120 "${mpi[@]}" -np "$P" "${envs[@]}" ./rank.sh "$cli" ring "$@" >out.txt 2>err.txt
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "$what: mpirun exit $rc, expected non-zero (124: hang)"
}
every_rank_fails "wrong-shaped --k" "expected n=1001" 3 -- --q g_q.npy --k k_short.npy --v g_v.npy --out o.npy
every_rank_fails "missing file" "cannot open" 2 -- --q g_q.npy --k nofile.npy --v g_v.npy --out o.npy
export BAD_K_RANK1=k_short.npy
every_rank_fails "only rank 1 reads a wrong-shaped file" "rank 0: stopping, rank 1 failed" 4 BAD_K_RANK1 -- \
  --q g_q.npy --k g_k.npy --v g_v.npy --out o.npy --layout zigzag
export BAD_K_RANK1=nofile.npy
every_rank_fails "only rank 1 cannot open its file" "rank 1: npy file 'nofile.npy': cannot open" 3 BAD_K_RANK1 -- \
  --q g_q.npy --k g_k.npy --v g_v.npy --out o.npy
unset BAD_K_RANK1
every_rank_fails "zigzag with n < 2P" "expected n >= 8" 4 -- --q q5.npy --k q5.npy --v q5.npy --out o.npy --layout zigzag
every_rank_fails "bad layout" "expected contiguous or zigzag" 2 -- --q g_q.npy --k g_k.npy --v g_v.npy --out o.npy --layout striped
every_rank_fails "key length beyond n" "expected 0..1001" 2 -- --q q2.npy --k q2.npy --v q2.npy --out o.npy --key-lengths len_big.npy
every_rank_fails "unwritable --out" "cannot open for writing" 2 -- --q g_q.npy --k g_k.npy --v g_v.npy --out /nonexistent/o.npy

echo "ring: $pass passed, $fail failed"
[ $fail -eq 0 ]
