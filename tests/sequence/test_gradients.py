"""Gradients of the sequence-space growth rate (issue 15, point 1): ``log_growth`` and
``scaled_log_growth`` w.r.t. the landscape ``log f`` and ``T``, for the full genotype
space and the Hamming-class lumping.

Reference: the dense ``W_T = diag(f^{1/T}) Q`` with ``Q`` the explicit Kronecker product
(tests/reference/sequence.py), ``log lambda`` from ``numpy.linalg.eig``; its central finite
differences in float64 (``eps = 1e-5``: truncation ``eps^2 f'''`` ~1e-9 at ``T >= 0.3``,
rounding ~1e-11) along one random direction in ``(log f, T)``, on 50 seeded landscapes,
relative tolerance 1e-6; the closed form ``pi = l r / (l . r)`` from the dense left and
right eigenvectors; and at ``T = 0`` the Perron vector of ``Q`` restricted to the fittest.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quasispecies import sequence as sq
from tests.reference import sequence as ref

EPS = 1e-5
#: (L, k, lumped): few shapes, so the solvers compile once each.
SHAPES = [(4, 2, False), (2, 3, False), (5, 2, True)]


def _case(seed: int):
    rng = np.random.default_rng(seed)
    L, k, lumped = SHAPES[seed % len(SHAPES)]
    if lumped or seed % 2:
        mus = np.full(L, rng.uniform(0.01, 0.3))
    else:
        mus = rng.uniform(0.01, 0.3, size=L)  # per-site rates
    space = sq.SequenceSpace(L, mus if not lumped else float(mus[0]), k)
    n = L + 1 if lumped else k**L
    lf = rng.normal(scale=0.7, size=n)
    model = sq.ClassModel(space, lf) if lumped else sq.GenotypeModel(space, lf)
    return rng, model, mus, lf, float(rng.uniform(0.3, 2.0))


def _dense_W(model, mus, lf, T):
    L, k = model.space.length, model.space.alphabet
    if model.lumped:
        lf = np.asarray(lf)[ref.hamming_to_master(L, k)]
    return np.exp(np.asarray(lf) / T)[:, None] * ref.dense_Q(mus, k)


def _ref_log_growth(model, mus, lf, T):
    vals = np.linalg.eigvals(_dense_W(model, mus, lf, T))
    return float(np.log(vals.real.max()))


def _ref_flux(model, mus, lf, T):
    """``pi = l r / (l . r)`` from dense left and right eigenvectors (summed by class)."""
    W = _dense_W(model, mus, lf, T)
    _, l = ref.dense_perron(W)
    _, r = ref.dense_perron(W.T)
    pi = l * r / (l @ r)
    if model.lumped:
        L, k = model.space.length, model.space.alphabet
        pi = np.bincount(ref.hamming_to_master(L, k), weights=pi, minlength=L + 1)
    return pi


def _both(model, lf, T):
    return jnp.stack([sq.log_growth(model, T, lf), sq.scaled_log_growth(model, T, lf)])


def _grad(model, c):
    return jax.grad(lambda lf, T: c @ _both(model, lf, T), argnums=(0, 1))


@pytest.mark.parametrize("block", range(5))
def test_directional_derivatives_against_dense_eigenvalues(block):
    for seed in range(10 * block, 10 * block + 10):  # 50 seeded landscapes in all
        rng, model, mus, lf, T = _case(seed)
        c = rng.normal(size=2)
        glf, gT = _grad(model, c)(lf, T)
        v, vT = rng.normal(size=lf.shape), float(rng.normal())

        def f(lf, T, model=model, mus=mus):
            return np.array(
                [_ref_log_growth(model, mus, lf, T), T * _ref_log_growth(model, mus, lf, T)]
            )

        want = float(c @ (f(lf + EPS * v, T + EPS * vT) - f(lf - EPS * v, T - EPS * vT))) / (
            2 * EPS
        )
        got = float(glf @ v + gT * vT)
        assert np.isfinite(got) and abs(got - want) <= 1e-6 * max(abs(want), 1.0), (
            seed,
            got,
            want,
        )
        np.testing.assert_allclose(np.asarray(_both(model, lf, T)), f(lf, T), rtol=1e-10)


@pytest.mark.parametrize("which", [0, 2])
def test_full_finite_difference_and_closed_form_flux(which):
    _, model, mus, lf, T = _case(which)
    g = np.asarray(jax.grad(lambda lf: sq.log_growth(model, T, lf))(lf))
    for j in range(lf.shape[0]):
        e = np.zeros_like(lf)
        e[j] = EPS
        fd = (_ref_log_growth(model, mus, lf + e, T) - _ref_log_growth(model, mus, lf - e, T)) / (
            2 * EPS
        )
        assert abs(g[j] - fd) <= 1e-6 * max(abs(fd), 1e-3), (j, g[j], fd)
    pi = _ref_flux(model, mus, lf, T)
    np.testing.assert_allclose(g, pi / T, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.asarray(sq.selection_flux(model, T, lf)), pi, atol=1e-10)
    np.testing.assert_allclose(
        np.asarray(jax.grad(lambda lf: sq.scaled_log_growth(model, T, lf))(lf)), pi, atol=1e-10
    )


def test_jit_and_vmap_agree_with_eager():
    rng, model, _, lf, T = _case(1)
    g = _grad(model, rng.normal(size=2))
    eager = g(lf, T)
    jitted = jax.jit(g)(lf, T)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
    Ts = jnp.array([0.4, 0.9, 1.6])
    batched = jax.vmap(lambda t: g(lf, t))(Ts)
    for i, t in enumerate([0.4, 0.9, 1.6]):
        one = g(lf, t)
        np.testing.assert_allclose(np.asarray(batched[0][i]), np.asarray(one[0]), rtol=1e-10)
        np.testing.assert_allclose(float(batched[1][i]), float(one[1]), rtol=1e-10)
    lfs = np.stack([lf, lf[::-1]])
    vals = jax.vmap(lambda x: sq.log_growth(model, 0.9, x))(lfs)
    for i in range(2):
        assert abs(float(vals[i]) - float(sq.log_growth(model, 0.9, lfs[i]))) < 1e-12
    assert abs(float(vals[0]) - model.steady_state(0.9).log_growth) < 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_nan_at_tiny_temperature(seed):
    _, model, _, lf, _ = _case(seed)
    lf = lf.copy()
    lf[-1] = -np.inf  # a lethal genotype
    for T in (1e-8, 0.0):
        glf, gT = _grad(model, np.ones(2))(lf, T)
        assert np.all(np.isfinite(np.asarray(glf))) and np.isfinite(float(gT)), (seed, T)


def test_T0_subgradient_is_the_restricted_perron_flux():
    """At ``T = 0`` ``T log lambda = max log f``: the gradient is ``z^2`` on the fittest set
    ``F`` (``z`` the Perron vector of ``Q_FF``), the ``T``-derivative ``log rho(Q_FF)``."""
    _, model, mus, lf, _ = _case(0)
    lf = lf.copy()
    top = np.argsort(lf)[-2:]
    lf[top] = lf.max()  # two fittest genotypes tie
    glf, gT = jax.grad(lambda lf, T: sq.scaled_log_growth(model, T, lf), argnums=(0, 1))(lf, 0.0)
    Q = ref.dense_Q(mus, model.space.alphabet)
    F = np.flatnonzero(lf >= lf.max())
    w, V = np.linalg.eigh(Q[np.ix_(F, F)])
    z = V[:, -1]
    want = np.zeros_like(lf)
    want[F] = z**2 / (z @ z)
    np.testing.assert_allclose(np.asarray(glf), want, atol=1e-10)
    np.testing.assert_allclose(float(gT), np.log(w[-1]), rtol=1e-10)
    # a subgradient of the maximum: f(lf + v) >= f(lf) + <g, v>
    rng = np.random.default_rng(0)
    for _ in range(10):
        v = rng.normal(size=lf.shape)
        assert (lf + v).max() >= lf.max() + float(np.asarray(glf) @ v) - 1e-12


def test_bad_input_names_the_argument():
    _, model, _, lf, _ = _case(0)
    with pytest.raises(ValueError, match="log_fitness: expected shape"):
        jax.grad(lambda x: sq.log_growth(model, 1.0, x))(np.zeros(lf.shape[0] + 1))
    with pytest.raises(ValueError, match="log_fitness: NaN"):
        sq.log_growth(model, 1.0, np.full(lf.shape, np.nan))
    with pytest.raises(ValueError, match="model"):
        sq.log_growth(object(), 1.0)
    with pytest.raises(ValueError, match="T"):
        jax.grad(lambda t: sq.log_growth(model, t).sum())(jnp.ones(2))
