r"""Max-plus spectral theory on an edge list: support graphs with ``S`` up to ``10^6``.

The sparse counterpart of :mod:`quasispecies.kernels.maxplus` (dense matrices): the
maximum cycle mean

.. math:: \mu^* = \max_{\text{cycles } C} \frac{1}{|C|} \sum_{e \in C} w_e

of the support graph (an edge ``s -> s'`` per allowed transition, weight ``R``), which is
``lim_{T -> 0} T log rho(W_T)`` (row-vector convention ``n_{t+1} = n_t W_T``), and the
optimal cycle that attains it.

* :func:`howard_sparse` -- max-plus policy iteration (J. Cochet-Terrasson, G. Cohen,
  S. Gaubert, M. McGettrick, J.-P. Quadrat, "Numerical computation of spectral elements
  in max-plus algebra", IFAC Conference on System Structure and Control, 1998), every
  step vectorised (strong components by ``scipy.sparse.csgraph``, biases by pointer
  doubling): ``O(E log S)`` per iteration;
* :func:`max_cycle_mean_sparse`, :func:`optimal_cycle` -- on the cyclic core of the graph.

Import these from :mod:`quasispecies.kernels.maxplus`, which re-exports them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "Cycle",
    "cyclic_core",
    "howard_sparse",
    "max_cycle_mean_sparse",
    "optimal_cycle",
    "support_edges",
]


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


def cyclic_core(num_nodes: int, src: np.ndarray, dst: np.ndarray):
    """``(edges, nodes)``: indices of the edges inside strong components that contain a
    cycle, and the nodes they leave from (every cycle of the graph lies in this core)."""
    n = num_nodes
    graph = csr_matrix((np.ones(src.shape[0]), (src, dst)), shape=(n, n))
    _, lab = connected_components(graph, directed=True, connection="strong")
    keep = lab[src] == lab[dst]
    nodes = np.flatnonzero(np.bincount(src[keep], minlength=n) > 0)
    return np.flatnonzero(keep), nodes


def _sparse_solve(num_nodes: int, src, dst, w):
    """:func:`howard_sparse` on the cyclic core: ``(nodes, eta, x, chosen edges)`` or None."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    w = np.asarray(w, dtype=np.float64)
    edges, nodes = cyclic_core(num_nodes, src, dst)
    if nodes.size == 0:
        return None
    remap = np.full(num_nodes, -1, dtype=np.int64)
    remap[nodes] = np.arange(nodes.size)
    eta, x, choice = howard_sparse(nodes.size, remap[src[edges]], remap[dst[edges]], w[edges])
    return nodes, eta, x, edges[choice]


def max_cycle_mean_sparse(num_nodes: int, src, dst, w) -> float:
    r"""Maximum cycle mean ``max_C (1/|C|) sum_{e in C} w_e`` of the graph given as an edge
    list (``-inf`` when acyclic), by :func:`howard_sparse` on its cyclic core.

    The same number as Karp's characterisation (R. M. Karp, "A characterization of the
    minimum cycle mean in a digraph", Discrete Math. 23, 1978) without an ``S x S`` matrix.
    """
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
