"""Sums the test cases of `meson test` runs from their testlog.json files.

usage: count_tests.py TESTLOG.json [TESTLOG.json ...] [--extra PASSED FAILED]

Catch2 executables report "test cases: N | P passed | F failed" (or "All tests passed (... in N
test cases)"); script tests print "NAME: P passed, F failed"; pytest ends with a summary line such
as "=== 2 failed, 79 passed, 1 skipped in 18.5s ===" (errors count as failed, skips not at all). A test whose output has neither counts
as one case, passed or failed by its exit status; a skipped suite (exit 77: a SIMD path this CPU lacks)
counts as skipped, not failed. Prints "P passed, F failed" and exits 1 when
anything failed or nothing ran.
"""
import json
import re
import sys


def count(entry):
    out = entry.get("stdout", "") or ""
    m = re.search(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed", out)
    if m:
        return int(m.group(2)), int(m.group(3))
    m = re.search(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)", out)
    if m:
        return int(m.group(1)), 0
    m = re.search(r"^\S+: (\d+) passed, (\d+) failed", out, re.M)
    if m:
        return int(m.group(1)), int(m.group(2))
    summaries = re.findall(r"^=+ (\d+ [a-z]+(?:, \d+ [a-z]+)*) in [\d.]+s(?: \([^)]*\))? =+$", out, re.M)
    if summaries:  # pytest
        counts = {word: int(n) for n, word in re.findall(r"(\d+) ([a-z]+)", summaries[-1])}
        return counts.get("passed", 0), counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    if entry.get("result") == "SKIP":  # e.g. a SIMD path this CPU lacks (exit 77): counted apart
        return 0, 0
    return (1, 0) if entry.get("result") == "OK" else (0, 1)


def main(argv):
    passed = failed = skipped = 0
    logs = argv
    if "--extra" in argv:
        i = argv.index("--extra")
        passed, failed = int(argv[i + 1]), int(argv[i + 2])
        logs = argv[:i] + argv[i + 3:]
    for path in logs:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                entry = json.loads(line)
                p, fl = count(entry)
                skipped += entry.get("result") == "SKIP"
                if entry.get("result") not in ("OK", "EXPECTEDFAIL", "SKIP") and fl == 0:
                    fl = 1  # crashed or timed out after reporting success
                passed += p
                failed += fl
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
