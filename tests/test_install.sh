#!/usr/bin/env bash
# Selective linking (issue: per-backend libraries): install into a temporary prefix (shared and
# static libraries), build examples/local_only.cpp against the installed attnkit-local via pkg-config, run it
# and check with nm that nothing of the other families is in it; build and run
# examples/any_backend.cpp against the whole library (pkg-config attnkit); then build with only
# the exact and local families and without MPI, run that build's tests, and check that every
# disabled backend's spec names the option that builds it, and that its `ring` says it was not built.
set -u
src="$1"
cli="$2"  # the full build's attnkit: its `list --json` says which backends and families exist
# meson test points LD_LIBRARY_PATH at the full build's libraries; the builds made here must load their own
unset LD_LIBRARY_PATH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else echo "FAIL: $*"; fail=$((fail + 1)); fi; }
quiet() { "$@" >"$work/log.txt" 2>&1 || { cat "$work/log.txt"; return 1; }; }

# Families and backends from the build itself (the family list of meson.build via the registry).
py=/usr/bin/python3
"$cli" list --json > "$work/all.json"
families=$($py -c 'import json,sys; print(" ".join(dict.fromkeys(b["family"] for b in json.load(open(sys.argv[1]))["backends"])))' "$work/all.json")
others=$(for f in $families; do [ "$f" = local ] || [ "$f" = exact ] || echo "$f"; done)
backends_of() { $py -c 'import json,sys; print(" ".join(b["name"] for b in json.load(open(sys.argv[1]))["backends"] if b["family"] in sys.argv[2:]))' "$work/all.json" "$@"; }
check test -n "$families"

# One build of both kinds (default_library=both compiles each source once for the shared and the
# static libraries), installed into one prefix; the static checks link the archives by file name.
# python.install_env=prefix: the Python module stays inside the temporary prefix too.
# buildtype plain (no optimisation): this checks what is installed and linked, not speed, and
# unoptimised compiles take a fraction of the time (the whole test command has a 30-minute budget).
prefix="$work/prefix"
check quiet meson setup "$work/build-both" "$src" --prefix="$prefix" -Ddefault_library=both \
  --buildtype=plain -Dtests=false -Dbench=false -Dpython.install_env=prefix
