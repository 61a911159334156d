"""Eigen's single peak against the reference tables, closed forms and dense brute force.

Reference numbers are copied from ``shared/reference/eigen_single_peak.json`` into
:mod:`tests.reference.sequence` (each constant names its key); the tests never read that
file. Every other expected value is computed independently of the package: closed forms,
the secular equation and ``np.kron`` matrices (:mod:`tests.reference.sequence`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import example, given, settings, strategies as st

import quasispecies as qs
from quasispecies.sequence import ClassModel, GenotypeModel
from tests.reference.sequence import (
    REF_CD_L300,
    REF_CD_LIMIT,
    REF_L1,
    REF_L4,
    REF_L10,
    REF_L20_LAMBDA,
    REF_L50,
    dense_perron,
    dense_Q,
    hamming_to_master,
)


def lam(ss) -> float:
    return math.exp(ss.log_growth)


def l1_formula(sigma: float, mu: float) -> float:
    return (
        (1 - mu) * (sigma + 1) + math.sqrt((1 - mu) ** 2 * (sigma - 1) ** 2 + 4 * sigma * mu**2)
    ) / 2


# ----------------------------------------------------------------------------- L = 1
@pytest.mark.parametrize("case", REF_L1)
def test_l1_reference(case):
    # the reference prints 10 decimals (9 for the second case): rounding <= 5e-10
    sp = qs.SequenceSpace(1, case["mu"])
    for model in (
        qs.single_peak(sp, case["sigma"]),
        qs.single_peak(sp, case["sigma"], lumped=False),
    ):
        ss = qs.steady_state(model, T=1.0)
        assert lam(ss) == pytest.approx(case["lambda"], abs=1e-9)
        assert l1_formula(case["sigma"], case["mu"]) == pytest.approx(case["lambda"], abs=1e-9)
        if "population" in case:
            np.testing.assert_allclose(ss.population, case["population"], atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(sigma=st.floats(1.0, 1e3), mu=st.floats(0.0, 1.0))
def test_l1_closed_form(sigma, mu):
    sp = qs.SequenceSpace(1, mu)
    exact = l1_formula(sigma, mu)
    for model in (qs.single_peak(sp, sigma), qs.single_peak(sp, sigma, lumped=False)):
        assert lam(model.steady_state()) == pytest.approx(exact, rel=1e-12, abs=1e-14)


# ------------------------------------------------------------------ L = 4, 10 tables
TABLE = [(4, c) for c in REF_L4] + [(10, c) for c in REF_L10]


@pytest.mark.parametrize(("L", "case"), TABLE)
def test_tables_full_space_and_classes(L, case):
    # the reference gives 12 decimals: rounding <= 5e-13; both solvers agree to ~3e-13
    sp = qs.SequenceSpace(L, case["mu"])
    classes = qs.single_peak(sp, case["sigma"])
    full = qs.single_peak(sp, case["sigma"], lumped=False)
    assert isinstance(classes, ClassModel) and isinstance(full, GenotypeModel)
    sc, sf = qs.steady_state(classes, 1.0), qs.steady_state(full, 1.0)
    assert lam(sc) == pytest.approx(case["lambda"], abs=2e-12)
    assert lam(sf) == pytest.approx(case["lambda"], abs=2e-12)
    assert sc.population.shape == (L + 1,) and sf.population.shape == (2**L,)
    by_class = np.bincount(hamming_to_master(L, 2), weights=sf.population, minlength=L + 1)
    # the full-space Lanczos vector is accurate normwise (Ritz residual <= 1e-12 relative: a few
    # 1e-12 per class, so not relative in the tail below 1e-12); entrywise relative accuracy
    # is the class model's (tested against 50-digit arithmetic below)
    np.testing.assert_allclose(sc.population, by_class, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(full.class_frequencies(sf.population), by_class, rtol=1e-12)
    if "class_frequencies_k0_to_k3" in case:  # 6 decimals in the reference
        np.testing.assert_allclose(sc.population[:4], case["class_frequencies_k0_to_k3"], atol=5e-7)
    # identity for the single peak: x0 = (lambda - 1) / (sigma - 1)
    for ss in (sc, sf):
        assert ss.population[0] == pytest.approx((lam(ss) - 1) / (case["sigma"] - 1), rel=1e-10)
        assert ss.residual < 1e-10 and ss.converged
    # and against a dense eig of W = diag(f) Q built from np.kron
    f = np.ones(2**L)
    f[0] = case["sigma"]
    rho, x = dense_perron(f[:, None] * dense_Q([case["mu"]] * L, 2))
    assert lam(sf) == pytest.approx(rho, rel=1e-12)
    np.testing.assert_allclose(sf.population, x, atol=1e-12)


# ------------------------------------------------------------------------------ L = 50
@pytest.mark.parametrize("case", REF_L50)
def test_l50_reference(case):
    sigma = 10.0
    ss = qs.steady_state(qs.single_peak(qs.SequenceSpace(50, case["mu"]), sigma), 1.0)
    assert lam(ss) == pytest.approx(case["lambda"], abs=1e-9)  # 10 decimals in the reference
    x0_digits = len(str(case["x0"]).split(".")[1])  # compare to the digits printed
    assert ss.population[0] == pytest.approx(case["x0"], abs=0.5 * 10.0**-x0_digits)
    assert ss.population[0] == pytest.approx((lam(ss) - 1) / (sigma - 1), rel=1e-10)
    assert ss.population.sum() == pytest.approx(1.0, abs=1e-13)


# --------------------------------------------------------------- secular equation
def secular(L: int, k: int, sigma: float, mu: float, gap0: float) -> float:
    r"""``(sigma-1) k^-L sum_d C(L,d) (k-1)^d e_d / (lambda - e_d)``; equals 1 at the Perron root.

    For k = 2 this is the reference's ``(sigma-1) 2^-L sum_k C(L,k) e_k/(lambda - e_k)``,
    ``e_k = (1-2mu)^k``. The general k follows the same way: the characters of ``Z_k^L``
    diagonalise ``Q`` with ``|phi(0)|^2 = k^-L`` and eigenvalue ``(1 - mu k/(k-1))^d``.
    ``gap0 = lambda - 1`` is passed instead of ``lambda`` so that ``lambda - e_d =
    gap0 + (1 - e_d)`` is formed without cancellation (above the threshold ``lambda - 1``
    can be ``1e-13``).
    """
    d = np.arange(L + 1)
    logw = (
        scipy.special.gammaln(L + 1)
        - scipy.special.gammaln(d + 1)
        - scipy.special.gammaln(L - d + 1)
        + d * math.log(k - 1)
        - L * math.log(k)
    )
    r = 1.0 - mu * k / (k - 1)  # in [0, 1)
    e = r**d
    one_minus_e = np.where(
        d == 0, 0.0, 1.0 if r == 0 else -np.expm1(d * math.log(r) if r > 0 else 0)
    )
    return (sigma - 1) * float(np.sum(np.exp(logw) * e / (gap0 + one_minus_e)))


@settings(max_examples=30, deadline=None)
@given(
    L=st.sampled_from([1, 2, 3, 5, 8, 13, 40, 120, 300]),
    k=st.sampled_from([2, 3, 4]),
    sigma=st.floats(1.05, 100.0),
    frac=st.floats(0.001, 1.0),
)
# just below the threshold at L = 300, and a master class of 1e-73 far above it (both once
# broke the class solver: noise in the symmetric eigenvector, amplified by sqrt(class size))
@example(L=300, k=2, sigma=2.0, frac=0.00390625)
@example(L=120, k=4, sigma=2.0, frac=0.0625)
def test_secular_equation(L, k, sigma, frac):
    mu = frac * (k - 1) / k  # e_d >= 0, so every lambda - e_d > 0
    ss = qs.single_peak(qs.SequenceSpace(L, mu, alphabet=k), sigma).steady_state()
    # lambda - 1 from the master frequency (exact identity x0 = (lambda-1)/(sigma-1), checked
    # against lambda itself on the next line): keeps its relative accuracy above the threshold
    gap0 = (sigma - 1) * ss.population[0]
    assert 1 + gap0 == pytest.approx(lam(ss), rel=1e-13)
    assert secular(L, k, sigma, mu, gap0) == pytest.approx(1.0, rel=1e-10)
    if lam(ss) - 1 > 1e-6:  # lambda itself is a root up to a 1e-12 relative perturbation
        h = 1e-12 * lam(ss)
        lo = secular(L, k, sigma, mu, lam(ss) - 1 + h)
        hi = secular(L, k, sigma, mu, lam(ss) - 1 - h)
        assert lo < 1.0 < hi  # the secular function decreases in lambda > max e_d


# ------------------------------------------------------------------ spectrum of Q
@pytest.mark.parametrize(("L", "k", "mu"), [(5, 2, 0.07), (6, 2, 0.4), (4, 3, 0.2), (3, 4, 0.6)])
def test_spectrum_of_Q(L, k, mu):
    sp = qs.SequenceSpace(L, mu, alphabet=k)
    e, mult = sp.mutation_spectrum()
    expected = np.sort(np.repeat(e, np.round(mult).astype(int)))
    np.testing.assert_allclose(
        np.sort(np.linalg.eigvalsh(dense_Q([mu] * L, k))), expected, atol=1e-13
    )
    np.testing.assert_array_equal(
        np.round(mult), [math.comb(L, d) * (k - 1) ** d for d in range(L + 1)]
    )


@pytest.mark.parametrize("subset", [(), (0,), (3, 7), (0, 1, 5, 10, 11)])
def test_walsh_functions_are_eigenvectors(subset):
    # (1 - 2 mu)^|S| for the Walsh function (-1)^{sum_{i in S} g_i}, L = 12, via Kronecker matvec
    L, mu = 12, 0.13
    idx = np.arange(2**L)
    bits = (idx[:, None] >> (L - 1 - np.arange(L))[None, :]) & 1
    w = (-1.0) ** bits[:, list(subset)].sum(axis=1)
    out = qs.SequenceSpace(L, mu).mutate(w)
    np.testing.assert_allclose(out, (1 - 2 * mu) ** len(subset) * w, atol=1e-14)


# ------------------------------------------------------- identities at mu = 1/2, 0
@pytest.mark.parametrize(("L", "k"), [(6, 2), (4, 3)])
def test_identity_uniform_copying(L, k):
    # mu = (k-1)/k (1/2 for binary): Q = J / k^L, so lambda = mean(f) and x is uniform
    rng = np.random.default_rng(L * k)
    f = rng.uniform(0.2, 5.0, k**L)
    sp = qs.SequenceSpace(L, (k - 1) / k, alphabet=k)
    ss = qs.steady_state(qs.fitness_landscape(sp, f), 1.0)
    assert lam(ss) == pytest.approx(f.mean(), rel=1e-12)
    np.testing.assert_allclose(ss.population, 1.0 / k**L, rtol=1e-10)


@pytest.mark.parametrize("L", [1, 10, 50, 300])
def test_identity_half_single_peak_classes(L):
    sigma = 10.0
    ss = qs.single_peak(qs.SequenceSpace(L, 0.5), sigma).steady_state()
    assert lam(ss) == pytest.approx(1 + (sigma - 1) / 2.0**L, rel=1e-12)  # mean fitness
    sizes = np.array([math.comb(L, d) for d in range(L + 1)], dtype=float)
    np.testing.assert_allclose(ss.population, sizes / 2.0**L, rtol=1e-9)


def test_identity_no_mutation():
    # mu = 0: W = diag(f), lambda = max f, the population sits on the fittest genotype
    rng = np.random.default_rng(3)
    f = rng.uniform(0.2, 5.0, 2**7)
    ss = qs.steady_state(qs.fitness_landscape(qs.SequenceSpace(7, 0.0), f), 1.0)
    assert lam(ss) == pytest.approx(f.max(), rel=1e-14)
    np.testing.assert_array_equal(ss.population, np.eye(2**7)[np.argmax(f)])
    sc = qs.single_peak(qs.SequenceSpace(50, 0.0), 10.0).steady_state()
    assert lam(sc) == pytest.approx(10.0, rel=1e-14)
    np.testing.assert_array_equal(sc.population, np.eye(51)[0])


# ------------------------------------------------------------------- Cerf–Dalmau
def cerf_dalmau(sigma: float, a: float, kmax: int) -> np.ndarray:
    """``(sigma e^-a - 1) (a^k / k!) sum_{i>=1} i^k sigma^-i`` for k = 0..kmax."""
    i = np.arange(1, 2000, dtype=float)
    return np.array(
        [
            (sigma * math.exp(-a) - 1) * a**k / math.factorial(k) * np.sum(i**k * sigma**-i)
            for k in range(kmax + 1)
        ]
    )


def test_cerf_dalmau_limit():
    limit = cerf_dalmau(10.0, 1.0, 4)
    np.testing.assert_allclose(limit, REF_CD_LIMIT, atol=5e-7)  # 6 decimals printed
    ss = qs.single_peak(qs.SequenceSpace(300, 1 / 300), 10.0).steady_state()
    np.testing.assert_allclose(ss.population[:5], REF_CD_L300, atol=5e-7)
    # finite L approaches the limit at O(1/L): at L = 300 within 1e-3 (7e-4 observed in the ref)
    np.testing.assert_allclose(ss.population[:5], limit, atol=1e-3)


# ------------------------------------------------------------ L = 20, full space
def test_l20_full_space():
    sp = qs.SequenceSpace(20, 0.02)
    full = qs.single_peak(sp, 10.0, lumped=False)
    ss = qs.steady_state(full, 1.0)
    assert lam(ss) == pytest.approx(REF_L20_LAMBDA, abs=1e-9)  # 10 decimals in the reference
    assert ss.converged and ss.residual < 1e-9
    assert ss.iterations < 60  # Lanczos: a few dozen matvecs, not thousands
    sc = qs.single_peak(sp, 10.0).steady_state()
    assert lam(ss) == pytest.approx(lam(sc), rel=1e-11)
    # normwise accuracy of the 2^20-vector (L1 residual ~3e-11): see test_tables_full_space...
    np.testing.assert_allclose(
        full.class_frequencies(ss.population), sc.population, rtol=1e-8, atol=1e-10
    )
    assert ss.population.min() > 0
