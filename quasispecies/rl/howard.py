r"""The exact infinite-horizon discounted optimum by Howard's policy iteration.

Expected: ``V(s) = max_a sum_{s'} P(s'|s,a) [R(s,a,s') + gamma V(s')]``; optimistic:
``V^+(s) = max_{a, s' in supp P} [R + gamma V^+(s')]`` (the ``T -> 0`` limit of the
discounted path-integral recursion of :mod:`quasispecies.rl.soft`). Each step solves one
linear system, so the answer is exact (R. A. Howard, *Dynamic Programming and Markov
Processes*, 1960; Puterman 1994 §6.4) — unlike value iteration with an early stop.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from quasispecies.model.mdp import MDP, check_mdp
from quasispecies.model.validate import check_nonneg_int
from quasispecies.rl.common import check_discount

__all__ = ["DiscountedSolution", "policy_iteration"]


class DiscountedSolution(NamedTuple):
    """Exact discounted optimum from :func:`policy_iteration`.

    values : (S,) ``V``; ``-inf`` on states with no infinite path.
    policy : (S,) optimal action (``-1`` where ``values`` is ``-inf``).
    q : (S, A) ``Q`` at the optimum.
    iterations : policy-improvement steps.
    """

    values: np.ndarray
    policy: np.ndarray
    q: np.ndarray
    iterations: int


def _viable(mdp: MDP, optimistic: bool):
    """States with an infinite path (optimistic) or a policy that never hits a dead end."""
    live = np.isfinite(mdp.log_kernel)
    ns = mdp.next_state
    ok = live.any(axis=(1, 2))
    while True:
        succ_ok = ok[ns]
        if optimistic:
            edge = live & succ_ok
            act = edge.any(axis=2)
        else:
            act = live.any(axis=2) & ~((mdp.prob > 0) & ~(live & succ_ok)).any(axis=2)
            edge = live & act[:, :, None]
        new = act.any(axis=1)
        if np.array_equal(new, ok):
            return ok, act, edge
        ok = new


def _solve(S: int, rows, cols, vals, rhs, idx):
    """Solve ``(I - M) v = rhs`` on the states ``idx`` (M given as COO triples)."""
    import scipy.sparse
    import scipy.sparse.linalg

    n = idx.size
    where = np.full(S, -1, dtype=np.int64)
    where[idx] = np.arange(n)
    M = scipy.sparse.coo_matrix((vals, (where[rows], where[cols])), shape=(n, n)).tocsr()
    A = scipy.sparse.identity(n, format="csr") - M
    if n <= 2000:
        sol = np.linalg.solve(A.toarray(), rhs[idx])
    else:
        sol = scipy.sparse.linalg.spsolve(A.tocsc(), rhs[idx])
    v = np.full(S, -np.inf)
    v[idx] = sol
    return v


def policy_iteration(
    mdp, discount: float, *, optimistic: bool = False, max_iter: int = 10_000
) -> DiscountedSolution:
    r"""Exact infinite-horizon discounted optimum by Howard's policy iteration.

    Expected (``optimistic=False``): ``V = max_a sum_{s'} P (R + gamma V)``. Each step
    solves the linear system ``(I - gamma P_pi) V = r_pi`` (dense LAPACK up to 2000 viable
    states, sparse LU beyond) and switches an action only on a strict improvement, so it
    stops at the exact optimum after finitely many steps (Howard 1960; Puterman 1994 §6.4).
    Value iteration with an early stop (e.g. pymdptoolbox's) is *not* such a reference.

    Optimistic (``optimistic=True``): ``V+ = max_{a, s' in supp P} (R + gamma V+)``, the same
    algorithm with every transition a deterministic choice: the ``T -> 0`` limit of the
    discounted path-integral recursion.

    States with no infinite path that avoids dead ends get ``-inf`` and policy ``-1``.
    ``V`` is a column vector here (``P_pi[s, s'] = P(s'|s, pi(s))``, rows = current state),
    the transpose of the population's row-vector convention ``n_{t+1} = n_t W_T``.
    Reference: R. A. Howard, *Dynamic Programming and Markov Processes* (1960).
    """
    mdp = check_mdp(mdp)
    g = check_discount(discount, allow_one=False)
    max_iter = check_nonneg_int(max_iter, "max_iter", minimum=1)
    S, A = mdp.shape
    ok, act, edge = _viable(mdp, optimistic)
    idx = np.flatnonzero(ok)
    ns = mdp.next_state
    prob = np.where(edge, mdp.prob, 0.0)
    rew = np.where(edge, mdp.reward, 0.0)
    rbar = (prob * rew).sum(axis=2)  # (S, A) expected reward
    empty = DiscountedSolution(np.full(S, -np.inf), np.full(S, -1), np.full((S, A), -np.inf), 0)
    if idx.size == 0:
        return empty
    scale = max(1.0, float(np.abs(rew).max(initial=0.0)) / (1.0 - g))
    tol = 1e-12 * scale

    def q_of(V):
        Vn = np.where(np.isfinite(V), V, 0.0)[ns]
        if optimistic:
            qe = np.where(edge, rew + g * Vn, -np.inf)
            return qe.max(axis=2), qe
        q = rbar + g * (prob * Vn).sum(axis=2)
        return np.where(act, q, -np.inf), None

    # initial policy: greedy in the one-step reward
    if optimistic:
        first = np.where(edge, rew, -np.inf).reshape(S, -1)
        choice = np.argmax(first, axis=1)
    else:
        choice = np.argmax(np.where(act, rbar, -np.inf), axis=1)
    B = ns.shape[2]
    for it in range(1, max_iter + 1):
        if optimistic:
            a_c, b_c = np.divmod(choice, B)
            rows = idx
            cols = ns[idx, a_c[idx], b_c[idx]]
            vals = np.full(idx.size, g)
            rhs = rew[np.arange(S), a_c, b_c]
        else:
            a_c = choice
            sub = edge[idx, a_c[idx]]  # (n, B)
            r_i, b_i = np.nonzero(sub)
            rows = idx[r_i]
            cols = ns[rows, a_c[rows], b_i]
            vals = g * mdp.prob[rows, a_c[rows], b_i]
            rhs = rbar[np.arange(S), a_c]
        V = _solve(S, rows, cols, vals, rhs, idx)
        Q, QE = q_of(V)
        if optimistic:
            flat = QE.reshape(S, -1)
            best = flat.max(axis=1)
            cur = flat[np.arange(S), choice]
            cand = np.argmax(flat, axis=1)
        else:
            best = Q.max(axis=1)
            cur = Q[np.arange(S), choice]
            cand = np.argmax(Q, axis=1)
        improve = ok & (best > cur + tol)
        if not improve.any():
            policy = np.where(ok, choice // B if optimistic else choice, -1)
            return DiscountedSolution(V, policy, Q, it)
        choice = np.where(improve, cand, choice)
    raise RuntimeError("policy_iteration: did not terminate")
