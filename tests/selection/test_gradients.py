"""Gradients through ``tilt`` / ``tilt_log_partition`` and ``best_of_n_stats`` (issue 15,
point 1).

References, written here in NumPy from the definitions (no quasispecies kernel):
``p0 e^{r/beta} / Z`` for the tilt, and the order-statistic law
``pi_n = p (F^n - F-^n) / (F - F-)`` with ``F``, ``F-`` summed by explicit comparison for
best-of-``n``. Their central finite differences in float64 (``eps = 1e-5``; truncation
``eps^2 f'''`` ~1e-9 for ``beta >= 0.3``, rounding ~1e-11) along one random direction in
all arguments jointly, on 50 seeded cases per kernel, relative tolerance 1e-6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quasispecies.selection.best_of import best_of_n, best_of_n_stats
from quasispecies.selection.tilting import tilt, tilt_log_partition

EPS = 1e-5
N = 6
SEEDS = range(50)


def _case(seed: int):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(N)) + 0.0
    r = rng.normal(size=N)
    if seed % 3 == 0:
        r[seed % N] = -np.inf  # an excluded outcome
    if seed % 4 == 1:
        p[(seed + 1) % N] = 0.0  # an outcome without base mass
        p /= p.sum()
    if seed % 5 == 2:
        r[1] = r[2]  # a tie
    return rng, p, r


def _close(got, want):
    assert np.isfinite(got) and abs(got - want) <= 1e-6 * max(abs(want), 1.0), (got, want)


# --------------------------------------------------------------------------- tilt
def _ref_tilt(p0, r, beta, w):
    """``[<w, p_beta>, beta log Z]`` from the definition (``-inf`` rewards weigh 0)."""
    live = (p0 > 0) & np.isfinite(r)
    m = r[live].max()
    e = np.where(live, np.exp(np.where(live, r - m, 0.0) / beta), 0.0)
    Z = (p0 * e).sum()
    return np.array([w @ (p0 * e / Z), m + beta * np.log(Z)])


def _tilt_quantities(p0, r, beta, w):
    return jnp.stack([w @ tilt(p0, r, beta), tilt_log_partition(p0, r, beta)])


_tilt_grad = jax.grad(lambda p0, r, b, w, c: c @ _tilt_quantities(p0, r, b, w), argnums=(0, 1, 2))


@pytest.mark.parametrize("seed", SEEDS)
def test_tilt_directional_derivative(seed):
    rng, p0, r = _case(seed)
    beta = float(rng.uniform(0.3, 3.0))
    w, c = rng.normal(size=N), rng.normal(size=2)
    gp, gr, gb = _tilt_grad(p0, r, beta, w, c)
    vp = np.where(p0 > 0, rng.normal(size=N), 0.0)  # on p0's support
    vr = np.where(np.isfinite(r), rng.normal(size=N), 0.0)
    vb = float(rng.normal())
    got = float(gp @ vp + gr @ vr + gb * vb)
    plus = _ref_tilt(p0 + EPS * vp, r + EPS * vr, beta + EPS * vb, w)
    minus = _ref_tilt(p0 - EPS * vp, r - EPS * vr, beta - EPS * vb, w)
    _close(got, float(c @ (plus - minus)) / (2 * EPS))
    np.testing.assert_allclose(
        np.asarray(_tilt_quantities(p0, r, beta, w)), _ref_tilt(p0, r, beta, w)
    )


def test_tilt_full_finite_difference_and_closed_form():
    _, p0, r = _case(7)
    beta = 0.8
    J = np.asarray(jax.jacrev(lambda r: tilt(p0, r, beta))(r))
    for j in range(N):
        e = np.zeros(N)
        e[j] = EPS
        fd = (_ref_tilt_probs(p0, r + e, beta) - _ref_tilt_probs(p0, r - e, beta)) / (2 * EPS)
        np.testing.assert_allclose(J[:, j], fd, rtol=1e-6, atol=1e-9)
    p = _ref_tilt_probs(p0, r, beta)
    np.testing.assert_allclose(J, (np.diag(p) - np.outer(p, p)) / beta, atol=1e-12)
    # d(beta log Z)/d beta = -KL(p_beta || p0)
    kl = float((p * np.log(p / p0)).sum())
    np.testing.assert_allclose(float(jax.grad(lambda b: tilt_log_partition(p0, r, b))(beta)), -kl)


def _ref_tilt_probs(p0, r, beta):
    w = p0 * np.exp((r - r.max()) / beta)
    return w / w.sum()


def test_tilt_jit_vmap_and_tiny_beta():
    rng, p0, r = _case(3)
    w, c = rng.normal(size=N), rng.normal(size=2)
    eager = _tilt_grad(p0, r, 0.7, w, c)
    jitted = jax.jit(_tilt_grad)(p0, r, 0.7, w, c)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
    betas = jnp.array([0.3, 0.7, 2.0])
    batched = jax.vmap(lambda b: tilt(p0, r, b))(betas)
    np.testing.assert_allclose(np.asarray(batched), np.asarray(tilt(p0, r, [0.3, 0.7, 2.0])))
    gb = jax.vmap(lambda b: _tilt_grad(p0, r, b, w, c)[1])(betas)
    for i, b in enumerate([0.3, 0.7, 2.0]):
        np.testing.assert_allclose(np.asarray(gb[i]), np.asarray(_tilt_grad(p0, r, b, w, c)[1]))
    for seed in (0, 1, 3, 5):  # -inf rewards and zero base mass at beta = 1e-8
        _, p0, r = _case(seed)
        for g in _tilt_grad(p0, r, 1e-8, w, c):
            assert np.all(np.isfinite(np.asarray(g))), seed


def test_tilt_traced_shape_error_names_argument():
    p0 = np.full(N, 1 / N)
    with pytest.raises(ValueError, match="r: expected shape"):
        jax.grad(lambda r: tilt(p0, r, 1.0).sum())(np.zeros(N + 1))


# ---------------------------------------------------------------------- best of n
def _ref_best_of(p, r, n, w):
    """``[<w, pi_n>, KL(pi_n || p), win rate, E[r]]`` from the order-statistic law."""
    le = r[None, :] <= r[:, None]  # le[i, j]: r_j <= r_i
    lt = r[None, :] < r[:, None]
    F, Fm = le.astype(float) @ p, lt.astype(float) @ p
    g = F - Fm
    probs = np.where(p > 0, p * (F**n - Fm**n) / np.where(g > 0, g, 1.0), 0.0)
    pos = probs > 0
    kl = float((probs[pos] * np.log(probs[pos] / p[pos])).sum())
    win = float(probs @ (Fm + 0.5 * g))
    er = float(probs[pos] @ r[pos])
    return np.array([w @ probs, kl, win, er])


def _best_of_quantities(p, r, n, w):
    st = best_of_n_stats(p, r, n)
    return jnp.stack([w @ st.probs, st.kl, st.win_rate, st.expected_reward])


def _bon_grad(n):
    return jax.grad(lambda p, r, w, c: c @ _best_of_quantities(p, r, n, w), argnums=(0, 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_best_of_n_directional_derivative(seed):
    rng, p, r = _case(seed)
    if seed % 3 == 0:
        r[seed % N] = -5.0  # E[r] is -inf with a -inf draw; -inf rewards are checked below
    n = int(rng.integers(1, 9))
    w, c = rng.normal(size=N), rng.normal(size=4)
    gp, gr = _bon_grad(n)(p, r, w, c)
    vp = np.where(p > 0, rng.normal(size=N), 0.0)
    vp[p > 0] -= vp[p > 0].mean()  # tangent to the simplex, on p's support
    vr = rng.normal(size=N)
    got = float(gp @ vp + gr @ vr)
    plus = _ref_best_of(p + EPS * vp, r + EPS * vr, n, w)
    minus = _ref_best_of(p - EPS * vp, r - EPS * vr, n, w)
    if seed % 5 == 2:  # a tie: moving r breaks it (a jump), so differentiate in p only
        got = float(gp @ vp)
        plus = _ref_best_of(p + EPS * vp, r, n, w)
        minus = _ref_best_of(p - EPS * vp, r, n, w)
    _close(got, float(c @ (plus - minus)) / (2 * EPS))
    np.testing.assert_allclose(
        np.asarray(_best_of_quantities(p, r, n, w)), _ref_best_of(p, r, n, w), atol=1e-12
    )


def test_best_of_n_full_finite_difference_and_reward_gradient():
    _, p, r = _case(8)
    n = 4
    J = np.asarray(jax.jacrev(lambda p: best_of_n(p, r, n))(p))
    w_eye = np.eye(N)
    for j in range(N):  # along the simplex's tangent basis e_j - 1/N (the law assumes sum p = 1)
        u = np.eye(N)[j] - 1.0 / N
        e = EPS * u
        fd = np.array(
            [
                (_ref_best_of(p + e, r, n, w_eye[i])[0] - _ref_best_of(p - e, r, n, w_eye[i])[0])
                / (2 * EPS)
                for i in range(N)
            ]
        )
        np.testing.assert_allclose(J @ u, fd, rtol=1e-6, atol=1e-8)
    # pi_n is locally constant in r; E[r] has gradient pi_n
    np.testing.assert_array_equal(np.asarray(jax.jacrev(lambda r: best_of_n(p, r, n))(r)), 0.0)
    ger = jax.grad(lambda r: best_of_n_stats(p, r, n).expected_reward)(r)
    np.testing.assert_allclose(np.asarray(ger), np.asarray(best_of_n(p, r, n)), atol=1e-15)


def test_best_of_n_jit_vmap_and_forbidden_entries():
    rng, p, r = _case(4)
    w, c = rng.normal(size=N), rng.normal(size=4)
    g = _bon_grad(3)
    eager = g(p, r, w, c)
    jitted = jax.jit(g)(p, r, w, c)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
    ps = np.stack([p, _case(6)[1]])
    batched = jax.vmap(lambda q: best_of_n(q, r, 3))(ps)
    for i in range(2):
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(best_of_n(ps[i], r, 3)))
    for seed in (0, 1, 3, 5, 9):  # -inf rewards, zero mass, the lowest outcome (F- = 0)
        _, p, r = _case(seed)
        for n in (1, 2, 7):
            J = jax.jacrev(lambda q, r=r, n=n: _probs_kl_win(q, r, n))(p)
            assert np.all(np.isfinite(np.asarray(J))), seed  # (E[r] is -inf itself there)


def _probs_kl_win(p, r, n):
    st = best_of_n_stats(p, r, n)
    return jnp.concatenate([st.probs, st.kl[None], st.win_rate[None]])
