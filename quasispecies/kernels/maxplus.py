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
* :func:`howard_sparse` — the same policy iteration on an edge list, every step
  vectorised: ``O(E log S)`` per iteration, for support graphs with ``S`` up to ``10^6``
  (:mod:`quasispecies.kernels.maxplus_sparse`, re-exported here with
  :func:`optimal_cycle`, :func:`support_edges`, :func:`max_cycle_mean_sparse`).
* :func:`karp_cycle`, :func:`optimal_cycle` — the maximising cycle itself (on Karp's
  optimal ``n``-edge walk every cycle is critical; on Howard's final policy graph the
  cycle with the largest mean is).
* :func:`subeigenvector` — a potential ``phi`` with ``phi(s) + A[s,s'] - mu <= phi(s')``,
  used to balance ``W_T`` before an eigensolve so that ``T = 1e-8`` neither overflows
  nor underflows.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from quasispecies.kernels.maxplus_sparse import (
    Cycle as Cycle,
    cyclic_core as cyclic_core,
    howard_sparse as howard_sparse,
    max_cycle_mean_sparse as max_cycle_mean_sparse,
    optimal_cycle as optimal_cycle,
    support_edges as support_edges,
)

__all__ = [
    "DENSE_CYCLE_LIMIT",
    "Cycle",
    "critical_nodes",
    "cyclic_core",
    "howard",
    "howard_sparse",
    "karp",
    "karp_cycle",
    "max_cycle_mean",
    "max_cycle_mean_sparse",
    "max_plus_eigenvalue",
    "optimal_cycle",
    "strong_components",
    "subeigenvector",
    "support_edges",
]


def _rel_tol(A: np.ndarray) -> float:
    finite = A[np.isfinite(A)]
    scale = float(np.max(np.abs(finite))) if finite.size else 1.0
    return 1e-12 * max(1.0, scale)


def strong_components(A: np.ndarray) -> tuple[int, np.ndarray]:
    """``(count, labels)``: strongly connected components of the graph ``A > -inf``.

    ``A[s, s'] > -inf`` is an edge ``s -> s'``; ``scipy.sparse.csgraph.connected_components``.
    """
    return connected_components(csr_matrix(np.isfinite(A)), directed=True, connection="strong")


def karp(A: np.ndarray) -> float:
    r"""Maximum cycle mean of a dense weight matrix by Karp's theorem (``-inf`` if acyclic).

    ``mu* = max_C (1/|C|) sum_{(s,s') in C} A[s, s']`` (``A[s, s']`` the weight of the
    edge ``s -> s'``, ``-inf`` = none). R. M. Karp, "A characterization of the minimum
    cycle mean in a digraph", Discrete Math. 23 (1978).

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
    r"""Max-plus policy iteration on a dense graph where every node has an out-edge.

    Solves ``eta_i + x_i = max_j (A[i, j] + x_j)`` (the max-plus eigenproblem, with the
    generalised eigenvalue ``eta`` per class): J. Cochet-Terrasson, G. Cohen, S. Gaubert,
    M. McGettrick, J.-P. Quadrat, "Numerical computation of spectral elements in max-plus
    algebra" (1998); Howard's policy iteration (R. A. Howard, *Dynamic Programming and
    Markov Processes*, 1960) in the max-plus semiring.

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
    r"""The max-plus eigenvalue ``mu* = max_C mean_C A`` of a dense weight matrix (``-inf`` if
    acyclic), by :func:`howard` per strong component (Cochet-Terrasson et al. 1998).

    ``lim_{T -> 0} T log rho(W_T) = mu*`` for ``A = T log W_T`` at ``T = 0``.
    """
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


#: Above this many states :func:`max_cycle_mean` works on the edge list (no ``S x S`` matrix).
DENSE_CYCLE_LIMIT = 2000


def max_cycle_mean(mdp) -> float:
    r"""Maximum cycle mean of the MDP's support graph with edge weight ``max_a R`` (Karp 1978).

    The max-plus eigenvalue: ``lim_{T -> 0} T log rho(W_T)``; for a deterministic MDP,
    the optimal long-run average reward. ``-inf`` if the support graph has no cycle.
    Dense Howard per strong component up to :data:`DENSE_CYCLE_LIMIT` states, the sparse
    :func:`howard_sparse` beyond (``S = 10^6`` deterministic MDPs take seconds).
    """
    if mdp.num_states <= DENSE_CYCLE_LIMIT:
        return max_plus_eigenvalue(mdp.max_plus_weights())
    src, dst, w, _, _ = support_edges(mdp)
    return max_cycle_mean_sparse(mdp.num_states, src, dst, w)


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
    r"""Boolean mask of the states on maximum-mean cycles (the critical graph's cycles).

    Critical edges are the tight ones, ``phi(s) + A[s, s'] - mu = phi(s')`` for a
    subeigenvector ``phi`` (:func:`subeigenvector`); the critical states lie on cycles of
    tight edges. As ``T -> 0`` the quasispecies concentrates on them.
    """
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


def karp_cycle(A: np.ndarray) -> tuple[float, list[int]]:
    """Karp's maximum cycle mean together with a maximising cycle (list of nodes).

    Keeps the predecessor of every ``D_k(v)`` (best ``k``-edge walk into ``v``). For ``v``
    attaining Karp's max-min, the optimal ``n``-edge walk into ``v`` has no cycle of
    ``A - mu`` with negative weight removed without contradicting ``D_n(v) = max_k D_k(v)``
    (after the shift), so every cycle on it is critical (Karp 1978; see also Dasdan &
    Gupta 1998). Returns ``(-inf, [])`` for an acyclic graph.
    """
    A = np.asarray(A, dtype=np.float64)
    n = A.shape[0]
    D = np.empty((n + 1, n))
    pred = np.zeros((n + 1, n), dtype=np.int64)
    D[0] = 0.0
    for k in range(1, n + 1):
        cand = D[k - 1][:, None] + A
        pred[k] = np.argmax(cand, axis=0)
        D[k] = cand[pred[k], np.arange(n)]
    ok = np.isfinite(D[n])
    if not ok.any():
        return -np.inf, []
    kk = np.arange(n)[:, None]
    with np.errstate(invalid="ignore"):
        ratios = (D[n][None, :] - D[:n]) / (n - kk)
    ratios = np.where(np.isfinite(D[:n]), ratios, np.inf)
    score = np.where(ok, np.min(ratios, axis=0), -np.inf)
    v = int(np.argmax(score))
    mu = float(score[v])
    walk = [v]
    for k in range(n, 0, -1):
        walk.append(int(pred[k][walk[-1]]))
    walk.reverse()  # walk[0] -> ... -> walk[n] = v
    seen: dict[int, int] = {}
    best: list[int] = []
    best_mean = -np.inf
    for i, node in enumerate(walk):
        if node in seen:
            cyc = walk[seen[node] : i]
            m = float(np.mean([A[cyc[j], cyc[(j + 1) % len(cyc)]] for j in range(len(cyc))]))
            if m > best_mean:
                best, best_mean = cyc, m
        seen[node] = i
    return mu, best
