# Sourced by the CLI test scripts: a scratch folder, counters and the two expectations.
# expect_ok WHAT CMD...          the command exits 0
# expect_2 WHAT MESSAGE CMD...   the command exits 2 with one line on stderr containing MESSAGE
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
expect_ok() {
  local what="$1"; shift
  if "$@" >out.txt 2>err.txt; then ok; else bad "$what: exit $? $(cat err.txt)"; fi
}
expect_2() {
  local what="$1" msg="$2"; shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  if [ $rc -ne 2 ]; then bad "$what: exit $rc, expected 2 $(cat err.txt)"; return; fi
  if [ "$(wc -l <err.txt)" -ne 1 ]; then bad "$what: stderr is not one line: $(cat err.txt)"; return; fi
  if ! grep -qF -- "$msg" err.txt; then bad "$what: message '$(cat err.txt)' lacks '$msg'"; return; fi
  ok
}
