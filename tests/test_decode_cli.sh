#!/usr/bin/env bash
# attnkit decode: decoding the last S positions of files equals `attnkit run --causal` on the whole
# sequence (B=2, H=8, G=2, several N and S, every storage within its bound, every backend); the
# generated mode's JSON fields; bad input exits 2 with one clear line. Runs that check outputs use a
# 2 MiB read probe (--probe-mib 2); "generated" runs the default one (16x the last-level cache).
cli="$1"
. "$(dirname "$0")/cli_checks.sh"

compare() {  # compare REF.npy OUT.npy S TOL: out [B,H,S,d] vs ref's last S positions (max abs)
  /usr/bin/python3 -c "
import numpy as np, sys
r = np.load('$1'); o = np.load('$2'); S = $3
assert o.shape == r.shape[:2] + (S, r.shape[3]), (o.shape, r.shape)
e = np.abs(o - r[:, :, -S:]).max()
sys.exit(0 if e <= $4 else print('max abs', e) or 1)"
}

for n in 40 1100; do
  "$cli" gen --n $n --d 16 --heads 8 --batch 2 --seed 1 --prefix a >/dev/null
  "$cli" gen --n $n --d 16 --heads 2 --batch 2 --seed 2 --prefix b >/dev/null
  for spec in exact local:window=24 pages:page=16,keep=100000 linear; do
    # run --causal needs the family of the matching backend
    case $spec in local*) "$cli" list | grep -q "^local$" || continue ;; linear) "$cli" list | grep -q "^linear$" || continue ;; esac
    run_spec=$spec
    [ "$spec" = "pages:page=16,keep=100000" ] && run_spec=exact
    expect_ok "run $run_spec n=$n" "$cli" run --backend "$run_spec" --causal --q a_q.npy --k b_k.npy --v b_v.npy --out ref.npy
    s=7; [ $n -gt 100 ] && s=3  # several S: 7 of 40, 3 of 1100
    for s in $s; do
      expect_ok "decode $spec n=$n s=$s" "$cli" decode --probe-mib 2 --backend "$spec" --steps $s --q a_q.npy --k b_k.npy --v b_v.npy --out o.npy
      if compare ref.npy o.npy $s 1e-5; then ok; else bad "decode $spec n=$n s=$s differs from run --causal"; fi
    done
  done
  for st in bf16 int8; do
    expect_ok "decode exact $st" "$cli" decode --probe-mib 2 --backend exact --storage $st --steps 3 --q a_q.npy --k b_k.npy --v b_v.npy --out o.npy --check --json
    if /usr/bin/python3 -c "
import json; r = json.load(open('out.txt'))
assert r['storage'] == '$st' and r['rel_fro'] <= ({'bf16': 1e-2, 'int8': 3e-2}['$st']), r"; then ok; else bad "$st error $(cat out.txt)"; fi
  done
done

expect_ok "generated" "$cli" decode --backend exact --cache 3000 --heads 4 --kv-heads 2 --d 32 --steps 3 --threads 2 --json --check
if /usr/bin/python3 -c "
import json; r = json.load(open('out.txt'))
for k in ('backend', 'storage', 'cache', 'ms_per_token', 'cache_gbps', 'read_gbps', 'ratio_read'): assert k in r, k
assert r['backend'] == 'exact' and r['storage'] == 'f32' and r['cache'] == 3000 and r['threads'] == 2, r
assert r['ms_per_token'] > 0 and r['read_gbps'] > 0 and abs(r['ratio_read'] - r['cache_gbps'] / r['read_gbps']) < 1e-3 * r['ratio_read'], r
assert r['rel_fro'] <= 1e-5, r"; then ok; else bad "generated json $(cat out.txt)"; fi
expect_ok "generated text" "$cli" decode --probe-mib 2 --backend pages:page=16,keep=512 --storage int8 --cache 2000 --heads 4 --kv-heads 2 --d 32 --steps 2
grep -q "ms per token" out.txt && grep -q "read bandwidth" out.txt && ok || bad "text output $(cat out.txt)"

