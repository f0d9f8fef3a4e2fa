"""The fitted convergence order helper shared by the samplers' order tests."""
import math


def slope(ns, errs):
    """Negated least-squares slope of log(error) against log(steps)."""
    lx = [math.log(n) for n in ns]
    ly = [math.log(e) for e in errs]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return -sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)