check quiet ninja -C "$work/build-both"
check quiet meson install -C "$work/build-both" --quiet
# pkg-config's flags for linking the static archives: each -lattnkit* as -l:libattnkit*.a (the
# prefix holds both kinds, and -l alone picks the shared one).
static_libs() { for f in $(pkg-config --static --libs "$@"); do case $f in -lattnkit*) echo "-l:lib${f#-l}.a" ;; *) echo "$f" ;; esac; done; }
for lib in shared static; do
  pcdir=$(dirname "$(find "$prefix" -name attnkit-local.pc | head -1)")
  check test -f "$pcdir/attnkit-local.pc"
  for pc in attnkit-core attnkit-layer attnkit $(for f in $families; do echo attnkit-$f; done); do
    check test -f "$pcdir/$pc.pc"
  done
  # attnkit-local needs the core (and OpenBLAS) and nothing else of attnkit
  req=$(grep '^Requires:' "$pcdir/attnkit-local.pc")
  check grep -q "attnkit-core" <<<"$req"
  if grep -Eq "attnkit-($(echo $families layer | tr ' ' '|'))|attnkit( |,|$)" <<<"${req#Requires:}" &&
     ! [ "$(grep -o 'attnkit-[a-z]*' <<<"${req#Requires:}" | sort -u)" = "attnkit-core" ]; then
    echo "FAIL: attnkit-local.pc requires more of attnkit: $req"; fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
  export PKG_CONFIG_PATH="$pcdir"
  exe="$work/local_only-$lib"
  libs_of() { if [ $lib = static ]; then static_libs "$@"; else pkg-config --libs "$@"; fi; }
  check quiet c++ -std=c++20 -O2 "$src/examples/local_only.cpp" -o "$exe" \
    $(pkg-config --cflags attnkit-local) $(libs_of attnkit-local)
  libdir=$(pkg-config --variable=libdir attnkit-local)
  check quiet env LD_LIBRARY_PATH="$libdir" "$exe"
  # A program that uses the registry and the core directly links with `pkg-config attnkit` alone.
  any="$work/any_backend-$lib"
  check quiet c++ -std=c++20 -O2 "$src/examples/any_backend.cpp" -o "$any" $(pkg-config --cflags attnkit) $(libs_of attnkit)
  LD_LIBRARY_PATH="$libdir" "$any" "local:window=64" | grep -q "^local:window=64,.*relative Frobenius error" &&
    pass=$((pass + 1)) || { echo "FAIL: any_backend output"; fail=$((fail + 1)); }
  LD_LIBRARY_PATH="$libdir" "$exe" | grep -q "^local:window=128" && pass=$((pass + 1)) || { echo "FAIL: local_only output"; fail=$((fail + 1)); }
  if [ $lib = shared ]; then
    needed=$(readelf -d "$exe" | grep NEEDED)
    echo "$needed" | grep -q "libattnkit-local" && pass=$((pass + 1)) || { echo "FAIL: not linked to attnkit-local"; fail=$((fail + 1)); }
    if echo "$needed" | grep -Eq "attnkit-($(echo $others exact layer | tr ' ' '|'))|libattnkit\.so"; then
      echo "FAIL: $lib example links other attnkit libraries: $needed"; fail=$((fail + 1))
    else
      pass=$((pass + 1))
    fi
  else
    # defined in the executable itself (an undefined "U" entry would mean a shared link), and no
    # attnkit shared library needed (the prefix holds both kinds)
    nm -C --defined-only "$exe" | grep -q "attnkit::LocalBackend::forward" && pass=$((pass + 1)) || { echo "FAIL: static example lacks LocalBackend"; fail=$((fail + 1)); }
    readelf -d "$exe" | grep NEEDED | grep -q "libattnkit" && { echo "FAIL: static example needs a shared attnkit library"; fail=$((fail + 1)); } || pass=$((pass + 1))
  fi
  # Every symbol defined by the other families' libraries (and the registry and layer): none may be in
  # the example.
  libdir=$(pkg-config --variable=libdir attnkit-local)
  : > "$work/foreign.txt"
  # (strong text symbols only: inline functions of the shared headers are weak and may be in both)
  for f in $others layer ""; do
    for l in "$libdir"/libattnkit${f:+-$f}.so "$libdir"/libattnkit${f:+-$f}.a; do
      [ -f "$l" ] && nm -C --defined-only "$l" 2>/dev/null | awk '$2 == "T" {sub(/^[^ ]+ [^ ]+ /, ""); print}' | grep '^attnkit::' >> "$work/foreign.txt"
    done
  done
  sort -u "$work/foreign.txt" -o "$work/foreign.txt"
  check test -s "$work/foreign.txt"
  nm -C --defined-only "$exe" | sed 's/^[^ ]* [^ ]* //' | sort -u > "$work/exe_syms.txt"
  if comm -12 "$work/foreign.txt" "$work/exe_syms.txt" | grep -q .; then
    echo "FAIL: $lib example contains symbols of other families:"; comm -12 "$work/foreign.txt" "$work/exe_syms.txt" | head -5
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
  # The Python module (option python, built when pybind11 and the Python headers are there):
  # meson install puts it in the interpreter's site directory under the prefix, and it imports.
  if [ $lib = shared ] && ls "$work/build-both"/python/attnkit.*.so >/dev/null 2>&1; then
    mod=$(find "$prefix" -name 'attnkit.*.so' -path '*-packages/*' | head -1)
    check test -n "$mod"
    if [ -n "$mod" ]; then
      check quiet env PYTHONPATH="$(dirname "$mod")" LD_LIBRARY_PATH="$libdir" /usr/bin/python3 -c \
        "import numpy as np, attnkit; q = np.ones((2, 4, 8), np.float32); assert attnkit.attention(q, q, q).shape == (2, 4, 8)"
    fi
  fi
done

# A build without every family but exact and local, and without MPI (as on a machine that has none).
off="$work/build-off"
# -O1, and only the CLI and the test programs run here (not every test program of this
# configuration): what is checked is that the library and the CLI build without the other families
# and MPI, work, and name what they lack (the release stage tests the optimised code).
check quiet meson setup "$off" "$src" --buildtype=plain -Doptimization=1 $(for f in $others; do echo -D$f=disabled; done) \
  -Dmpi=disabled -Dbench=false -Dpython=disabled
check quiet ninja -C "$off" src/cli/attnkit tests/test_core tests/test_exact tests/test_local tests/test_hardening
check quiet meson test -C "$off" --no-rebuild core exact local hardening cli
"$off/src/cli/attnkit" list --json > "$work/off.json"
for b in $(backends_of exact local); do
  check grep -q "\"name\": \"$b\", \"family\": \"[a-z]*\", \"built\": true" "$work/off.json"
done
"$off/src/cli/attnkit" gen --n 32 --d 8 --prefix "$work/t" >/dev/null
for f in $others; do
  for b in $(backends_of $f); do
    check grep -q "\"name\": \"$b\", \"family\": \"$f\", \"built\": false" "$work/off.json"
    "$off/src/cli/attnkit" list | grep -q "^$b\$" && { echo "FAIL: disabled backend $b listed"; fail=$((fail + 1)); }
    "$off/src/cli/attnkit" run --backend $b --q "$work/t_q.npy" --k "$work/t_k.npy" --v "$work/t_v.npy" \
      --out "$work/o.npy" 2>"$work/err.txt"
    check test $? -eq 2
    check grep -q "not built; reconfigure with -D$f=enabled" "$work/err.txt"
  done
done
"$off/src/cli/attnkit" ring --q "$work/t_q.npy" --k "$work/t_k.npy" --v "$work/t_v.npy" --out "$work/o.npy" 2>"$work/err.txt"
check test $? -eq 2
check grep -q "built without MPI, so the ring command was not built" "$work/err.txt"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
