"""Brute-force path references for tests/test_paths*.py and tests/test_rl*.py.

Everything here is NumPy + itertools over dense (S, A, S) arrays; nothing calls a
quasispecies kernel except :func:`brute.dense_arrays` (which only reads the MDP's lists).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

import quasispecies as qs
from tests.reference import dense as brute

#: The temperatures every semiring is checked at (the issue's list).
TEMPS = [1.0, 0.3, 0.05, 1e-8, 0.0]
#: Relative tie tolerance for equal returns, as quasispecies.semiring.core.TIE_RTOL.
TIE = 1e-12


def all_paths(mdp, x0, H):
    """Every path with positive weight (see :func:`brute.all_paths`), from the MDP's lists."""
    return brute.all_paths(*brute.dense_arrays(mdp), x0, H)


def distribution(lp, G, T):
    """p(path) ∝ exp(lp + G/T); at T = 0 the T -> 0+ limit (best G, shared by exp(lp))."""
    if len(G) == 0:
        return np.zeros(0)
    if T == 0:
        best = G.max()
        tie = np.abs(G - best) <= TIE * (1 + abs(best))
        w = np.where(tie, np.exp(lp - lp[tie].max()), 0.0)
        return w / w.sum()
    z = lp + G / T
    w = np.exp(z - z.max())
    return w / w.sum()


def entropy(p):
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def scaled_log_partition(lp, G, T):
    """T log Z (max G at T = 0); -inf without paths."""
    if len(G) == 0:
        return -np.inf
    return float(G.max()) if T == 0 else float(T * logsumexp(lp + G / T))


def selected_policy(mdp, T, H):
    """pi_T(a|s,t): the first-action marginal of the path distribution from delta_s with
    H - t steps to go (all zeros when no such path exists)."""
    S, A = mdp.num_states, mdp.num_actions
    out = np.zeros((H, S, A))
    for t in range(H):
        for s in range(S):
            _, ac, lp, G = all_paths(mdp, np.eye(S)[s], H - t)
            if len(G) == 0:
                continue
            p = distribution(lp, G, T)
            np.add.at(out[t, s], ac[:, 0], p)
    return out


def state_marginals(mdp, T, H, x0):
    st, _, lp, G = all_paths(mdp, x0, H)
    out = np.zeros((H + 1, mdp.num_states))
    if len(G) == 0:
        return out
    p = distribution(lp, G, T)
    for t in range(H + 1):
        np.add.at(out[t], st[:, t], p)
    return out


def case(seed: int):
    """A seeded small MDP with a fixed shape family (S = 3, A = 2, H = 3), so that the
    JIT-compiled kernels are reused across cases; structure varies: deterministic or
    stochastic, full or partial support, per-action or per-transition rewards, x0 a
    point mass, a full-support or a partial-support distribution."""
    rng = np.random.default_rng(seed)
    kind = seed % 4
    stochastic = kind in (1, 3)
    density = 1.0 if kind in (0, 3) else 0.6
    mdp = qs.random_mdp(
        3, 2, seed=seed, stochastic=stochastic, density=density, per_transition_reward=kind == 3
    )
    if seed % 5 == 0:
        x0 = np.eye(3)[seed % 3]
    elif seed % 5 == 1:
        x0 = np.array([0.5, 0.0, 0.5])
    else:
        x0 = rng.dirichlet(np.ones(3))
    return mdp, x0, 3


#: Other shapes (S, A, H), each used by a few cases (covers H = 0, one action, one state).
SHAPES = [(1, 1, 0), (2, 1, 4), (4, 3, 2), (2, 3, 1)]


def zoo_case(i: int):
    S, A, H = SHAPES[i % len(SHAPES)]
    seed = 1000 + i
    rng = np.random.default_rng(seed)
    mdp = qs.random_mdp(S, A, seed=seed, stochastic=bool(i % 2), density=0.7 if i % 3 else 1.0)
    x0 = rng.dirichlet(np.ones(S))
    return mdp, x0, H


def log_weight(lp, G, T):
    """A path's log weight lp + G / T; at T = 0 the exponent G that survives T -> 0+."""
    return G if T == 0 else lp + G / T


def scaled_total(u, T):
    """T log sum_s exp(u(s) / T) over the finite entries of u (max at T = 0)."""
    fin = np.isfinite(u)
    return u[fin].max() if T == 0 else T * logsumexp(u[fin] / T)


def log_multiplicity(lp, G):
    """log of the total prior weight of the paths whose return ties with max G (TIE)."""
    best = np.abs(G - G.max()) <= TIE * (1 + abs(G.max()))
    return logsumexp(lp[best])


def sorted_paths(lp, G, T):
    """Sort order of the enumeration, best first. At T = 0: by G, and returns equal up to
    float rounding (relative TIE, as semiring.TIE_RTOL) by the prior weight lp: the
    T -> 0+ order of lp + G / T."""
    if T > 0:
        return np.argsort(-(lp + G / T), kind="stable")
    first = np.argsort(-G, kind="stable")
    g = G[first]
    brk = np.concatenate([[True], g[:-1] - g[1:] > TIE * (1 + np.abs(g[:-1]))])
    group = np.cumsum(brk)
    return first[np.lexsort((-lp[first], group))]


def expected_edge_use(states, actions, p, shape):
    """E_p[number of uses of (s, a, s')] over enumerated paths, as an (S, A, S) array."""
    want = np.zeros(shape)
    for t in range(actions.shape[1]):
        np.add.at(want, (states[:, t], actions[:, t], states[:, t + 1]), p)
    return want


def streamed_log_sum(chunks):
    """log sum exp of every chunk's log_weight, accumulated chunk by chunk; and the count."""
    acc, n = -np.inf, 0
    for chunk in chunks:
        acc = np.logaddexp(acc, logsumexp(chunk.log_weight))
        n += chunk.states.shape[0]
    return acc, n
