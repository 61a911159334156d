"""Reward inference (qs.fit_rewards) against planted rewards and brute-force references.

Populations are made by independent references (a dense eigensolve of ``W_T`` for the
stationary case, explicit products of token probabilities on the tree), never by the
code under test; the fitted rewards are compared with the planted ones modulo the
documented gauge. Few distinct shapes are used so the jitted L-BFGS step compiles once
per family.

Tolerance 1e-6 on rewards: the fit stops at a gradient max-norm of 1e-8 (in ``R / T``),
and the smallest curvature of these objectives is ~1e-2, so the rewards are within
~1e-6 of the minimiser; the populations themselves agree to ~1e-9.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.selection.fit import path_counts
from tests.reference import dense as brute

RTOL = 1e-6


def _stationary(mdp, T):
    P, R, pi0 = brute.dense_arrays(mdp)
    return brute.perron_left(brute.replication_matrix(P, R, pi0, T))[1]


def _monotone(history):
    # non-increasing up to rounding of a loss that ends at ~1e-16
    assert np.all(np.diff(history) <= 1e-12 * max(1.0, abs(history[0]))), history


def _dense_state_mdp(seed, S=5, A=2):
    rng = np.random.default_rng(seed)
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.6)
    for s in range(S):
        P[s, :, (s + 1) % S] += 0.1  # irreducible
    P /= P.sum(axis=2, keepdims=True)
    r = rng.normal(size=S) * 1.5
    return qs.MDP(P, np.broadcast_to(r[None, None, :], (S, A, S))), r


def _deterministic_state_mdp(seed, S=6, A=2):
    rng = np.random.default_rng(seed)
    ns = rng.integers(0, S, size=(S, A))
    ns[:, 0] = (np.arange(S) + 1) % S
    r = rng.normal(size=S)
    return qs.MDP.from_transitions(ns, r[ns]), r


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("build", [_dense_state_mdp, _deterministic_state_mdp])
def test_stationary_state_rewards_recovered_modulo_constant(build, seed):
    mdp, r = build(seed)
    # T >= 0.5 keeps every x_j >= ~1e-8, so the reference eigenvector's absolute error
    # (~1e-17) stays far below RTOL relative to x_j
    T = float(np.random.default_rng(seed).uniform(0.5, 2.0))
    x = _stationary(mdp, T)
    fit = qs.fit_rewards(mdp, x, T)
    assert fit.converged and fit.convex
    np.testing.assert_allclose(fit.rewards, r - r.mean(), atol=RTOL * max(1.0, np.abs(r).max()))
    _monotone(fit.loss_history)
    assert fit.loss_history[-1] < fit.loss_history[0]
    # the fitted MDP reproduces the observation (reference eigensolve)
    np.testing.assert_allclose(_stationary(fit.mdp, T), x, atol=1e-8)
    # the gauge: a planted constant shift does not change the answer
    shifted = qs.fit_rewards(mdp, x * 7.0, T)  # unnormalised counts are accepted
    np.testing.assert_allclose(shifted.rewards, fit.rewards, atol=1e-12)
    assert "r + c" in fit.gauge


def test_closed_form_state_rewards():
    # r_j = T log(x_j / (x K)_j) + c: the minimiser of the convex objective in closed form
    mdp, _ = _dense_state_mdp(3)
    rng = np.random.default_rng(7)
    x = rng.dirichlet(np.ones(5))  # any positive x is stationary for some state rewards
    T = 0.8
    P, _, pi0 = brute.dense_arrays(mdp)
    xK = np.einsum("s,sa,sat->t", x, pi0, P)
    want = T * np.log(x / xK)
    fit = qs.fit_rewards(mdp, x, T)
    np.testing.assert_allclose(fit.rewards, want - want.mean(), atol=RTOL)
    # the likelihood weighting (KL(x || x W / |x W|)) has the same minimiser here
    kl = qs.fit_rewards(mdp, x, T, weighting="observed")
    np.testing.assert_allclose(kl.rewards, want - want.mean(), atol=RTOL)
    _monotone(kl.loss_history)


@pytest.mark.parametrize("seed", range(2))
def test_stationary_transition_rewards_reproduce_population(seed):
    mdp, _ = _dense_state_mdp(seed + 20)
    x = np.random.default_rng(seed).dirichlet(np.ones(5) * 2)
    fit = qs.fit_rewards(mdp, x, 0.5, rewards="transition")
    assert fit.rewards.shape == (5, 2, 5) and not fit.convex
    np.testing.assert_allclose(_stationary(fit.mdp, 0.5), x, atol=1e-8)
    _monotone(fit.loss_history)


# --------------------------------------------------------------------- token tree
def _tree(seed, k=3, depth=3):
    """A token tree MDP built by hand (the layout of qs.bridge.token_tree): state 0 the
    prompt, action a = the a-th of k tokens, reward log p(token | prefix) (top-k, not
    renormalised), depth-`depth` states loop on themselves with reward 0."""
    rng = np.random.default_rng(seed)
    paths = [()]
    for d in range(1, depth + 1):
        paths += list(itertools.product(range(k), repeat=d))
    index = {p: i for i, p in enumerate(paths)}
    S = len(paths)
    ns = np.zeros((S, k), dtype=int)
    R = np.full((S, k), -np.inf)
    for p, i in index.items():
        if len(p) == depth:
            ns[i] = i
            R[i, 0] = 0.0
            continue
        logits = rng.normal(size=k + 2)
        logp = logits - np.log(np.exp(logits).sum())
        for a in range(k):
            ns[i, a] = index[(*p, a)]
            R[i, a] = logp[a]
    leaves = np.array([index[p] for p in paths if len(p) == depth])
    return qs.MDP.from_transitions(ns, R), paths, index, leaves


@pytest.mark.parametrize("seed", range(3))
def test_token_tree_recovers_beta_log_ratio(seed):
    mdp, paths, index, leaves = _tree(seed)
    beta = [0.5, 1.0, 2.0][seed]
    rng = np.random.default_rng(100 + seed)
    G = rng.normal(size=leaves.size) * 2.0  # planted sequence-level reward
    # brute force: p_base(leaf) = prod of token probabilities along its path
    logp_base = np.array(
        [sum(mdp.R[index[paths[i][:d]], paths[i][d]] for d in range(len(paths[i]))) for i in leaves]
    )
    logp_tuned = logp_base + G / beta
    logp_tuned -= np.log(np.exp(logp_tuned).sum())
    observed = np.zeros(mdp.num_states)
    observed[leaves] = np.exp(logp_tuned)
    fit = qs.fit_rewards(
        mdp, observed, beta, horizon=3, x0=0, rewards="transition", base_reward=beta * mdp.R
    )
    assert fit.convex and fit.converged and fit.rewards.shape == mdp.R.shape
    _monotone(fit.loss_history)
    # path sums of the fitted token rewards = beta log(p_tuned / p_base) + c
    got = np.array(
        [
            sum(fit.rewards[index[paths[i][:d]], paths[i][d]] for d in range(len(paths[i])))
            for i in leaves
        ]
    )
    want = beta * (logp_tuned - logp_base)
    np.testing.assert_allclose(got - got.mean(), want - want.mean(), atol=RTOL * np.abs(want).max())
    np.testing.assert_allclose(want - want.mean(), G - G.mean(), atol=1e-10)
    # minimum norm: no reward on the leaves' self-loops (never traversed in 3 steps)
    assert np.all(fit.rewards[leaves, 0] == 0.0)


def test_path_counts_match_enumeration():
    rng = np.random.default_rng(5)
    S, A = 5, 2
    ns = rng.integers(0, S, size=(S, A))
    mdp = qs.MDP.from_transitions(ns, np.zeros((S, A)))
    for H in range(4):
        want = np.zeros(S)
        for acts in itertools.product(range(A), repeat=H):
            s = 0
            for a in acts:
                s = ns[s, a]
            want[s] += 1
        np.testing.assert_array_equal(path_counts(mdp, 0, H), np.minimum(want, 2))
    tree, *_ = _tree(0)
    assert path_counts(tree, 0, 3).max() == 1


# ------------------------------------------------------------------------ bad input
def test_bad_input():
    mdp, _ = _dense_state_mdp(0)
    x = np.full(5, 0.2)
    cases = [
        (dict(observed_population=np.ones(4)), "observed_population"),
        (dict(observed_population=[0.5, -0.1, 0.2, 0.2, 0.2]), "observed_population"),
        (dict(observed_population=[np.nan, 1, 1, 1, 1]), "observed_population"),
        (dict(observed_population=np.zeros(5)), "observed_population"),
        (dict(observed_population=[0, 1, 1, 1, 1]), "observed_population"),
        (dict(T=0.0), "T"),
        (dict(T=np.inf), "T"),
        (dict(T="hot"), "T"),
        (dict(rewards="edge"), "rewards"),
        (dict(weighting="counts"), "weighting"),
        (dict(horizon=0), "horizon"),
        (dict(horizon=1.5), "horizon"),
        (dict(horizon="3"), "horizon"),
        (dict(max_steps=0), "max_steps"),
        (dict(gtol=-1.0), "gtol"),
        (dict(base_reward=np.zeros(3)), "base_reward"),
        (dict(base_reward=np.full((5, 2), np.nan)), "base_reward"),
    ]
    for kw, name in cases:
        args = dict(observed_population=x, T=1.0) | kw
        with pytest.raises(ValueError, match=name):
            qs.fit_rewards(mdp, args.pop("observed_population"), args.pop("T"), **args)
    tree, _, _, leaves = _tree(0)
    bad = np.zeros(tree.num_states)
    bad[1] = 1.0  # a depth-1 state holds no mass after 3 steps
    with pytest.raises(ValueError, match="no length-3 path"):
        qs.fit_rewards(tree, bad, 1.0, horizon=3, x0=0)
    bad = np.zeros(tree.num_states)
    bad[leaves[1:]] = 1.0  # leaf 0 is reached but observed empty
    with pytest.raises(ValueError, match="has 0 mass"):
        qs.fit_rewards(tree, bad, 1.0, horizon=3, x0=0)
