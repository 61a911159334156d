"""Eigen's single peak against the reference tables, closed forms and dense brute force.

Reference numbers are copied from ``shared/reference/eigen_single_peak.json`` (each block
below names its key); the tests never read that file. Every other expected value is computed
here independently of the package: closed forms, the secular equation, ``np.kron`` matrices
(:mod:`sequence_brute`) and, for tail frequencies, 50-digit ``mpmath`` arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import example, given, settings, strategies as st

import quasispecies as qs
from quasispecies.sequence.core import ClassModel, GenotypeModel
from tests.reference.sequence import dense_perron, dense_Q, hamming_to_master

# --------------------------------------------------------------------------------------
# Copied from shared/reference/eigen_single_peak.json (binary alphabet, W = Q diag(f),
# lambda = Perron root = mean fitness at equilibrium, x0 = master frequency).
# key "L1_closed_form": lambda = [(1-mu)(sigma+1) + sqrt((1-mu)^2 (sigma-1)^2 + 4 sigma mu^2)] / 2
REF_L1 = [
    {"sigma": 2, "mu": 0.1, "lambda": 1.8216990566, "population": [0.8216990566, 0.1783009434]},
    {"sigma": 10, "mu": 0.01, "lambda": 9.900112232},
]
# key "L4"
REF_L4 = [{"sigma": 2, "mu": 0.05, "lambda": 1.647498640062}]
# key "L10"
REF_L10 = [
    {"sigma": 2, "mu": 0.01, "lambda": 1.810615228038},
    {"sigma": 2, "mu": 0.05, "lambda": 1.233970361109},
    {"sigma": 2, "mu": 0.1, "lambda": 1.002528016491},
    {"sigma": 10, "mu": 0.01, "lambda": 9.044846701094},
    {
        "sigma": 10,
        "mu": 0.05,
        "lambda": 6.006135109466,
        "class_frequencies_k0_to_k3": [0.556237, 0.326193, 0.094886, 0.019109],
    },
    {"sigma": 10, "mu": 0.1, "lambda": 3.538793353521},
]
# key "L50_sigma10" (note: threshold 1 - sigma^(-1/L) = 0.0450074, ln(sigma)/L = 0.0460517)
REF_L50 = [
    {"mu": 0.01, "lambda": 6.0535026655, "x0": 0.5615},
    {"mu": 0.02, "lambda": 3.6502512574, "x0": 0.29447},
    {"mu": 0.045, "lambda": 1.0138158406, "x0": 0.001535},
]
REF_L50_THRESHOLD, REF_L50_APPROX = 0.0450074, 0.0460517
# key "L20_sigma10_mu0.02_full_space"
REF_L20_LAMBDA = 6.6822945273
# key "cerf_dalmau_limit": sigma = 10, a = L mu = 1
REF_CD_LIMIT = [0.297644, 0.330715, 0.202104, 0.095948, 0.041793]
REF_CD_L300 = [0.297114, 0.331368, 0.202669, 0.096036, 0.041644]
# --------------------------------------------------------------------------------------


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


def test_l50_thresholds():
    curves = qs.error_threshold(50, 10.0, [0.01])
    assert curves.threshold[0] == pytest.approx(REF_L50_THRESHOLD, abs=5e-8)
    assert curves.threshold_approx[0] == pytest.approx(REF_L50_APPROX, abs=5e-8)
    assert curves.threshold[0] == pytest.approx(1 - 10 ** (-1 / 50), rel=1e-14)
    assert curves.threshold_approx[0] == pytest.approx(math.log(10) / 50, rel=1e-14)


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


# ------------------------------------------------------ class model, any landscape
def dense_class_model(L, k, mu, f_classes):
    d = hamming_to_master(L, k)
    f = np.asarray(f_classes)[d]
    rho, x = dense_perron(f[:, None] * dense_Q([mu] * L, k))
    return rho, np.bincount(d, weights=x, minlength=L + 1)


@pytest.mark.parametrize(("L", "k"), [(6, 2), (4, 3), (3, 4)])
def test_class_model_vs_dense(L, k):
    rng = np.random.default_rng(L + 10 * k)
    mu = 0.11
    sp = qs.SequenceSpace(L, mu, alphabet=k)
    fc = rng.uniform(0.5, 3.0, L + 1)
    models = [
        (qs.landscapes.class_landscape(sp, fc), fc),
        (qs.additive(sp, 0.3, base=1.0), 1.0 + 0.3 * np.arange(L + 1)),
        (qs.multiplicative(sp, 0.8, base=2.0), 2.0 * 0.8 ** np.arange(L + 1)),
    ]
    for model, f_classes in models:
        assert isinstance(model, ClassModel)
        rho, x = dense_class_model(L, k, mu, f_classes)
        ss = qs.steady_state(model, 1.0)
        assert lam(ss) == pytest.approx(rho, rel=1e-12)
        np.testing.assert_allclose(ss.population, x, rtol=1e-9, atol=1e-15)
        # at T = 0.5 the landscape is f^2
        rho2, x2 = dense_class_model(L, k, mu, np.asarray(f_classes) ** 2)
        ss2 = qs.steady_state(model, 0.5)
        assert ss2.log_growth == pytest.approx(math.log(rho2), rel=1e-12, abs=1e-13)
        np.testing.assert_allclose(ss2.population, x2, rtol=1e-9, atol=1e-15)


def test_class_matrix_vs_lumped_Q():
    from quasispecies.kernels.hamming import log_class_matrix

    for L, k, mu in [(5, 2, 0.1), (4, 3, 0.3), (3, 4, 0.9), (6, 2, 1.0)]:
        Q = dense_Q([mu] * L, k)
        d = hamming_to_master(L, k)
        # M[d, e] = sum_{h: d(h)=e} Q[g, h] for any g with d(g) = d
        reps = [int(np.flatnonzero(d == c)[0]) for c in range(L + 1)]
        M = np.stack([np.bincount(d, weights=Q[g], minlength=L + 1) for g in reps])
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(log_class_matrix(L, mu, k), np.log(M), atol=1e-12)
    # long sequences: the JAX kernel (beyond NUMPY_CLASS_MATRIX_MAX) matches the NumPy one
    from quasispecies.kernels import hamming

    lm = hamming.log_class_matrix(hamming.NUMPY_CLASS_MATRIX_MAX + 1, 0.003)
    ln = hamming._log_class_matrix_np(hamming.NUMPY_CLASS_MATRIX_MAX + 1, 0.003, 2)
    assert np.array_equal(np.isfinite(lm), np.isfinite(ln))
    np.testing.assert_allclose(lm[np.isfinite(lm)], ln[np.isfinite(ln)], atol=1e-10)
    assert np.abs(scipy.special.logsumexp(lm, axis=1)).max() < 1e-11


def test_class_tail_frequencies_relative_accuracy():
    # classes far from the master hold ~mu^d; the log-domain class model must get them to
    # relative accuracy, checked against a 50-digit power iteration (mpmath)
    mpmath = pytest.importorskip("mpmath")
    L, mu, sigma = 30, 0.002, 5.0
    ss = qs.single_peak(qs.SequenceSpace(L, mu), sigma).steady_state()
    with mpmath.workdps(50):
        mu_m = mpmath.mpf(mu)
        M = mpmath.matrix(L + 1, L + 1)
        for d in range(L + 1):
            for e in range(L + 1):
                tot = mpmath.mpf(0)
                for i in range(d + 1):
                    j = e - d + i
                    if 0 <= j <= L - d:
                        tot += (
                            mpmath.binomial(d, i)
                            * mu_m**i
                            * (1 - mu_m) ** (d - i)
                            * mpmath.binomial(L - d, j)
                            * mu_m**j
                            * (1 - mu_m) ** (L - d - j)
                        )
                M[d, e] = tot
        f = [mpmath.mpf(sigma)] + [mpmath.mpf(1)] * L
        x = mpmath.matrix([[mpmath.mpf(1) / (L + 1)] * (L + 1)])
        for _ in range(200):  # |lambda_2 / lambda_1| ~ 0.2 here: 0.2^200 = 1e-140
            x = mpmath.matrix([[f[d] * x[0, d] for d in range(L + 1)]]) * M
            x = x / sum(x[0, e] for e in range(L + 1))
        ref = np.array([float(x[0, e]) for e in range(L + 1)])
    assert ref[-1] < 1e-50  # the tail spans ~55 orders of magnitude
    np.testing.assert_allclose(ss.population, ref, rtol=1e-11)


# -------------------------------------------------------------- error_threshold
def test_error_threshold_curves():
    mus = np.array([0.0, 0.01, 0.02, 0.045, 0.2])
    c = qs.error_threshold([4, 10, 50], 10.0, mus)
    assert c.master_frequency.shape == (3, 5) and c.mean_fitness.shape == (3, 5)
    assert [cf.shape for cf in c.class_frequencies] == [(5, 5), (5, 11), (5, 51)]
    for i, L in enumerate([4, 10, 50]):
        for j, mu in enumerate(mus):
            ss = qs.single_peak(qs.SequenceSpace(L, mu), 10.0).steady_state()
            assert c.master_frequency[i, j] == pytest.approx(ss.population[0], rel=1e-12)
            # at T = 1 the mean fitness of the quasispecies is lambda
            assert c.mean_fitness[i, j] == pytest.approx(lam(ss), rel=1e-10)
            np.testing.assert_allclose(c.class_frequencies[i][j], ss.population, rtol=1e-12)
        np.testing.assert_allclose(c.threshold[i], 1 - 10 ** (-1 / L), rtol=1e-14)
        np.testing.assert_allclose(
            c.master_frequency_no_back[i], np.maximum(0, (10 * (1 - mus) ** L - 1) / 9), rtol=1e-12
        )
    assert c.master_frequency[2, 2] == pytest.approx(REF_L50[1]["x0"], abs=5e-6)
    # below the threshold the master class persists; far above it is ~ 2^-L
    assert c.master_frequency[2, 1] > 0.5 and c.master_frequency[2, 4] < 1e-10


def test_error_threshold_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        qs.error_threshold(10, 1.0, [0.01])
    with pytest.raises(ValueError, match="length"):
        qs.error_threshold(0, 10.0, [0.01])
    with pytest.raises(ValueError, match="length"):
        qs.error_threshold([10, 2.5], 10.0, [0.01])
    with pytest.raises(ValueError, match="mu"):
        qs.error_threshold(10, 10.0, [0.01, 1.5])
    with pytest.raises(ValueError, match="mu"):
        qs.error_threshold(10, 10.0, [])


# --------------------------------------------------------------- temperatures
@pytest.mark.parametrize("T", [1e-8, 0.0])
def test_low_temperature_classes(T):
    # single peak at T -> 0: g = indicator of the master, lambda_T / sigma^(1/T) -> (1-mu)^L
    L, mu, sigma = 50, 0.01, 10.0
    ss = qs.steady_state(qs.single_peak(qs.SequenceSpace(L, mu), sigma), T)
    assert np.isfinite(ss.population).all() and ss.population.sum() == pytest.approx(1.0)
    assert ss.scaled_log_growth == pytest.approx(
        math.log(sigma) + T * L * math.log1p(-mu), rel=1e-12
    )
    # T -> 0+: the population is the master's offspring distribution, Binomial(L, mu)
    binom = np.array([math.comb(L, d) * mu**d * (1 - mu) ** (L - d) for d in range(L + 1)])
    np.testing.assert_allclose(ss.population, binom, rtol=1e-9, atol=1e-300)
    if T == 0:
        assert ss.log_growth == math.inf
    else:
        assert ss.log_growth == pytest.approx(math.log(sigma) / T + L * math.log1p(-mu), rel=1e-14)


def test_temperature_sweep_dispatch():
    model = qs.single_peak(qs.SequenceSpace(20, 0.02), 10.0)
    Ts = np.array([2.0, 1.0, 0.5, 0.0])
    out = qs.steady_state(model, Ts)
    assert out.population.shape == (4, 21) and out.log_growth.shape == (4,)
    for i, T in enumerate(Ts):
        one = qs.steady_state(model, float(T))
        np.testing.assert_allclose(out.population[i], one.population, rtol=1e-14)
    # T = 0.5 is the peak sigma^2 at T = 1
    sq = qs.steady_state(qs.single_peak(qs.SequenceSpace(20, 0.02), 100.0), 1.0)
    assert out.log_growth[2] == pytest.approx(sq.log_growth, rel=1e-12)
    np.testing.assert_allclose(out.population[2], sq.population, rtol=1e-9)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("mu", [-0.1, 1.5, math.nan, [0.1, 0.2], [0.1, 0.2, -1e-3]])
def test_bad_mu(mu):
    with pytest.raises(ValueError, match="^mu"):
        qs.SequenceSpace(3, mu)


@pytest.mark.parametrize("length", [0, -2, 2.5, True])
def test_bad_length(length):
    with pytest.raises(ValueError, match="^length"):
        qs.SequenceSpace(length, 0.1)


@pytest.mark.parametrize("alphabet", [1, 0, 2.0])
def test_bad_alphabet(alphabet):
    with pytest.raises(ValueError, match="^alphabet"):
        qs.SequenceSpace(3, 0.1, alphabet=alphabet)


def test_bad_fitness():
    sp = qs.SequenceSpace(3, 0.1)
    for f, what in [
        (np.ones(7), "expected 8"),
        (np.ones(9), "expected 8"),
        (np.ones((2, 4)), "1-D"),
        ([1, 1, 1, 0, 1, 1, 1, 1], "positive"),
        ([1, 1, 1, -2, 1, 1, 1, 1], "positive"),
        ([1, 1, np.nan, 1, 1, 1, 1, 1], "finite"),
        ([1, 1, np.inf, 1, 1, 1, 1, 1], "finite"),
    ]:
        with pytest.raises(ValueError, match=f"^f: .*{what}"):
            qs.fitness_landscape(sp, f)
    for sigma in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="^sigma"):
            qs.single_peak(sp, sigma)
    with pytest.raises(ValueError, match="^space"):
        qs.single_peak("ACGT", 2.0)
    with pytest.raises(ValueError, match="^s"):
        qs.additive(sp, -0.5)  # least fit genotype would have f = 1 - 1.5 < 0
    with pytest.raises(ValueError, match="^w"):
        qs.multiplicative(sp, 0.0)
    with pytest.raises(ValueError, match="^K"):
        qs.nk_landscape(sp, 3)
    with pytest.raises(ValueError, match="^T"):
        qs.steady_state(qs.single_peak(sp, 2.0), -1.0)
    with pytest.raises(ValueError, match="^T"):
        qs.single_peak(qs.SequenceSpace(3, 1.0), 2.0).steady_state(0.0)


def test_refuses_space_that_does_not_fit():
    sp = qs.SequenceSpace(60, 0.01)
    for build in (
        lambda: qs.fitness_landscape(sp, np.ones(3)),
        lambda: qs.single_peak(sp, 10.0, lumped=False),
        lambda: qs.nk_landscape(sp, 2),
        lambda: qs.additive(sp, np.linspace(0.1, 0.2, 60)),
        lambda: qs.single_peak(qs.SequenceSpace(60, np.full(60, 0.01)), 10.0, lumped=False),
    ):
        with pytest.raises(
            ValueError,
            match=r"^length: .*2\^60 = 1\.153e\+18 genotypes needs "
            r"36\.9 EB \(4 float64 vectors",
        ):
            build()
    # the lumped single peak on the same space is fine
    assert qs.single_peak(sp, 10.0).steady_state().population.shape == (61,)
