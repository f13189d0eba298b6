"""The optimiser both fits share: quasi-Newton on log-parameters inside a box, and the checks around it."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# The optimisers' box, on parameters whose units are scaled away (time in units of the mean T,
# amounts in units of the mean m): a fit that ends within BOUND_MARGIN of it "hit a bound".
PARAM_LOW, PARAM_HIGH = 1e-4, 1e4
BOUND_MARGIN = 1.001


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """A sum of products without BLAS: numpy's `@` hands long vectors to a threaded BLAS, whose
    threads made these fits many times slower on a busy 2-core machine."""
    return float(np.multiply(a, b).sum())


def minimise(fg, z0: np.ndarray, max_iter: int = 200, gtol: float = 1e-9) -> tuple[np.ndarray, bool]:
    """Quasi-Newton on log-parameters inside the box [PARAM_LOW, PARAM_HIGH]: a first Hessian from
    finite differences of the analytic gradient (again whenever a step fails), BFGS updates of it in
    between, each step made positive definite and followed by a backtracking line search.
    Returns (z, converged)."""
    lo, hi = math.log(PARAM_LOW), math.log(PARAM_HIGH)
    z = np.clip(np.asarray(z0, dtype=np.float64), lo, hi)
    f, g = fg(z)
    if not (math.isfinite(f) and np.all(np.isfinite(g))):
        return z, False

    def fd_hessian(z: np.ndarray, g: np.ndarray) -> np.ndarray:
        h = 1e-6
        hess = np.empty((z.size, z.size))
        for i in range(z.size):
            zi = z.copy()
            zi[i] += h
            hess[:, i] = (fg(zi)[1] - g) / h
        return (hess + hess.T) / 2

    hess = fd_hessian(z, g)
    fresh = True
    for _ in range(max_iter):
        blocked = ((z <= lo) & (g > 0)) | ((z >= hi) & (g < 0))
        free = ~blocked
        if not free.any() or np.max(np.abs(g[free])) < gtol:
            return z, True
        sub = hess[np.ix_(free, free)]
        if not np.all(np.isfinite(sub)):
            sub = np.eye(int(free.sum()))
        vals, vecs = np.linalg.eigh(sub)
        vals = np.maximum(np.abs(vals), 1e-8 * max(1.0, float(np.max(np.abs(vals)))))
        step = np.zeros_like(z)
        step[free] = -vecs @ ((vecs.T @ g[free]) / vals)
        norm = float(np.linalg.norm(step))
        if norm > 2.0:
            step *= 2.0 / norm
        t = 1.0
        while t > 1e-12:
            zn = np.clip(z + t * step, lo, hi)
            fn, gn = fg(zn)
            if math.isfinite(fn) and fn <= f + 1e-4 * float(g @ (zn - z)) and np.all(np.isfinite(gn)):
                break
            t /= 2
        else:
            if not fresh:  # the updated Hessian led nowhere: measure it again, from here
                hess, fresh = fd_hessian(z, g), True
                continue
            return z, bool(np.max(np.abs(g[free])) < 1e-6)
        if f - fn < 1e-15 * max(1.0, abs(f)) and np.max(np.abs(gn[free])) < 1e-6:
            return zn, True
        s, y = zn - z, gn - g
        sy = float(s @ y)
        if sy > 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(y)):  # BFGS update of the Hessian
            hs = hess @ s
            hess = hess - np.outer(hs, hs) / float(s @ hs) + np.outer(y, y) / sy
        fresh = False
        z, f, g = zn, fn, gn
    return z, False


def on_bound(values: Sequence[float]) -> bool:
    return any(v <= PARAM_LOW * BOUND_MARGIN or v >= PARAM_HIGH / BOUND_MARGIN for v in values)
