#!/usr/bin/env bash
# Selective linking (issue: per-backend libraries): install into temporary prefixes, build
# examples/local_only.cpp against the installed attnkit-local via pkg-config (shared and static),
# run it, and check with nm that nothing of the other families is in it; then build with two
# families and MPI disabled, run that build's tests, and check that its `ring` says it was not built.
set -u
src="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else echo "FAIL: $*"; fail=$((fail + 1)); fi; }
quiet() { "$@" >"$work/log.txt" 2>&1 || { cat "$work/log.txt"; return 1; }; }

# Symbols that belong to the kernelized, clustered and layer libraries.
foreign='attnkit::(PerformerBackend|LinearBackend|KernelizedBackend|KernelizedState|kern::|ClusteredBackend|clustered_info|performer_info|linear_info|MultiHeadAttention|make_backend)'

for lib in shared static; do
  prefix="$work/prefix-$lib"
  check quiet meson setup "$work/build-$lib" "$src" --prefix="$prefix" -Ddefault_library=$lib \
    --buildtype=release -Dtests=false -Dbench=false
  check quiet ninja -C "$work/build-$lib"
  check quiet meson install -C "$work/build-$lib" --quiet
  pcdir=$(dirname "$(find "$prefix" -name attnkit-local.pc | head -1)")
  check test -f "$pcdir/attnkit-local.pc"
  for pc in attnkit-core attnkit-exact attnkit-local attnkit-kernelized attnkit-clustered attnkit-layer attnkit; do
    check test -f "$pcdir/$pc.pc"
  done
  # attnkit-local needs the core (and OpenBLAS) and nothing else of attnkit
  req=$(grep '^Requires:' "$pcdir/attnkit-local.pc")
  check grep -q "attnkit-core" <<<"$req"
  if grep -Eq "attnkit-(exact|kernelized|clustered|layer)|attnkit( |,|$)" <<<"${req#Requires:}"; then
    echo "FAIL: attnkit-local.pc requires more of attnkit: $req"; fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
  export PKG_CONFIG_PATH="$pcdir"
  static_flag=""
  [ $lib = static ] && static_flag="--static"
  exe="$work/local_only-$lib"
  check quiet c++ -std=c++20 -O2 "$src/examples/local_only.cpp" -o "$exe" \
    $(pkg-config $static_flag --cflags --libs attnkit-local)
  libdir=$(pkg-config --variable=libdir attnkit-local)
  check quiet env LD_LIBRARY_PATH="$libdir" "$exe"
  LD_LIBRARY_PATH="$libdir" "$exe" | grep -q "^local:window=128" && pass=$((pass + 1)) || { echo "FAIL: local_only output"; fail=$((fail + 1)); }
  if [ $lib = shared ]; then
    needed=$(readelf -d "$exe" | grep NEEDED)
    echo "$needed" | grep -q "libattnkit-local" && pass=$((pass + 1)) || { echo "FAIL: not linked to attnkit-local"; fail=$((fail + 1)); }
    if echo "$needed" | grep -Eq "attnkit-(kernelized|clustered|layer|exact)|libattnkit\.so"; then
      echo "FAIL: $lib example links other attnkit libraries: $needed"; fail=$((fail + 1))
    else
      pass=$((pass + 1))
    fi
  else
    nm -C "$exe" | grep -q "attnkit::LocalBackend::forward" && pass=$((pass + 1)) || { echo "FAIL: static example lacks LocalBackend"; fail=$((fail + 1)); }
  fi
  if nm -C "$exe" | grep -Eq "$foreign"; then
    echo "FAIL: $lib example contains symbols of other families:"; nm -C "$exe" | grep -E "$foreign" | head -5
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
done

# A build without the kernelized and clustered families, and without MPI (as on a machine that has none).
off="$work/build-off"
check quiet meson setup "$off" "$src" --buildtype=release -Dkernelized=disabled -Dclustered=disabled -Dmpi=disabled \
  -Dbench=false
check quiet ninja -C "$off"
check quiet meson test -C "$off" core exact local hardening cli
"$off/src/cli/attnkit" list > "$work/list.txt"
check grep -q "^local" "$work/list.txt"
if grep -Eq "^(performer|linear|clustered)" "$work/list.txt"; then echo "FAIL: disabled families listed"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
"$off/src/cli/attnkit" gen --n 32 --d 8 --prefix "$work/t" >/dev/null
"$off/src/cli/attnkit" run --backend performer --q "$work/t_q.npy" --k "$work/t_k.npy" --v "$work/t_v.npy" \
  --out "$work/o.npy" 2>"$work/err.txt"
check test $? -eq 2
check grep -q "not built; reconfigure with -Dkernelized=enabled" "$work/err.txt"
"$off/src/cli/attnkit" ring --q "$work/t_q.npy" --k "$work/t_k.npy" --v "$work/t_v.npy" --out "$work/o.npy" 2>"$work/err.txt"
check test $? -eq 2
check grep -q "built without MPI, so the ring command was not built" "$work/err.txt"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
