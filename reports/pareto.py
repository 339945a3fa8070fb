"""Pareto fronts of (error, speedup) points: lower error and higher speedup are better."""


def pareto_front(points):
    """Indices of the points no other point dominates, ordered by increasing error.

    points: sequence of (error, speedup). A point dominates another when its error is <= and its
    speedup >= the other's, with at least one strict. Points with a non-finite coordinate are never
    on the front. Equal points are all kept.
    """
    finite = [i for i, (e, s) in enumerate(points) if _finite(e) and _finite(s)]
    order = sorted(finite, key=lambda i: (points[i][0], -points[i][1]))
    front = []
    best_speed = float("-inf")
    best_err = None
    for i in order:
        e, s = points[i]
        if s > best_speed or (s == best_speed and e == best_err):
            front.append(i)
            best_speed, best_err = s, e
    return front


def _finite(x):
    return x is not None and x == x and x not in (float("inf"), float("-inf"))
