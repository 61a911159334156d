r"""Max-plus (tropical) spectral theory of the support graph.

For a weight matrix ``A[s, s']`` (``-inf`` = no edge) the max-plus eigenvalue of an
irreducible ``A`` is its **maximum cycle mean**

.. math:: \mu^* = \max_{\text{cycles } C} \frac{1}{|C|} \sum_{(s, s') \in C} A[s, s'],

which is the limit ``T log rho(W_T) -> mu*`` of the quasispecies growth rate, and, for
deterministic MDPs with ``A = max_a R``, the optimal average reward.

* :func:`karp` — Karp's ``O(S E)`` characterisation (R. M. Karp, "A characterization of
  the minimum cycle mean in a digraph", Discrete Math. 23, 1978).
* :func:`howard` — policy iteration for the max-plus eigenproblem (J. Cochet-Terrasson,
  G. Cohen, S. Gaubert, M. McGettrick, J.-P. Quadrat, "Numerical computation of spectral
  elements in max-plus algebra", 1998); fast in practice on large graphs.
* :func:`subeigenvector` — a potential ``phi`` with ``phi(s) + A[s,s'] - mu <= phi(s')``,
  used to balance ``W_T`` before an eigensolve so that ``T = 1e-8`` neither overflows
  nor underflows.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "critical_nodes",
    "howard",
    "karp",
    "max_cycle_mean",
    "strong_components",
    "subeigenvector",
]


def _rel_tol(A: np.ndarray) -> float:
    finite = A[np.isfinite(A)]
    scale = float(np.max(np.abs(finite))) if finite.size else 1.0
    return 1e-12 * max(1.0, scale)


def strong_components(A: np.ndarray) -> tuple[int, np.ndarray]:
    """Strongly connected components of the graph ``A > -inf`` (scipy.sparse.csgraph)."""
    return connected_components(csr_matrix(np.isfinite(A)), directed=True, connection="strong")


def karp(A: np.ndarray) -> float:
    """Maximum cycle mean by Karp's theorem (``-inf`` for an acyclic graph).

    Walks start anywhere (``D_0 = 0``): ``mu = max_v min_k (D_n(v) - D_k(v)) / (n - k)``
    over ``v`` with ``D_n(v)`` finite, ``D_k(v)`` the best weight of a walk of exactly
    ``k`` edges ending in ``v``. ``O(n^3)`` time for a dense ``n x n`` matrix.
    """
    A = np.asarray(A, dtype=np.float64)
    n = A.shape[0]
    D = np.empty((n + 1, n))
    D[0] = 0.0
    for k in range(1, n + 1):
        D[k] = np.max(D[k - 1][:, None] + A, axis=0)
    ok = np.isfinite(D[n])
    if not ok.any():
        return -np.inf
    ks = np.arange(n)[:, None]
    with np.errstate(invalid="ignore"):
        ratios = (D[n][None, :] - D[:n]) / (n - ks)
    ratios = np.where(np.isfinite(D[:n]), ratios, np.inf)
    return float(np.max(np.min(ratios[:, ok], axis=0)))


def howard(A: np.ndarray, max_iter: int = 10_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max-plus policy iteration on a graph where every node has an out-edge.

    Returns ``(eta, x, policy)``: ``eta[i]`` is the maximum cycle mean reachable from
    ``i``, ``x`` a bias vector with ``eta_i + x_i = max_j A[i, j] + x_j`` on the final
    policy's classes, and ``policy[i]`` the chosen successor.
    """
    A = np.asarray(A, dtype=np.float64)
    n = A.shape[0]
    if not np.isfinite(A).any(axis=1).all():
        raise ValueError("A: howard needs every node to have an outgoing edge")
    tol = _rel_tol(A)
    pi = np.argmax(A, axis=1)
    for _ in range(max_iter):
        eta = np.empty(n)
        x = np.empty(n)
        state = np.zeros(n, dtype=np.int8)  # 0 new, 1 on current path, 2 done
        for start in range(n):
            if state[start]:
                continue
            path = []
            i = start
            while state[i] == 0:
                state[i] = 1
                path.append(i)
                i = pi[i]
            if state[i] == 1:  # closed a new cycle at i
                cyc = path[path.index(i) :]
                m = float(np.mean(A[cyc, pi[cyc]]))
                eta[cyc] = m
                x[i] = 0.0
                for j in reversed(cyc[1:]):
                    x[j] = A[j, pi[j]] - m + x[pi[j]]
                for j in cyc:
                    state[j] = 2
                path = path[: path.index(i)]
            for j in reversed(path):
                eta[j] = eta[pi[j]]
                x[j] = A[j, pi[j]] - eta[j] + x[pi[j]]
                state[j] = 2
        # improvement 1: reach a better cycle
        eta_succ = np.where(np.isfinite(A), eta[None, :], -np.inf)
        best_eta = eta_succ.max(axis=1)
        better = best_eta > eta + tol
        new_pi = pi.copy()
        if better.any():
            cand = np.where(eta_succ >= best_eta[:, None] - tol, A + x[None, :], -np.inf)
            new_pi[better] = np.argmax(cand[better], axis=1)
        else:
            # improvement 2: same cycle mean, better bias
            same = np.isfinite(A) & (np.abs(eta_succ - eta[:, None]) <= tol)
            val = np.where(same, A + x[None, :] - eta[:, None], -np.inf)
            best = val.max(axis=1)
            improve = best > x + tol
            new_pi[improve] = np.argmax(val[improve], axis=1)
        if np.array_equal(new_pi, pi):
            return eta, x, pi
        pi = new_pi
    raise RuntimeError("howard: policy iteration did not terminate")


