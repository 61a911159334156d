"""Full-space sequence models: Kronecker matvecs, random landscapes and dynamics vs brute force.

``Q`` is built independently with ``np.kron`` of per-site matrices (:mod:`tests.reference.sequence`),
the Perron pair by ``numpy.linalg.eig``; at L = 16 by ARPACK (``scipy.sparse.linalg.eigs``)
driving a NumPy reshape-and-tensordot matvec.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.linalg
from hypothesis import given, settings, strategies as st

import quasispecies as qs
from quasispecies.kernels import kronecker
from tests.reference.sequence import (
    additive_fitness,
    dense_perron,
    dense_Q,
    multiplicative_fitness,
    nk_fitness,
    numpy_kron_matvec,
)

# (L, k) shapes used below: each compiles the Kronecker kernels once, so keep the set small
SHAPES = [(6, 2), (9, 2), (4, 3), (3, 4)]


def random_mu(rng, L, k, per_site):
    top = (k - 1) / k
    return rng.uniform(0.005, 0.6 * top, L) if per_site else float(rng.uniform(0.005, 0.6 * top))


def random_model(kind, sp, rng):
    """One of the landscape builders, plus its fitness over genotypes by brute force."""
    L, k = sp.length, sp.alphabet
    if kind == "any":
        f = rng.uniform(0.1, 4.0, k**L)
        return qs.fitness_landscape(sp, f), f
    if kind == "additive":
        s = rng.uniform(-0.5 / L, 1.0, (L, k))
        return qs.additive(sp, s, base=1.0), additive_fitness(s, 1.0, L, k)
    if kind == "multiplicative":
        w = rng.uniform(0.5, 1.5, (L, k))
        return qs.multiplicative(sp, w, base=2.0), multiplicative_fitness(w, 2.0, L, k)
    if kind == "nk":
        K = int(rng.integers(0, L))
        seed = int(rng.integers(0, 1000))
        # independent NK evaluation: same tables (numpy seed), adjacent neighbourhoods
        return qs.nk_landscape(sp, K, seed=seed), nk_fitness(L, k, K, seed)
    raise AssertionError(kind)


# --------------------------------------------------------------- Kronecker matvec
@pytest.mark.parametrize(("L", "k"), SHAPES)
@pytest.mark.parametrize("per_site", [False, True])
def test_matvec_vs_dense(L, k, per_site):
    rng = np.random.default_rng(L * 10 + k)
    mu = random_mu(rng, L, k, per_site)
    sp = qs.SequenceSpace(L, mu, alphabet=k)
    Q = dense_Q(sp.mu, k)
    np.testing.assert_allclose(Q.sum(axis=1), 1.0, rtol=1e-14)
    x = rng.random(k**L)
    np.testing.assert_allclose(sp.mutate(x), x @ Q, rtol=1e-13)
    np.testing.assert_allclose(numpy_kron_matvec(x, sp.mu, k), x @ Q, rtol=1e-13)
    # log domain: log(x Q) from log x, including -inf entries and a 1e-250..1 range
    x[rng.random(x.size) < 0.3] = 0.0
    x *= 10.0 ** -rng.uniform(0, 250, x.size)
    with np.errstate(divide="ignore"):
        u = np.log(x)
    lw = jnp.asarray(kronecker.log_site_weights(sp.mu, k))
    got = np.asarray(kronecker.log_mutate(jnp.asarray(u), lw, k))
    with np.errstate(divide="ignore"):
        want = np.log(x @ Q)
    assert np.array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], atol=1e-12)


def test_log_matvec_underflow():
    # entries of 1e-400 (below float64's range) stay exact in the log domain
    L, k, mu = 6, 2, 0.1
    Q = dense_Q([mu] * L, k)
    rng = np.random.default_rng(1)
    x = rng.random(2**L)
    u = np.log(x) - 400 * math.log(10)
    got = np.asarray(
        kronecker.log_mutate(
            jnp.asarray(u), jnp.asarray(kronecker.log_site_weights(np.full(L, mu), k)), k
        )
    )
    np.testing.assert_allclose(got + 400 * math.log(10), np.log(x @ Q), atol=1e-12)


@pytest.mark.parametrize("stored", [False, True])
@pytest.mark.parametrize("block", [8, 64, kronecker.BLOCK])
def test_symmetrised_operator_blocked(block, stored):
    # G^1/2 Q G^1/2 v through the cache-blocked kernel (small blocks force the two-stage path);
    # g^(1/2) either formed from log f inside the kernel (default) or precomputed
    L, k = 9, 2
    rng = np.random.default_rng(block)
    sp = qs.SequenceSpace(L, rng.uniform(0.01, 0.3, L))
    f = rng.uniform(0.5, 3.0, 2**L)
    model = qs.fitness_landscape(sp, f)
    op = model.operator(T=0.7, block=block, store_sqrt_g=stored)
    g = (f / f.max()) ** (1 / 0.7)
    A = np.sqrt(g)[:, None] * dense_Q(sp.mu, k) * np.sqrt(g)[None, :]
    v = rng.standard_normal(2**L)
    u, _, stats = op.step(op.zeros(), jnp.asarray(v), op.zeros())
    np.testing.assert_allclose(np.asarray(u), A @ v, rtol=1e-12, atol=1e-14)
    assert stats[0] == pytest.approx(v @ A @ v, rel=1e-12)
    ss = model.steady_state(0.7, block=block, store_sqrt_g=stored)
    rho, x = dense_perron(f[:, None] ** (1 / 0.7) * dense_Q(sp.mu, k))
    assert ss.log_growth == pytest.approx(math.log(rho), rel=1e-12)
    np.testing.assert_allclose(ss.population, x, atol=1e-12)


def test_operator_holds_no_genotype_vector():
    # memory: by default the operator keeps only a reference to the landscape's log f (g^1/2 is
    # formed in the kernel), so a solve holds the landscape plus the solver's three buffers
    sp = qs.SequenceSpace(10, 0.01)
    model = qs.nk_landscape(sp, 2, seed=1)
    op = model.operator(1.0)
    assert op.diag is model.log_fitness
    held = [a for a in vars(op).values() if getattr(a, "size", 0) == sp.size]
    assert held and all(a is model.log_fitness for a in held)
    stored = model.operator(1.0, store_sqrt_g=True)
    lf = np.asarray(model.log_fitness)
    # XLA's exp and libm's may differ in the last ulp
    np.testing.assert_allclose(np.asarray(stored.diag), np.exp(0.5 * (lf - lf.max())), rtol=4e-16)


# ------------------------------------------------------ random landscapes, dense eig
@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from(SHAPES),
    kind=st.sampled_from(["any", "additive", "multiplicative", "nk"]),
    per_site=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
    T=st.sampled_from([1.0, 1.0, 0.3, 2.5]),
)
def test_random_landscapes_vs_dense(shape, kind, per_site, seed, T):
    L, k = shape
    rng = np.random.default_rng(seed)
    sp = qs.SequenceSpace(L, random_mu(rng, L, k, per_site), alphabet=k)
    model, f = random_model(kind, sp, rng)
    np.testing.assert_allclose(np.exp(np.asarray(model.log_fitness)), f, rtol=1e-12)
    rho, x = dense_perron(f[:, None] ** (1 / T) * dense_Q(sp.mu, k))
    ss = qs.steady_state(model, T)
    assert ss.converged and ss.residual < 1e-10
    assert ss.log_growth == pytest.approx(math.log(rho), rel=1e-11, abs=1e-12)
    assert ss.scaled_log_growth == pytest.approx(T * math.log(rho), rel=1e-11, abs=1e-12)
    np.testing.assert_allclose(ss.population, x, atol=1e-11)
    assert ss.population.sum() == pytest.approx(1.0, abs=1e-13)
    if T == 1.0:  # at T = 1 the mean fitness of the quasispecies is lambda
        assert model.mean_fitness(ss.population) == pytest.approx(rho, rel=1e-10)


def test_symmetric_landscape_full_equals_classes():
    # a landscape of the Hamming distance alone: genotype model summed by class == class model
    sp = qs.SequenceSpace(9, 0.07)
    full, classes = qs.additive(sp, 0.2, lumped=False), qs.additive(sp, 0.2)
    a, b = qs.steady_state(full, 1.0), qs.steady_state(classes, 1.0)
    assert a.log_growth == pytest.approx(b.log_growth, rel=1e-12)
    np.testing.assert_allclose(full.class_frequencies(a.population), b.population, atol=1e-12)
    np.testing.assert_allclose(classes.to_genotypes().log_fitness, full.log_fitness, rtol=1e-14)


# ---------------------------------------------------------------- L = 16, ARPACK
def test_l16_vs_arpack():
    L, k = 16, 2
    rng = np.random.default_rng(16)
    mu = rng.uniform(0.002, 0.05, L)
    sp = qs.SequenceSpace(L, mu)
    model = qs.nk_landscape(sp, 3, seed=7)
    f = np.exp(np.asarray(model.log_fitness))
    N = k**L
    # x W = lambda x  <=>  W^T x = Q (f * x) = lambda x   (Q symmetric)
    op = scipy.sparse.linalg.LinearOperator(
        (N, N), matvec=lambda v: numpy_kron_matvec(f * v.ravel(), mu, k), dtype=np.float64
    )
    vals, vecs = scipy.sparse.linalg.eigs(op, k=1, which="LR", tol=1e-14, v0=np.ones(N))
    lam_ref, x_ref = float(vals[0].real), vecs[:, 0].real
    x_ref = x_ref / x_ref.sum()
    ss = qs.steady_state(model, 1.0)
    assert math.exp(ss.log_growth) == pytest.approx(lam_ref, rel=1e-9)
    assert np.abs(ss.population - x_ref).sum() < 1e-9
    assert ss.residual < 1e-9 and ss.iterations < 200


# ---------------------------------------------------------------------- dynamics
@pytest.mark.parametrize(("L", "k"), [(6, 2), (4, 3)])
@pytest.mark.parametrize("T", [1.0, 0.4])
def test_evolve_vs_matrix_power(L, k, T):
    rng = np.random.default_rng(L + k)
    sp = qs.SequenceSpace(L, rng.uniform(0.01, 0.3, L), alphabet=k)
    f = rng.uniform(0.5, 2.0, k**L)
    model = qs.fitness_landscape(sp, f)
    W = f[:, None] ** (1 / T) * dense_Q(sp.mu, k)
    x0 = rng.random(k**L)
    x0 /= x0.sum()
    xs = qs.evolve(model, T, 25, x0)
    assert xs.shape == (26, k**L)
    n = x0.copy()
    for t in range(26):
        np.testing.assert_allclose(xs[t], n / n.sum(), rtol=1e-11, atol=1e-15)
        n = n @ W
    # the dynamics converge to the steady state
    far = qs.evolve(model, T, 400, 0)[-1]
    np.testing.assert_allclose(far, qs.steady_state(model, T).population, atol=1e-10)


def test_evolve_classes_vs_genotypes():
    sp = qs.SequenceSpace(7, 0.05)
    classes, full = qs.single_peak(sp, 5.0), qs.single_peak(sp, 5.0, lumped=False)
    yc = qs.evolve(classes, 1.0, 30)  # uniform over genotypes
    yg = qs.evolve(full, 1.0, 30)
    for t in (0, 1, 7, 30):
        np.testing.assert_allclose(yc[t], full.class_frequencies(yg[t]), rtol=1e-11)
    sweep = qs.evolve(classes, np.array([1.0, 0.5]), 10, 0)
    assert sweep.shape == (2, 11, 8)
    np.testing.assert_allclose(sweep[0], qs.evolve(classes, 1.0, 10, 0), rtol=1e-14)


# ---------------------------------------------------------------- low temperature
@pytest.mark.parametrize("stored", [False, True])
@pytest.mark.parametrize("T", [1e-8, 1e-310, 0.0])  # 1e-310: 1/T overflows float64
def test_low_temperature_full_space(T, stored):
    L, k = 6, 2
    rng = np.random.default_rng(5)
    sp = qs.SequenceSpace(L, rng.uniform(0.01, 0.2, L))
    f = rng.uniform(0.5, 2.0, 2**L)
    best = int(np.argmax(f))
    model = qs.fitness_landscape(sp, f)
    ss = model.steady_state(T, store_sqrt_g=stored)
    Q = dense_Q(sp.mu, k)
    # T -> 0+: only the fittest genotype replicates; the population is its offspring row of Q
    assert np.isfinite(ss.population).all() and not np.isnan(ss.scaled_log_growth)
    np.testing.assert_allclose(ss.population, Q[best], rtol=1e-9, atol=1e-15)
    assert ss.scaled_log_growth == pytest.approx(
        math.log(f[best]) + T * math.log(Q[best, best]), rel=1e-12
    )
    xs = qs.evolve(model, T, 5, None)
    assert np.isfinite(xs).all()
    np.testing.assert_allclose(xs[-1], Q[best], rtol=1e-9, atol=1e-15)