# --json stays valid JSON when the spec holds '"' or '\' (performer's projection= is a file name).
if "$cli" list | grep -q "^performer$"; then
  /usr/bin/python3 -c "import numpy as np; np.save('p\"r\\\\oj.npy', np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32))"
  expect_ok "decode --json quoted spec" "$cli" decode --probe-mib 2 --backend 'performer:features=16,projection=p"r\oj.npy' --cache 20 \
    --heads 2 --kv-heads 1 --d 16 --steps 2 --json
  /usr/bin/python3 -c "import json; r = json.load(open('out.txt')); assert 'projection=p\"r\\\\oj.npy' in r['backend'], r" \
    && ok || bad "decode --json with a quoted spec: $(cat out.txt)"
fi

"$cli" gen --n 1100 --d 16 --heads 3 --batch 2 --seed 1 --prefix h3 >/dev/null
expect_2 "H not multiple of G" "attnkit decode: --q/--k: q has 3 heads, not a multiple" "$cli" decode --backend exact --steps 2 --q h3_q.npy --k b_k.npy --v b_v.npy
expect_2 "negative probe size" "--probe-mib" "$cli" decode --backend exact --steps 1 --cache 10 --probe-mib -1
expect_2 "no steps" "--steps is required" "$cli" decode --backend exact --cache 10
# a bad ATTNKIT_SIMD: a clear error from every decode backend (performer/linear's first kernel call
# is inside a parallel region, where an exception aborted the process)
for spec in exact "local:window=4" "pages:page=2,keep=4" performer linear; do
  expect_2 "ATTNKIT_SIMD=bogus decode $spec" "ATTNKIT_SIMD=bogus is not available" env ATTNKIT_SIMD=bogus "$cli" decode \
    --backend "$spec" --cache 10 --steps 1 --heads 1 --kv-heads 1 --d 16 --threads 1
done
expect_2 "bad storage" "expected f32, bf16 or int8" "$cli" decode --backend exact --steps 1 --cache 10 --storage fp8
# One "attnkit decode: " prefix (main's), not "attnkit decode: decode: ".
expect_2 "both modes" "attnkit decode: give either --cache N" "$cli" decode --backend exact --steps 1 --cache 10 --q a_q.npy --k b_k.npy --v b_v.npy
expect_2 "heads with files" "attnkit decode: --heads applies to generated inputs" "$cli" decode --backend exact --steps 1 --heads 4 --q a_q.npy --k b_k.npy --v b_v.npy
/usr/bin/python3 -c "import numpy as np; np.save('dl0.npy', np.zeros(0, np.int32))"
expect_2 "empty key lengths" "--key-lengths dl0.npy: shape [0]; expected [2] (one per batch)" "$cli" decode --backend exact --steps 2 --q a_q.npy --k b_k.npy --v b_v.npy --key-lengths dl0.npy
/usr/bin/python3 -c "import numpy as np; np.save('dlbig.npy', np.array([1101, 1100], np.int32))"
for spec in exact local:window=24; do  # local ignores the library's capacity: the CLI checks N itself
  expect_2 "$spec key lengths > N" "--key-lengths dlbig.npy: key_lengths[0]=1101; expected a value in [0, 1100]" "$cli" decode --backend $spec --steps 2 --q a_q.npy --k b_k.npy --v b_v.npy --key-lengths dlbig.npy
done
expect_2 "steps > N" "attnkit decode: --steps 5000 exceeds the sequence length 1100; expected S <= N" "$cli" decode --backend exact --steps 5000 --q a_q.npy --k b_k.npy --v b_v.npy
expect_2 "bad backend" "expected exact, local, pages, performer or linear" "$cli" decode --backend nystrom --steps 1 --cache 10
"$cli" list | grep -q "^performer$" && expect_2 "performer int8" "expected f32" "$cli" decode --backend performer --storage int8 --steps 1 --cache 10
# Out of memory end to end (a 32 GiB cache under a 4 GiB address-space limit): one line, exit 2.
# The sanitizers' shadow memory cannot run under the limit: skipped for a sanitizer build.
if ldd "$cli" 2>/dev/null | grep -qE 'libasan|libubsan'; then
  echo "decode cli: out-of-memory check skipped (sanitizer build)"
else
  expect_2 "cache past the memory limit" "attnkit decode: out of memory" bash -c "ulimit -v 4000000 && exec \"\$0\" decode --backend exact --cache 4000000 --heads 8 --kv-heads 8 --d 128 --steps 1" "$cli"
fi

echo "decode cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