def max_plus_eigenvalue(A: np.ndarray) -> float:
    """Maximum cycle mean of a dense weight matrix, by Howard per strong component."""
    A = np.asarray(A, dtype=np.float64)
    ncomp, labels = strong_components(A)
    best = -np.inf
    for k in range(ncomp):
        idx = np.flatnonzero(labels == k)
        sub = A[np.ix_(idx, idx)]
        if not np.isfinite(sub).any():
            continue
        eta, _, _ = howard(sub)
        best = max(best, float(eta.max()))
    return best


def max_cycle_mean(mdp) -> float:
    """Maximum cycle mean of the MDP's support graph with edge weight ``max_a R``.

    The max-plus eigenvalue: ``lim_{T -> 0} T log rho(W_T)``; for a deterministic MDP,
    the optimal long-run average reward. ``-inf`` if the support graph has no cycle.
    """
    return max_plus_eigenvalue(mdp.max_plus_weights())


def subeigenvector(A: np.ndarray, mu: float, max_iter: int | None = None) -> np.ndarray:
    """A finite ``phi`` with ``phi(s) + A[s, s'] - mu <= phi(s')`` on every edge.

    ``phi(s') = max(0, best weight of a walk ending at s' under A - mu)``, by Bellman-Ford
    from ``phi = 0``. No cycle of ``A - mu`` is positive, so it converges within ``n``
    sweeps (up to float rounding on critical cycles, which the sweep bound absorbs).
    Equality holds on every edge of a critical cycle.
    """
    A = np.asarray(A, dtype=np.float64)
    n = A.shape[0]
    Ap = A - mu
    phi = np.zeros(n)
    for _ in range(n + 1 if max_iter is None else max_iter):
        new = np.maximum(phi, np.max(phi[:, None] + Ap, axis=0))
        if np.array_equal(new, phi):
            break
        phi = new
    return phi


def critical_nodes(A: np.ndarray, mu: float | None = None) -> np.ndarray:
    """Boolean mask of the states on maximum-mean cycles (the critical graph's cycles)."""
    A = np.asarray(A, dtype=np.float64)
    if mu is None:
        mu = max_plus_eigenvalue(A)
    if not np.isfinite(mu):
        return np.zeros(A.shape[0], dtype=bool)
    phi = subeigenvector(A, mu)
    tol = 1e-9 * max(1.0, abs(mu), float(np.max(np.abs(phi))))
    crit = np.isfinite(A) & (np.abs(phi[:, None] + A - mu - phi[None, :]) <= tol)
    crit = np.where(crit, 0.0, -np.inf)
    ncomp, labels = strong_components(crit)
    mask = np.zeros(A.shape[0], dtype=bool)
    for k in range(ncomp):
        idx = np.flatnonzero(labels == k)
        if idx.size > 1 or np.isfinite(crit[idx[0], idx[0]]):
            mask[idx] = True
    return mask
