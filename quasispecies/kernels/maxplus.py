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
  vectorised (strong components by ``scipy.sparse.csgraph``, biases by pointer doubling):
  ``O(E log S)`` per iteration, for support graphs with ``S`` up to ``10^6``.
* :func:`karp_cycle`, :func:`optimal_cycle` — the maximising cycle itself (on Karp's
  optimal ``n``-edge walk every cycle is critical; on Howard's final policy graph the
  cycle with the largest mean is).
* :func:`subeigenvector` — a potential ``phi`` with ``phi(s) + A[s,s'] - mu <= phi(s')``,
  used to balance ``W_T`` before an eigensolve so that ``T = 1e-8`` neither overflows
  nor underflows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "Cycle",
    "critical_nodes",
    "howard",
    "howard_sparse",
    "karp",
    "karp_cycle",
    "max_cycle_mean",
    "max_cycle_mean_sparse",
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


#: Above this many states :func:`max_cycle_mean` works on the edge list (no ``S x S`` matrix).
DENSE_CYCLE_LIMIT = 2000


def max_cycle_mean(mdp) -> float:
    """Maximum cycle mean of the MDP's support graph with edge weight ``max_a R``.

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


# ------------------------------------------------------------------- optimal cycles
class Cycle(NamedTuple):
    """A cycle ``states[0] -> states[1] -> ... -> states[L-1] -> states[0]`` of the MDP.

    ``actions[i]`` is the action taken in ``states[i]``; ``rewards[i]`` its reward and
    ``log_kernel[i]`` its ``log K = log pi0 + log P``. ``mean`` is ``rewards.mean()``.
    The cycle starts at its smallest state. An acyclic support graph gives ``mean = -inf``
    and empty arrays.
    """

    mean: float
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    log_kernel: np.ndarray


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


def support_edges(mdp):
    """The support graph as an edge list: one edge per allowed transition.

    Returns ``(src, dst, reward, action, log_kernel)`` arrays over the transitions
    ``(s, a, b)`` with positive kernel weight (parallel edges kept).
    """
    live = np.isfinite(mdp.log_kernel)
    s, a, _ = np.nonzero(live)
    return (
        s.astype(np.int64),
        np.asarray(mdp.next_state)[live].astype(np.int64),
        np.asarray(mdp.reward, dtype=np.float64)[live],
        a.astype(np.int64),
        np.asarray(mdp.log_kernel)[live],
    )


def _functional_values(succ: np.ndarray, wp: np.ndarray):
    """Cycle means and biases of the functional graph ``i -> succ[i]`` with weights ``wp``.

    ``eta[i]`` is the mean of the cycle that ``i`` runs into; ``x`` the bias, 0 at the
    smallest node of each cycle and ``x[i] = wp[i] - eta[i] + x[succ[i]]`` elsewhere
    (exactly, except on the root's own edge). Pointer doubling: ``O(n log n)``.
    """
    n = succ.shape[0]
    idx = np.arange(n)
    graph = csr_matrix((np.ones(n), (idx, succ)), shape=(n, n))
    ncomp, lab = connected_components(graph, directed=True, connection="strong")
    size = np.bincount(lab, minlength=ncomp)
    on_cycle = (size[lab] > 1) | (succ == idx)
    cyc_nodes = np.flatnonzero(on_cycle)
    csum = np.bincount(lab[cyc_nodes], weights=wp[cyc_nodes], minlength=ncomp)
    clen = np.bincount(lab[cyc_nodes], minlength=ncomp)
    mean = np.where(clen > 0, csum / np.maximum(clen, 1), 0.0)
    root = np.full(ncomp, n, dtype=np.int64)
    np.minimum.at(root, lab[cyc_nodes], cyc_nodes)
    is_root = np.zeros(n, dtype=bool)
    is_root[root[clen > 0]] = True
    nxt = np.where(is_root, idx, succ)
    steps = max(1, int(np.ceil(np.log2(max(n, 2)))) + 1)
    J = nxt.copy()
    for _ in range(steps):
        J = J[J]
    eta = mean[lab[J]]
    X = np.where(is_root, 0.0, wp - eta)
    J = nxt.copy()
    for _ in range(steps):
        X = X + X[J]
        J = J[J]
    return eta, X


def _segment_argmax(vals: np.ndarray, src: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """First index of the maximum of ``vals`` within each (non-empty, sorted) segment."""
    m = np.maximum.reduceat(vals, starts)
    E = vals.shape[0]
    idx = np.where(vals == m[src], np.arange(E), E)
    return np.minimum.reduceat(idx, starts)


def howard_sparse(num_nodes: int, src, dst, w, max_iter: int = 10_000):
    """Max-plus policy iteration (Cochet-Terrasson et al. 1998) on an edge list.

    Every node needs an outgoing edge. A policy picks one out-edge per node; its value is
    the pair (cycle mean reached ``eta``, bias ``x``) of the functional graph. Improvement
    first lets every node reach the best policy cycle of its strong component (one
    breadth-first search on the reversed graph, instead of Howard's one-edge-per-iteration
    propagation), then (same ``eta``) moves to a larger ``w + x[dst] - eta``; changes only
    on strict improvement, so ties cannot cycle.

    Returns ``(eta, x, choice)``: ``eta[i]`` is the maximum cycle mean reachable from
    ``i``, ``x`` a bias with ``w_e + x[dst] <= eta + x[src]`` on every edge ``e`` whose
    head has the same ``eta`` (a certificate of optimality), and ``choice[i]`` the index
    (into the input arrays) of the edge the final policy takes from ``i``.
    """
    from scipy.sparse.csgraph import breadth_first_order

    n = int(num_nodes)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    w = np.asarray(w, dtype=np.float64)
    perm = np.lexsort((-w, src))  # by source, heaviest edge first
    src, dst, w = src[perm], dst[perm], w[perm]
    starts = np.searchsorted(src, np.arange(n + 1))
    if (starts[1:] == starts[:-1]).any():
        i = int(np.argmax(starts[1:] == starts[:-1]))
        raise ValueError(
            f"src: howard_sparse needs every node to have an outgoing edge (node {i} has none)"
        )
    starts = starts[:-1]
    E = src.shape[0]
    ncomp, lab = connected_components(
        csr_matrix((np.ones(E), (src, dst)), shape=(n, n)), directed=True, connection="strong"
    )
    # reversed graph plus a virtual root n, for the reach-the-best-cycle step
    key = src * n + dst
    key_order = np.argsort(key, kind="stable")
    sorted_key = key[key_order]
    scale = max(1.0, float(np.max(np.abs(w), initial=0.0)))
    tol = 1e-12 * scale
    # biases are sums of up to n weights, accumulated by doubling: allow their rounding.
    tol_x = tol * max(1.0, float(np.log2(max(n, 2)))) * max(1.0, n * 2.2e-16 / 1e-12)
    choice = starts.copy()
    for _ in range(max_iter):
        eta, x = _functional_values(dst[choice], w[choice])
        comp_best = np.full(ncomp, -np.inf)
        np.maximum.at(comp_best, lab, eta)
        top = eta >= comp_best[lab] - tol
        new = choice.copy()
        if not top.all():
            internal = lab[src] == lab[dst]
            rs, rd = dst[internal], src[internal]
            roots = np.flatnonzero(top)
            rows = np.concatenate([rs, np.full(roots.size, n)])
            cols = np.concatenate([rd, roots])
            graph = csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n + 1, n + 1))
            _, pred = breadth_first_order(graph, n, directed=True, return_predecessors=True)
            move = np.flatnonzero(~top)
            want = move * n + pred[move]
            at = np.searchsorted(sorted_key, want)
            new[move] = key_order[at]
        else:
            eta_d = eta[dst]
            same = np.abs(eta_d - eta[src]) <= tol
            val = np.where(same, w + x[dst] - eta[src], -np.inf)
            best = np.maximum.reduceat(val, starts)
            improve = best > x + tol_x
            pick = _segment_argmax(val, src, starts)
            new[improve] = pick[improve]
        if np.array_equal(new, choice):
            return eta, x, perm[choice]
        choice = new
    raise RuntimeError("howard_sparse: policy iteration did not terminate")


def _cyclic_core(num_nodes: int, src: np.ndarray, dst: np.ndarray):
    """Edges inside strong components that contain a cycle, and the nodes they touch."""
    n = num_nodes
    graph = csr_matrix((np.ones(src.shape[0]), (src, dst)), shape=(n, n))
    _, lab = connected_components(graph, directed=True, connection="strong")
    keep = lab[src] == lab[dst]
    nodes = np.flatnonzero(np.bincount(src[keep], minlength=n) > 0)
    return np.flatnonzero(keep), nodes


def _sparse_solve(num_nodes: int, src, dst, w):
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    w = np.asarray(w, dtype=np.float64)
    edges, nodes = _cyclic_core(num_nodes, src, dst)
    if nodes.size == 0:
        return None
    remap = np.full(num_nodes, -1, dtype=np.int64)
    remap[nodes] = np.arange(nodes.size)
    eta, x, choice = howard_sparse(nodes.size, remap[src[edges]], remap[dst[edges]], w[edges])
    return nodes, eta, x, edges[choice]


def max_cycle_mean_sparse(num_nodes: int, src, dst, w) -> float:
    """Maximum cycle mean of the graph given as an edge list (``-inf`` when acyclic)."""
    out = _sparse_solve(num_nodes, src, dst, w)
    return -np.inf if out is None else float(out[1].max())


def optimal_cycle(mdp) -> Cycle:
    r"""A cycle of the support graph with the maximum mean reward, and its actions.

    The maximum cycle mean ``mu*`` is the max-plus eigenvalue of ``A[s, s'] = max_a R``
    over transitions of positive kernel weight: ``T log rho(W_T) -> mu*`` as ``T -> 0``, and
    the quasispecies concentrates on such cycles. For a deterministic MDP it is the best
    long-run average reward, and following :attr:`Cycle.actions` around the cycle attains
    it. Found by :func:`howard_sparse` on the transition list; on a tie between parallel
    transitions the one with the larger kernel weight is reported (it maximises the
    lower bound ``T log rho >= mu* + (T / L) sum log K`` along the cycle).
    """
    src, dst, w, act, lk = support_edges(mdp)
    out = _sparse_solve(mdp.num_states, src, dst, w)
    empty = np.zeros(0, dtype=np.int64)
    if out is None:
        return Cycle(-np.inf, empty, empty, np.zeros(0), np.zeros(0))
    nodes, eta, _, chosen = out
    i = int(np.argmax(eta))
    where = np.full(mdp.num_states, -1, dtype=np.int64)
    where[nodes] = np.arange(nodes.size)
    order: list[int] = []
    seen: set[int] = set()
    s = int(nodes[i])
    while s not in seen:
        seen.add(s)
        order.append(s)
        s = int(dst[chosen[where[s]]])
    succ = {c: int(chosen[where[c]]) for c in order}
    cyc = order[order.index(s) :]
    k = int(np.argmin(cyc))
    cyc = cyc[k:] + cyc[:k]
    on = np.isin(src, cyc)
    e_on = np.flatnonzero(on)
    states, actions, rewards, logk = [], [], [], []
    for j, s in enumerate(cyc):
        t = cyc[(j + 1) % len(cyc)]
        e = succ[s]
        cand = e_on[(src[e_on] == s) & (dst[e_on] == t) & (w[e_on] == w[e])]
        e = int(cand[np.argmax(lk[cand])])
        states.append(s)
        actions.append(int(act[e]))
        rewards.append(float(w[e]))
        logk.append(float(lk[e]))
    rewards_a = np.asarray(rewards)
    return Cycle(
        float(rewards_a.mean()),
        np.asarray(states, dtype=np.int64),
        np.asarray(actions, dtype=np.int64),
        rewards_a,
        np.asarray(logk),
    )
