"""qs.selection: tilt, exact best-of-n, filter_rounds, finite-buffer chaining, soft selection."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import quasispecies as qs
from tests.reference import selection as ref

sel = qs.selection

# --- reference values -------------------------------------------------------------------
# Copied from /work/shared/reference/rl.json, key "kl_tilt" (never read at test time).
KL_TILT = {
    "pi0": [0.5, 0.3, 0.2],
    "r": [1.0, 0.0, 2.0],
    "beta": 0.5,
    "posterior": [0.24772, 0.020115, 0.732165],
    "beta_log_Z": 1.3511555,
}
# Copied from /work/shared/reference/rl.json, key "best_of_n".
BEST_OF_N = {
    "bound_values": {2: 0.193147, 4: 0.636294, 16: 1.835089, 100: 3.615170},
    "uniform_2_outcomes_n2": {"pi_n": [0.25, 0.75], "kl": 0.130812},
}
# The reference file rounds to 6-7 significant digits; compare at that precision.
REF_ATOL = 5e-6


def _random_dist(rng, n, zeros=False):
    p = rng.dirichlet(np.full(n, 0.7))
    if zeros and n > 2:
        p[rng.choice(n, size=n // 3, replace=False)] = 0.0
        if p.sum() == 0:
            p[0] = 1.0
        p = p / p.sum()
    return p


# ------------------------------------------------------------------------------ tilting
def test_tilt_reference():
    post = sel.tilt(KL_TILT["pi0"], KL_TILT["r"], KL_TILT["beta"])
    np.testing.assert_allclose(post, KL_TILT["posterior"], atol=REF_ATOL)
    bz = sel.tilt_log_partition(KL_TILT["pi0"], KL_TILT["r"], KL_TILT["beta"])
    np.testing.assert_allclose(bz, KL_TILT["beta_log_Z"], atol=REF_ATOL)


def test_tilt_is_kl_regularised_optimum(jit_mode):
    rng = np.random.default_rng(0)
    for _ in range(20 if jit_mode == "jit" else 3):  # eager mode dispatches op by op: slow
        n = int(rng.integers(2, 12))
        p0, r, beta = _random_dist(rng, n), rng.normal(size=n) * 3, float(rng.uniform(0.05, 5))
        p = np.asarray(sel.tilt(p0, r, beta))
        # brute force: p0 exp(r/beta) / Z in NumPy
        np.testing.assert_allclose(p, ref.tilt(p0, r, beta), rtol=1e-12, atol=1e-15)
        # Donsker-Varadhan: E_p[r] - beta KL(p||p0) = beta log Z, and any other q scores less
        val = p @ r - beta * sel.kl_divergence(p, p0)
        np.testing.assert_allclose(val, float(sel.tilt_log_partition(p0, r, beta)), rtol=1e-10)
        q = _random_dist(rng, n)
        assert q @ r - beta * sel.kl_divergence(q, p0) <= val + 1e-12


def test_tilt_sweep_and_extremes():
    p0, r = np.array([0.5, 0.3, 0.2]), np.array([1.0, 0.0, 2.0])
    betas = np.array([1e-6, 0.5, 1.0, 1e6])
    P = np.asarray(sel.tilt(p0, r, betas))
    assert P.shape == (4, 3)
    for b, row in zip(betas, P, strict=True):
        np.testing.assert_allclose(row, sel.tilt(p0, r, b), rtol=1e-13)
    np.testing.assert_allclose(P[0], [0, 0, 1], atol=1e-300)  # beta -> 0: argmax r
    np.testing.assert_allclose(P[-1], p0, rtol=1e-5)  # beta = 1e6: within r/beta = 2e-6 of p0
    # zero prior mass and -inf rewards stay excluded, no NaN
    p = sel.tilt([0.5, 0.0, 0.5], [-np.inf, 5.0, 0.0], 0.1)
    np.testing.assert_array_equal(p, [0.0, 0.0, 1.0])


def test_soft_select_is_tilt_and_filter_step():
    rng = np.random.default_rng(1)
    p, h = _random_dist(rng, 6), rng.uniform(0.05, 1, size=6)
    np.testing.assert_allclose(sel.soft_select(p, h), sel.tilt(p, np.log(h), 1.0), rtol=1e-12)
    eps, tpr, fpr = 0.4, 0.7, 0.2
    out = sel.soft_select([1 - eps, eps], [tpr, fpr])
    np.testing.assert_allclose(out[1], sel.filter_rounds(eps, tpr, fpr, 1)[1], rtol=1e-14)
    np.testing.assert_allclose(
        sel.survival([1 - eps, eps], [tpr, fpr]), (1 - eps) * tpr + eps * fpr
    )
    # conditional tables: one distribution per row, rows handled independently (vmap)
    P, H = np.stack([_random_dist(rng, 4) for _ in range(3)]), rng.uniform(0.1, 1, size=(3, 4))
    out = np.asarray(sel.soft_select(P, H))
    for i in range(3):
        np.testing.assert_allclose(out[i], P[i] * H[i] / (P[i] @ H[i]), rtol=1e-13)


# ---------------------------------------------------------------------------- best of n
def test_best_of_n_reference():
    ref = BEST_OF_N["uniform_2_outcomes_n2"]
    res = sel.best_of_n_stats([0.5, 0.5], [0.0, 1.0], 2)
    np.testing.assert_allclose(res.probs, ref["pi_n"], atol=REF_ATOL)
    np.testing.assert_allclose(res.kl, ref["kl"], atol=REF_ATOL)
    for n, bound in BEST_OF_N["bound_values"].items():
        np.testing.assert_allclose(sel.best_of_n_kl_bound(n), bound, atol=REF_ATOL)
    ns = np.array(list(BEST_OF_N["bound_values"]))
    np.testing.assert_allclose(
        sel.best_of_n_stats([0.5, 0.5], [0.0, 1.0], ns).kl_bound,
        list(BEST_OF_N["bound_values"].values()),
        atol=REF_ATOL,
    )


def test_best_of_n_matches_cdf_formula(jit_mode):
    """Distinct rewards: pi_n(y) = F(y)^n - F(y-)^n exactly."""
    rng = np.random.default_rng(2)
    for _ in range(25 if jit_mode == "jit" else 3):  # eager mode dispatches op by op: slow
        N = int(rng.choice([1, 3, 8, 14]))  # few shapes: few compilations
        p, r, n = _random_dist(rng, N), rng.normal(size=N), int(rng.integers(1, 60))
        np.testing.assert_allclose(
            sel.best_of_n(p, r, n), ref.best_of_n_cdf(p, r, n), rtol=1e-10, atol=1e-15
        )


def test_best_of_n_ties_share_mass():
    """Brute force over all n-tuples of draws, ties broken uniformly among the tied draws."""
    rng = np.random.default_rng(3)
    for _ in range(15):
        N = int(rng.integers(2, 6))
        p, n = _random_dist(rng, N, zeros=True), int(rng.integers(1, 5))
        r = rng.integers(0, 3, size=N).astype(float)  # many ties
        exact = ref.best_of_n_enumerate(p, r, n)
        np.testing.assert_allclose(sel.best_of_n(p, r, n), exact, rtol=1e-11, atol=1e-15)


def test_best_of_n_monte_carlo():
    rng = np.random.default_rng(4)
    p = np.array([0.05, 0.3, 0.25, 0.1, 0.3])
    r = np.array([3.0, 1.0, 1.0, 2.0, 0.0])
    n, M = 3, 200_000
    freq = ref.best_of_n_monte_carlo(rng, p, r, n, M)  # uniform choice among tied best draws
    exact = np.asarray(sel.best_of_n(p, r, n))
    sd = np.sqrt(exact * (1 - exact) / M)
    # 5 standard errors: a false alarm has probability ~6e-7 per entry.
    assert np.all(np.abs(freq - exact) <= 5 * sd + 1e-12)


def test_best_of_n_continuous_limit_attains_bounds():
    """Many equal-mass distinct outcomes approach the continuous case, where both bounds are equalities."""
    N = 20_000
    p, r = np.full(N, 1.0 / N), np.arange(N, dtype=float)
    for n in (2, 4, 16):
        res = sel.best_of_n_stats(p, r, n)
        # discretisation error of the continuous case is O(n/N)
        np.testing.assert_allclose(res.kl, res.kl_bound, atol=5 * n / N)
        np.testing.assert_allclose(res.win_rate, res.win_rate_bound, atol=5 * n / N)
        assert res.kl <= res.kl_bound and res.win_rate <= res.win_rate_bound


@settings(max_examples=150, deadline=None)
@given(
    weights=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
    ranks=st.lists(st.integers(-3, 3), min_size=12, max_size=12),
    n=st.integers(1, 300),
)
def test_best_of_n_bounds_hold(weights, ranks, n):
    w = np.asarray(weights)
    if w.sum() <= 0:
        w = np.ones_like(w)
    p = w / w.sum()
    p = p / p.sum()
    r = np.asarray(ranks[: len(p)], dtype=float)
    res = sel.best_of_n_stats(p, r, n)
    np.testing.assert_allclose(np.sum(res.probs), 1.0, atol=1e-12)
    # 1e-12: rounding in log1p/expm1 may push an exact equality (n = 1, or a single
    # outcome) a few ulp above the bound.
    assert float(res.kl) <= float(res.kl_bound) + 1e-12
    assert float(res.win_rate) <= float(res.win_rate_bound) + 1e-12
    assert float(res.kl) >= -1e-15
    assert np.all(np.asarray(res.probs)[p == 0] == 0)


def test_best_of_n_rare_tail_precision():
    """F close to 1: the top outcome with mass 1e-14 keeps full relative precision."""
    p = np.array([1 - 1e-14, 1e-14])
    r = np.array([0.0, 1.0])
    n = 1000
    top = float(sel.best_of_n(p, r, n)[1])
    exact = -np.expm1(n * np.log1p(-1e-14))  # 1 - (1 - 1e-14)^n
    np.testing.assert_allclose(top, exact, rtol=1e-10)


def test_best_of_n_n_sweep():
    p, r = np.array([0.2, 0.5, 0.3]), np.array([0.0, 1.0, 2.0])
    res = sel.best_of_n_stats(p, r, [1, 2, 8])
    assert res.probs.shape == (3, 3)
    np.testing.assert_allclose(res.probs[0], p, rtol=1e-13)
    assert np.all(np.diff(np.asarray(res.kl)) > 0)
    assert np.all(np.diff(np.asarray(res.expected_reward)) > 0)


# ------------------------------------------------------------------- iterative chaining
def test_filter_rounds_recurrence_and_odds(jit_mode):
    rng = np.random.default_rng(5)
    for _ in range(20 if jit_mode == "jit" else 3):  # eager mode dispatches op by op: slow
        e0, t, f = rng.uniform(0.01, 0.99, size=3)
        k = int(rng.integers(0, 12))
        eps = sel.filter_rounds(e0, t, f, k)
        assert eps.shape == (k + 1,)
        # literal recurrence in plain Python
        np.testing.assert_allclose(eps, ref.filter_recurrence(e0, t, f, k), rtol=1e-12)
        # closed form in the odds
        np.testing.assert_allclose(eps, ref.filter_odds(e0, t, f, k), rtol=1e-11)


def test_filter_rounds_edges_and_broadcast():
    np.testing.assert_array_equal(sel.filter_rounds(0.0, 0.5, 0.5, 3), [0, 0, 0, 0])
    np.testing.assert_array_equal(sel.filter_rounds(1.0, 0.5, 0.5, 2), [1, 1, 1])
    np.testing.assert_array_equal(sel.filter_rounds(0.3, 0.5, 0.0, 2), [0.3, 0, 0])
    np.testing.assert_array_equal(sel.filter_rounds(0.3, 0.0, 0.4, 2), [0.3, 1, 1])
    np.testing.assert_allclose(sel.filter_rounds(0.3, 0.6, 0.6, 4), np.full(5, 0.3), rtol=1e-15)
    out = sel.filter_rounds([0.1, 0.5], 0.9, 0.2, 3)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out[1], sel.filter_rounds(0.5, 0.9, 0.2, 3))
    assert sel.rounds_to_reach(0.5, 0.8, 0.2, 0.01) == 4  # odds 1 -> 4^-k <= 1/99
    assert sel.filter_rounds(0.5, 0.8, 0.2, 4)[4] <= 0.01 < sel.filter_rounds(0.5, 0.8, 0.2, 3)[3]
    assert sel.rounds_to_reach(0.5, 0.2, 0.8, 0.01) == np.inf


def test_simulation_mean_converges_to_recurrence():
    e0, t, f, rounds = 0.6, 0.75, 0.3, 5
    exact = sel.filter_rounds(e0, t, f, rounds)
    key = jax.random.key(7)
    gaps, means = [], {}
    for B in (4, 32, 256, 4096):
        sim = sel.simulate_chaining(key, e0, t, f, rounds, B, replicates=4000)
        err = np.asarray(sim.error)
        assert err.shape == (4000, rounds + 1)
        np.testing.assert_array_equal(err[:, 0], e0)
        assert np.all((err >= 0) & (err <= 1))
        mean, se = err.mean(axis=0), err.std(axis=0, ddof=1) / np.sqrt(len(err))
        means[B] = (mean, se)
        gaps.append(np.max(np.abs(mean - exact)))
        if B == 4096:
            # 5 standard errors (plus the O(1/B) Jensen bias); a false alarm is ~1e-6.
            assert np.all(np.abs(mean - exact) <= 5 * se + 1.0 / B)
    assert gaps[0] > gaps[-1] and gaps[-1] < 0.01
    # convex step map: a small buffer's mean sits above the recurrence (Jensen), here by
    # more than 10 standard errors
    mean, se = means[4]
    assert mean[3] > exact[3] + 10 * se[3]


def test_simulation_candidate_cost():
    """Answers drawn to fill a buffer of B: B / pass rate in expectation (negative binomial)."""
    e0, t, f, B = 0.5, 0.8, 0.2, 50
    sim = sel.simulate_chaining(3, e0, t, f, 1, B, replicates=4000)
    cost = np.asarray(sim.candidates)[:, 0]
    pass_rate = e0 * f + (1 - e0) * t
    mean_exact = B / pass_rate
    sd = np.sqrt(B * (1 - pass_rate)) / pass_rate  # sd of a negative binomial (failures)
    assert abs(cost.mean() - mean_exact) <= 5 * sd / np.sqrt(len(cost))
    assert np.all(cost >= B)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: sel.tilt([0.5, 0.5], [0, 1], 0.0), "beta"),
        (lambda: sel.tilt([0.5, 0.5], [0, 1], -1.0), "beta"),
        (lambda: sel.tilt([0.5, 0.6], [0, 1], 1.0), "p0"),
        (lambda: sel.tilt([0.5, 0.5], [0, 1, 2], 1.0), "r"),
        (lambda: sel.tilt([0.5, 0.5], [0, np.nan], 1.0), "r"),
        (lambda: sel.tilt([1.0, 0.0], [-np.inf, 1.0], 1.0), "r"),
        (lambda: sel.best_of_n([0.5, 0.5], [0, 1], 0), "n"),
        (lambda: sel.best_of_n([0.5, 0.5], [0, 1], 2.5), "n"),
        (lambda: sel.best_of_n([0.5, 0.4], [0, 1], 2), "p"),
        (lambda: sel.best_of_n([0.5, 0.5], [0], 2), "r"),
        (lambda: sel.best_of_n([1.5, -0.5], [0, 1], 2), "p"),
        (lambda: sel.filter_rounds(1.2, 0.5, 0.5, 3), "eps0"),
        (lambda: sel.filter_rounds(0.2, -0.1, 0.5, 3), "tpr"),
        (lambda: sel.filter_rounds(0.2, 0.5, 1.5, 3), "fpr"),
        (lambda: sel.filter_rounds(0.2, 0.5, 0.5, -1), "rounds"),
        (lambda: sel.filter_rounds(0.2, 0.0, 0.0, 2), "tpr, fpr"),
        (lambda: sel.filter_rounds([0.2, 0.3], [0.5, 0.5, 0.5], 0.5, 2), "eps0, tpr, fpr"),
        (lambda: sel.simulate_chaining(0, 0.2, 0.5, 0.5, 2, 0), "buffer"),
        (lambda: sel.soft_select([0.5, 0.5], [0.5, 1.5]), "h"),
        (lambda: sel.soft_select([0.5, 0.5], [0.5]), "h"),
        (lambda: sel.soft_select([0.5, 0.5], [0.0, 0.0]), "h"),
        (lambda: sel.kl_divergence([0.5, 0.5], [1.0]), "q"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        call()
