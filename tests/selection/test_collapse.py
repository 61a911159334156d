"""qs.collapse: entropy against tilt strength, re-heating, attractors, MDP paths, token trees."""

from __future__ import annotations

from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import quasispecies as qs
from tests.reference import selection as ref
from tests.reference.dense import dense_arrays, path_log_weights

col = qs.collapse
sel = qs.selection


def _zipf(n, s=1.1):
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def test_entropy_and_perplexity():
    np.testing.assert_allclose(col.entropy(np.full(7, 1 / 7)), np.log(7), rtol=1e-14)
    np.testing.assert_allclose(col.perplexity(np.full(7, 1 / 7)), 7.0, rtol=1e-13)
    assert col.entropy([0.0, 1.0, 0.0]) == 0.0
    stack = np.array([[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(col.entropy(stack), [np.log(2), 0.0], rtol=1e-14)


def test_tilt_curve_against_numpy_and_derivative():
    rng = np.random.default_rng(0)
    p0, r = rng.dirichlet(np.ones(30)), rng.normal(size=30)
    lam = np.linspace(0, 6, 61)
    c = col.tilt_curve(p0, r, lam)
    for i, l in enumerate(lam):
        p = ref.tilt_strength(p0, r, l)
        np.testing.assert_allclose(c.probs[i], p, rtol=1e-11, atol=1e-300)
        np.testing.assert_allclose(c.entropy[i], ref.entropy(p), rtol=1e-11)
        np.testing.assert_allclose(c.kl[i], ref.kl(p, p0), rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(c.mean_reward[i], p @ r, rtol=1e-11)
    assert np.all(np.diff(c.kl) > 0)  # dKL/dlambda = lambda Var(r) >= 0
    np.testing.assert_allclose(c.perplexity, np.exp(c.entropy), rtol=1e-14)
    # dH/dlambda = -lambda Var_p(r) - Cov_p(r, log p0): central differences, error O(h^2)
    h = 1e-4
    for l in (0.3, 1.0, 3.0):
        up, dn, mid = (col.tilt_curve(p0, r, x) for x in (l + h, l - h, l))
        dH = (up.entropy[0] - dn.entropy[0]) / (2 * h)
        np.testing.assert_allclose(dH, ref.entropy_derivative(mid.probs[0], r, p0, l), rtol=1e-6)
    # from a uniform prior the entropy falls monotonically
    flat = col.tilt_curve(np.full(30, 1 / 30), r, lam)
    assert np.all(np.diff(flat.entropy) < 0)


def test_reheating_identity_and_collapse():
    p0 = _zipf(200)
    rng = np.random.default_rng(1)
    r = rng.normal(size=200)
    lam = np.array([0.0, 1.0, 5.0, 20.0])
    tau = np.array([0.5, 1.0, 2.0, 3.0])
    g = col.reheating(p0, r, lam, tau)
    for i, l in enumerate(lam):
        p_l = np.asarray(col.tilt_curve(p0, r, l).probs[0])
        for k, t in enumerate(tau):
            q = col.reheat(p_l, t)
            np.testing.assert_allclose(g.entropy[i, k], col.entropy(q), rtol=1e-10)
        np.testing.assert_allclose(g.entropy[i, 1], g.tilted_entropy[i], rtol=1e-12)  # tau = 1
    np.testing.assert_allclose(g.entropy[0], g.base_entropy, rtol=1e-12)  # lambda = 0
    np.testing.assert_allclose(g.deficit, g.base_entropy[None, :] - g.entropy, rtol=1e-14)
    # strong tilt: heating to tau = 3 leaves the tuned model far narrower than the base
    # model at tau = 3, and than the base model at tau = 1
    assert g.deficit[3, 3] > 0.8 * g.base_entropy[3]
    assert g.entropy[3, 3] < 0.5 * g.base_entropy[1]
    # re-heating by tau is the tilt at lambda / tau of the heated prior
    heated = col.reheat(p0, 3.0)
    np.testing.assert_allclose(
        g.entropy[3, 3], col.tilt_curve(heated, r, lam[3] / 3.0).entropy[0], rtol=1e-10
    )
    # reheat sweep axis, and zero mass stays zero
    out = col.reheat([0.5, 0.5, 0.0], [0.5, 3.0])
    assert out.shape == (2, 3) and np.all(out[:, 2] == 0)


def test_iterated_tilt_converges_to_attractor():
    p0 = np.array([0.1, 0.4, 0.2, 0.3])
    r = np.array([1.0, 0.5, 1.0, -2.0])
    beta, steps = 0.7, 40
    traj = col.iterate_tilt(p0, r, beta, steps)
    assert traj.shape == (steps + 1, 4)
    for k in (1, 5, 17):
        np.testing.assert_allclose(traj[k], sel.tilt(p0, r, beta / k), rtol=1e-10, atol=1e-300)
    att = col.attractor(p0, r)
    np.testing.assert_allclose(att, [1 / 3, 0, 2 / 3, 0], rtol=1e-14)
    # geometric approach: TV <= mass off the argmax set * exp(-k gap / beta) / p0(argmax)
    gap = 0.5
    for k in (5, 20, 40):
        tv = 0.5 * np.abs(traj[k] - att).sum()
        assert tv <= (0.4 + 0.3) * np.exp(-k * gap / beta) / 0.3 * 1.000001


def test_self_referential_selection_sharpens_to_mode():
    p0 = np.array([0.1, 0.45, 0.3, 0.15])
    beta = 2.0
    traj = col.iterate_tilt(p0, lambda p: jnp.log(p), beta, 6)
    for k in range(7):
        w = p0 ** ((1 + 1 / beta) ** k)
        np.testing.assert_allclose(traj[k], w / w.sum(), rtol=1e-9)
    assert np.argmax(traj[-1]) == 1 and traj[-1][1] > 0.99


# ---------------------------------------------------------------- MDP path distributions
@pytest.mark.parametrize("seed", range(4))
def test_path_distribution_matches_brute_force_and_evolve(seed):
    rng = np.random.default_rng(seed)
    S, A, H = 4, 2, 3
    mdp = qs.random_mdp(S, A, seed=seed)
    x0 = rng.dirichlet(np.ones(S))
    pd = col.path_distribution(mdp, H, x0)
    P, R, pi0 = dense_arrays(mdp)
    for T in (2.0, 0.5, 0.05):
        final, logk, G = path_log_weights(P, R, pi0, x0, T, H)
        logw = logk + G / T
        # same multiset of (final state, weight): compare sorted weights per final state
        w_ref = np.exp(logw - logw.max())
        w_ref /= w_ref.sum()
        p = pd.probs(T)
        for s in range(S):
            np.testing.assert_allclose(
                np.sort(p[pd.states[:, -1] == s]),
                np.sort(w_ref[final == s]),
                rtol=1e-9,
                atol=1e-300,
            )
        # the final-state marginal is the population qs.evolve computes
        marg = np.bincount(pd.states[:, -1], weights=p, minlength=S)
        np.testing.assert_allclose(
            marg, np.asarray(qs.evolve(mdp, T, H, x0))[H], rtol=1e-8, atol=1e-14
        )
    # T -> 0: the attractor (best-return paths, weighted by the exploration measure)
    marg0 = np.bincount(pd.states[:, -1], weights=pd.probs(0.0), minlength=S)
    np.testing.assert_allclose(
        marg0, np.asarray(qs.evolve(mdp, 0.0, H, x0))[H], rtol=1e-8, atol=1e-14
    )


def test_path_collapse_curve_is_temperature_sweep():
    mdp = qs.random_mdp(3, 3, seed=11)
    pd = col.path_distribution(mdp, 4, 0)
    T = np.array([4.0, 1.0, 0.25])
    curve = col.tilt_curve(pd.base, pd.returns, 1.0 / T)
    np.testing.assert_allclose(curve.probs, pd.probs(T), rtol=1e-12, atol=1e-300)
    assert np.all(np.diff(curve.kl) > 0)
    # independent route: the entropy semiring of qs.paths, no enumeration
    stats = qs.paths.trajectory_stats(mdp, T, 4, 0)
    np.testing.assert_allclose(curve.entropy, stats.entropy, rtol=1e-9)
    np.testing.assert_allclose(curve.kl, stats.kl_from_prior, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(curve.mean_reward, stats.expected_return, rtol=1e-10)


# ------------------------------------------------------------------------- token trees
def _random_tree(rng, depth=3, k=3):
    """A complete k-ary tree; each node's k children get the top-k of a random next-token law."""
    parent, logp, dep = [-1], [0.0], [0]
    level = [0]
    for d in range(depth):
        nxt = []
        for s in level:
            law = np.sort(rng.dirichlet(np.ones(k + 2)))[::-1][:k]
            for a in range(k):
                parent.append(s)
                logp.append(np.log(law[a]))
                dep.append(d + 1)
                nxt.append(len(parent) - 1)
        level = nxt
    return col.Tree(np.array(parent), np.array(logp), np.array(dep))


def test_tree_sequence_and_token_level_against_products():
    rng = np.random.default_rng(3)
    tree = _random_tree(rng)
    reward = rng.normal(size=len(ref.leaf_paths(tree.parent)))
    for T, beta in [(1.0, 1.0), (0.5, 0.3), (2.0, 5.0)]:
        np.testing.assert_allclose(
            col.tree_sequence_probs(tree, T, reward, beta),
            ref.tree_sequence_probs(tree.parent, tree.logp, T, reward, beta),
            rtol=1e-12,
        )
    # token level at temperature tau: product of local softmaxes over siblings
    for tau in (0.5, 1.0, 3.0):
        np.testing.assert_allclose(
            col.tree_token_probs(tree, tau),
            ref.tree_token_probs(tree.parent, tree.logp, tau),
            rtol=1e-12,
        )
    # token-level and sequence-level temperature differ in general
    assert np.abs(col.tree_token_probs(tree, 2.0) - col.tree_sequence_probs(tree, 2.0)).max() > 1e-3


def test_soft_bellman_policy_realises_the_sequence_tilt():
    rng = np.random.default_rng(4)
    tree = _random_tree(rng, depth=4, k=2)
    reward = rng.normal(size=len(tree.leaves)) * 2
    for beta, T in [(0.2, 1.0), (1.0, 1.0), (3.0, 0.5)]:
        logits = col.tree_tilt_logits(tree, reward, beta, T)
        np.testing.assert_allclose(
            col.tree_token_probs(tree, 1.0, logits),
            col.tree_sequence_probs(tree, T, reward, beta),
            rtol=1e-11,
        )


def test_tree_from_mdp_matches_evolve():
    """A tree stored as a deterministic MDP (leaves loop with reward 0), as the bridge builds it."""
    rng = np.random.default_rng(5)
    tree = _random_tree(rng, depth=3, k=3)
    S, k = len(tree.parent), 3
    ns = np.repeat(np.arange(S)[:, None], k, axis=1)
    R = np.full((S, k), -np.inf)
    for s in range(S):
        kids = np.flatnonzero(tree.parent == s)
        if len(kids):
            ns[s], R[s] = kids, tree.logp[kids]
        else:
            R[s, 0] = 0.0
    mdp = qs.MDP.from_transitions(ns, R)
    obj = SimpleNamespace(mdp=mdp, depth=tree.depth)
    t2 = col.tree_from_token_tree(obj)
    np.testing.assert_array_equal(t2.parent, tree.parent)
    np.testing.assert_allclose(t2.logp, tree.logp, rtol=1e-15)
    x0 = np.eye(S)[0]
    for T in (1.0, 0.3):
        pop = np.asarray(qs.evolve(mdp, T, 3, x0))[3]
        np.testing.assert_allclose(pop[tree.leaves], col.tree_sequence_probs(t2, T), rtol=1e-9)
    # and the bridge's own layout (parent + path log-prob)
    obj = SimpleNamespace(parent=tree.parent, depth=tree.depth, logprob=tree.sequence_logp)
    np.testing.assert_allclose(col.tree_from_token_tree(obj).logp, tree.logp, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(lam=st.floats(0.0, 50.0), seed=st.integers(0, 1000))
def test_tilting_never_raises_entropy_above_base(lam, seed):
    rng = np.random.default_rng(seed)
    p0 = rng.dirichlet(np.ones(8))
    r = rng.normal(size=8)
    H = col.tilt_curve(p0, r, [0.0, lam]).entropy
    # entropy need not fall monotonically from a non-uniform p0 (dH/dlambda has a
    # -Cov(r, log p0) term), but it stays below log N and KL to p0 grows
    assert H[1] <= np.log(8) + 1e-12


def test_brute_force_path_count():
    """Deterministic MDP with A actions everywhere: A^H paths from one start state."""
    A, H = 3, 4
    ns = np.array([[1] * A, [0] * A])
    mdp = qs.MDP.from_transitions(ns, np.zeros((2, A)))
    pd = col.path_distribution(mdp, H, [1.0, 0.0])
    assert len(pd.returns) == A**H
    np.testing.assert_allclose(pd.base, np.full(A**H, A**-H), rtol=1e-13)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: col.tilt_curve([0.5, 0.5], [0, 1], -1.0), "strength"),
        (lambda: col.tilt_curve([0.5, 0.6], [0, 1], 1.0), "p0"),
        (lambda: col.tilt_curve([0.5, 0.5], [0, 1, 2], 1.0), "r"),
        (lambda: col.reheat([0.5, 0.5], 0.0), "tau"),
        (lambda: col.reheating([0.5, 0.5], [0, 1], 1.0, -2.0), "tau"),
        (lambda: col.iterate_tilt([0.5, 0.5], [0, 1], 0.0, 3), "beta"),
        (lambda: col.iterate_tilt([0.5, 0.5], [0, 1], 1.0, -3), "steps"),
        (lambda: col.entropy([0.2, 0.2]), "p"),
        (lambda: col.path_distribution(qs.random_mdp(3, 2, seed=0), 2, [1.0, 0.0]), "x0"),
        (lambda: col.path_distribution(qs.random_mdp(3, 2, seed=0), 30), "horizon"),
        (
            lambda: col.tree_sequence_probs(
                _random_tree(np.random.default_rng(0)), 1.0, [1.0, 2.0]
            ),
            "reward",
        ),
        (lambda: col.tree_sequence_probs(_random_tree(np.random.default_rng(0)), 0.0), "T"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        call()


def test_collapse_namespace_reexports_the_tree_module():
    """``qs.collapse`` is one namespace: the token-tree functions live in selection.tree."""
    from quasispecies.selection import tree

    for name in tree.__all__:
        assert getattr(col, name) is getattr(tree, name)
    assert set(tree.__all__) <= set(col.__all__)


def test_log_tilt_gradients_stay_finite():
    """``-inf`` (zero prior mass, excluded outcome) is the log zero: no NaN in the gradient."""
    import jax

    from quasispecies.selection.tilting import log_prob, log_tilt

    p0 = jnp.array([0.5, 0.0, 0.3, 0.2])
    r = jnp.array([1.0, 2.0, -jnp.inf, 0.5])

    def f(lam):
        logp, logZ = log_tilt(log_prob(p0), r, lam)
        return logZ + jnp.sum(jnp.where(jnp.isfinite(logp), logp, 0.0))

    g = jax.grad(f)(2.0)
    assert np.isfinite(float(g))
    gp = jax.grad(lambda p: log_tilt(log_prob(p), r, 2.0)[1])(p0)
    assert np.all(np.isfinite(np.asarray(gp)))
