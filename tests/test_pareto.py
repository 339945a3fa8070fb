#!/usr/bin/python3
"""Pareto front on hand-made points."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reports"))
from pareto import pareto_front  # noqa: E402

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


pts = [(0.1, 10), (0.2, 5), (0.05, 2), (0.3, 20), (0.1, 8), (0.5, 20), (float("nan"), 100)]
check(pareto_front(pts) == [2, 0, 3], pareto_front(pts))
check(pareto_front([]) == [], "empty")
check(pareto_front([(1, 1)]) == [0], "single")
check(pareto_front([(1, 1), (1, 1)]) == [0, 1], "equal points both kept")
check(pareto_front([(1, 5), (2, 5)]) == [0], "same speed, worse error dominated")
check(pareto_front([(1, 5), (1, 6)]) == [1], "same error, higher speed dominates")
check(pareto_front([(1e-3, 1), (1e-2, 3), (1e-1, 9)]) == [0, 1, 2], "a monotone front")
print(f"pareto: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
