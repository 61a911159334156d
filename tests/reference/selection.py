"""Brute-force references for tests/selection: tilting, best-of-n, evaluator filtering,
the collapse measures and token trees.

Plain NumPy and ``itertools``, written from the formulas (or from the sampling process
itself), never from the kernels of :mod:`quasispecies.selection`.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = [
    "best_of_n_cdf",
    "best_of_n_enumerate",
    "best_of_n_monte_carlo",
    "entropy",
    "entropy_derivative",
    "filter_odds",
    "filter_recurrence",
    "kl",
    "leaf_paths",
    "tilt",
    "tilt_strength",
    "tree_sequence_probs",
    "tree_token_probs",
]


# ------------------------------------------------------------------------------ tilting
def tilt(p0, r, beta):
    """``p0 exp(r / beta) / Z`` with the largest reward shifted to 0 (finite ``r``)."""
    p0, r = np.asarray(p0, float), np.asarray(r, float)
    w = p0 * np.exp((r - r.max()) / beta)
    return w / w.sum()


def tilt_strength(p0, r, lam):
    """``p0 exp(lambda r) / Z`` at tilt strength ``lambda = 1 / beta >= 0`` (finite ``r``)."""
    p0, r = np.asarray(p0, float), np.asarray(r, float)
    w = p0 * np.exp(lam * (r - r.max()))
    return w / w.sum()


def entropy(p):
    """``-sum p log p`` over the support."""
    p = np.asarray(p, float)
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def kl(p, q):
    """``sum p log(p / q)`` over the support of ``p`` (``q > 0`` there)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    s = p > 0
    return float((p[s] * np.log(p[s] / q[s])).sum())


def entropy_derivative(p, r, p0, lam):
    """``dH(p_lambda)/dlambda = -lambda Var_p(r) - Cov_p(r, log p0)`` at ``p = p_lambda``."""
    var = p @ r**2 - (p @ r) ** 2
    cov = p @ (r * np.log(p0)) - (p @ r) * (p @ np.log(p0))
    return -lam * var - cov


# ---------------------------------------------------------------------------- best of n
def best_of_n_cdf(p, r, n):
    """Distinct rewards: ``F(y)^n - F(y-)^n`` with ``F`` the CDF of ``r(Y)``."""
    p, r = np.asarray(p, float), np.asarray(r, float)
    order = np.argsort(r)
    F = np.empty(len(p))
    F[order] = np.cumsum(p[order])
    return F**n - (F - p) ** n


def best_of_n_enumerate(p, r, n):
    """Every ``n``-tuple of draws (``itertools.product``), the best kept, ties split evenly."""
    p, r = np.asarray(p, float), np.asarray(r, float)
    exact = np.zeros(len(p))
    for draw in itertools.product(range(len(p)), repeat=n):
        w = np.prod(p[list(draw)])
        best = max(r[i] for i in draw)
        winners = [i for i in draw if r[i] == best]
        for i in winners:
            exact[i] += w / len(winners)
    return exact


def best_of_n_monte_carlo(rng, p, r, n, samples):
    """Empirical frequency of the kept draw over ``samples`` simulated rounds of best-of-``n``
    (uniform choice among tied best draws)."""
    p, r = np.asarray(p, float), np.asarray(r, float)
    draws = rng.choice(len(p), size=(samples, n), p=p)
    rd = r[draws]
    is_best = rd == rd.max(axis=1, keepdims=True)
    pick = np.argmax(is_best * rng.random((samples, n)), axis=1)
    chosen = draws[np.arange(samples), pick]
    return np.bincount(chosen, minlength=len(p)) / samples


# ------------------------------------------------------------------- iterative chaining
def filter_recurrence(e0, tpr, fpr, rounds):
    """``eps_{k+1} = eps_k fpr / (eps_k fpr + (1 - eps_k) tpr)``, literally, in Python floats."""
    e, out = e0, [e0]
    for _ in range(rounds):
        e = e * fpr / (e * fpr + (1 - e) * tpr)
        out.append(e)
    return np.array(out)


def filter_odds(e0, tpr, fpr, rounds):
    """The closed form: ``odds(eps_k) = odds(eps_0) (fpr / tpr)^k``."""
    odds = e0 / (1 - e0) * (fpr / tpr) ** np.arange(rounds + 1)
    return odds / (1 + odds)


# ------------------------------------------------------------------------- token trees
def leaf_paths(parent):
    """For each leaf (state order) the states from the root's child down to the leaf."""
    parent = np.asarray(parent)
    has_child = np.zeros(len(parent), bool)
    has_child[parent[parent >= 0]] = True
    out = []
    for leaf in np.flatnonzero(~has_child):
        path, s = [], leaf
        while s > 0:
            path.append(s)
            s = parent[s]
        out.append(path[::-1])
    return out


def tree_sequence_probs(parent, logp, T, reward, beta):
    """``p(y)^(1/T) exp(r(y) / beta)`` normalised over the leaves, ``p(y)`` a product of
    token probabilities along the path."""
    seq = np.array([sum(logp[s] for s in path) for path in leaf_paths(parent)])
    w = np.exp(seq / T + np.asarray(reward, float) / beta)
    return w / w.sum()


def tree_token_probs(parent, logp, tau):
    """Product over the path of the local softmax of ``logp / tau`` over the siblings."""
    parent = np.asarray(parent)
    q = []
    for path in leaf_paths(parent):
        prob = 1.0
        for s in path:
            sib = np.flatnonzero(parent == parent[s])
            z = np.exp(logp[sib] / tau)
            prob *= np.exp(logp[s] / tau) / z.sum()
        q.append(prob)
    return np.array(q)
