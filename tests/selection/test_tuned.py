"""Base vs tuned on a token tree (quasispecies.selection.tuned) against brute force: a toy
LM over 7 tokens, its top-3 tree built by recursion, the tuned model an exact token-level
tilt p(v|s) exp(r(v)/beta) / Z(s) over the whole vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from quasispecies.selection.tree import Tree
from quasispecies.selection.tuned import (
    leaf_logp,
    prefix_mass,
    reheat_to_entropy,
    sequence_tilt_fit,
    spread,
    temperature_response,
    token_tilt_fit,
)
from tests.reference import tuned as ref

V, K, H = 7, 3, 3
PROMPT = (1, 2)


def _setup(seed: int, beta: float):
    rng = np.random.default_rng(seed + 100)
    r = rng.normal(size=V)

    def base(pre):
        return ref.toy_logp(pre, V, seed)

    def tuned(pre):
        return ref.toy_logp(pre, V, seed, reward=r, beta=beta)

    parent, tok, prefix = ref.brute_tree(base, PROMPT, H, K)
    depth = np.array([len(p) for p in prefix])
    tree = Tree(parent, np.zeros(len(parent)), depth)
    lb = ref.edge_logp(base, PROMPT, prefix)
    lt = ref.edge_logp(tuned, PROMPT, prefix)
    return tree, tok, prefix, lb, lt, r


@pytest.mark.parametrize("seed", range(4))
def test_leaf_logp_and_spread(seed):
    tree, _, prefix, lb, _, _ = _setup(seed, 0.7)
    leaves = tree.leaves
    brute = np.array(
        [
            sum(ref.toy_logp(PROMPT + prefix[s][:i], V, seed)[prefix[s][i]] for i in range(H))
            for s in leaves
        ]
    )
    np.testing.assert_allclose(leaf_logp(tree, lb), brute, rtol=0, atol=1e-12)
    sp = spread(brute)
    q = ref.normalise_logp(brute)
    assert sp.entropy == pytest.approx(ref.entropy(q), abs=1e-12)
    assert sp.effective_support == pytest.approx(np.exp(ref.entropy(q)), rel=1e-12)
    assert sp.inverse_simpson == pytest.approx(1 / np.sum(q**2), rel=1e-12)
    assert sp.coverage == pytest.approx(np.sum(np.exp(brute)), rel=1e-12)
    assert sp.n_leaves == K**H


@pytest.mark.parametrize("seed", range(3))
def test_temperature_response_and_reheat(seed):
    tree, _, _, lb, lt, _ = _setup(seed, 0.3)
    yb, yt = leaf_logp(tree, lb), leaf_logp(tree, lt)
    taus = np.array([0.5, 1.0, 1.7, 3.0])
    want = [ref.entropy(ref.normalise_logp(yt / t)) for t in taus]
    np.testing.assert_allclose(temperature_response(yt, taus), want, rtol=0, atol=1e-12)
    target = ref.entropy(ref.normalise_logp(yb))
    tau = reheat_to_entropy(yt, target)
    f = lambda t: ref.entropy(ref.normalise_logp(yt / t)) - target  # noqa: E731
    if f(0.5) <= 0 <= f(3.0):
        assert tau == pytest.approx(scipy.optimize.brentq(f, 0.5, 3.0, xtol=1e-13), rel=1e-8)
    else:
        assert tau is None
    assert reheat_to_entropy(yt, 1e9) is None


@pytest.mark.parametrize(("seed", "beta"), [(0, 0.5), (1, 2.0), (2, 0.25), (3, 1.3)])
def test_token_tilt_recovers_beta_and_reward(seed, beta):
    tree, tok, _, lb, lt, r = _setup(seed, beta)
    edge_r = np.where(tree.parent >= 0, r[np.maximum(tok, 0)], 0.0)
    fit = token_tilt_fit(tree, lb, lt, tok, reward=edge_r)
    assert fit.beta == pytest.approx(beta, rel=1e-10)
    assert fit.residual_rms < 1e-10 and fit.beta_residual_rms < 1e-10
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    # rho = r / beta up to a constant (the toy tree's token-node graph is connected)
    d = fit.rho - r[fit.tokens] / beta
    np.testing.assert_allclose(d, d.mean(), rtol=0, atol=1e-8)
    # the sibling-centred implied reward is the sibling-centred r / beta, edge by edge
    kids = np.flatnonzero(tree.parent >= 0)
    for s in range(len(tree.parent)):
        sib = kids[tree.parent[kids] == s]
        if sib.size:
            np.testing.assert_allclose(
                fit.implied[sib], (edge_r[sib] - edge_r[sib].mean()) / beta, rtol=0, atol=1e-12
            )


def test_token_tilt_residual_for_a_context_dependent_change():
    tree, tok, prefix, lb, _, _ = _setup(0, 1.0)
    other = ref.edge_logp(lambda pre: ref.toy_logp(pre, V, 99), PROMPT, prefix)
    fit = token_tilt_fit(tree, lb, other, tok)
    assert fit.beta is None
    assert fit.residual_rms > 0.1 and fit.r2 < 0.9


@pytest.mark.parametrize("seed", range(4))
def test_sequence_tilt_fit_is_the_kl_minimum(seed):
    tree, _, prefix, lb, lt, r = _setup(seed, 0.8)
    yb, yt = leaf_logp(tree, lb), leaf_logp(tree, lt)
    R = np.array([r[list(prefix[s])].sum() for s in tree.leaves])
    fit = sequence_tilt_fit(yb, yt, R)
    qb, qt = ref.normalise_logp(yb), ref.normalise_logp(yt)
    lam = ref.best_sequence_tilt(qb, qt, R)
    assert 1 / fit.beta == pytest.approx(lam, abs=1e-6)  # scipy's bounded search: xatol 1e-10
    w = qb * np.exp(lam * (R - R.max()))
    assert fit.kl == pytest.approx(ref.kl(qt, w / w.sum()), abs=1e-10)
    assert fit.kl_base == pytest.approx(ref.kl(qt, qb), abs=1e-12)
    assert fit.kl < fit.kl_base and not fit.at_bound


def test_sequence_tilt_exact_when_tuned_is_a_sequence_tilt():
    tree, _, prefix, lb, _, r = _setup(1, 1.0)
    yb = leaf_logp(tree, lb)
    R = np.array([r[list(prefix[s])].sum() for s in tree.leaves])
    fit = sequence_tilt_fit(yb, yb + R / 0.4, R)
    assert fit.beta == pytest.approx(0.4, rel=1e-9)
    assert fit.kl < 1e-15


def test_prefix_mass_matches_brute_force():
    tree, _, prefix, lb, _, _ = _setup(2, 1.0)
    y = leaf_logp(tree, lb)
    q = ref.normalise_logp(y)
    np.testing.assert_allclose(
        prefix_mass(tree, y), ref.prefix_mass_brute(prefix, tree.leaves, q), rtol=0, atol=1e-12
    )


def test_bad_input():
    tree, tok, _, lb, lt, _ = _setup(0, 1.0)
    with pytest.raises(ValueError, match="ell_base"):
        token_tilt_fit(tree, lb[:-1], lt, tok)
    with pytest.raises(ValueError, match="ell"):
        leaf_logp(tree, np.where(tree.parent >= 0, 0.5, 0.0))
    with pytest.raises(ValueError, match="taus"):
        temperature_response([0.0, -1.0], [0.0])
    with pytest.raises(ValueError, match="reward"):
        sequence_tilt_fit([0.0, -1.0], [0.0, -2.0], [0.0, np.nan])
    with pytest.raises(ValueError, match="reward"):
        token_tilt_fit(tree, lb, lt, tok, reward=np.zeros(len(tok)))
