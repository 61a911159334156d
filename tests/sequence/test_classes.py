"""The Hamming-class model: any class landscape vs dense brute force, the class matrix vs the
lumped ``np.kron`` ``Q``, tail frequencies vs 50-digit arithmetic, low temperatures, sweeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

import quasispecies as qs
from quasispecies.sequence import ClassModel
from tests.reference.sequence import (
    dense_class_perron,
    hamming_lumped_matrix,
    mp_single_peak_classes,
)


def lam(ss) -> float:
    return math.exp(ss.log_growth)


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
        rho, x = dense_class_perron(L, k, mu, f_classes)
        ss = qs.steady_state(model, 1.0)
        assert lam(ss) == pytest.approx(rho, rel=1e-12)
        np.testing.assert_allclose(ss.population, x, rtol=1e-9, atol=1e-15)
        # at T = 0.5 the landscape is f^2
        rho2, x2 = dense_class_perron(L, k, mu, np.asarray(f_classes) ** 2)
        ss2 = qs.steady_state(model, 0.5)
        assert ss2.log_growth == pytest.approx(math.log(rho2), rel=1e-12, abs=1e-13)
        np.testing.assert_allclose(ss2.population, x2, rtol=1e-9, atol=1e-15)


def test_class_matrix_vs_lumped_Q():
    from quasispecies.kernels.hamming import log_class_matrix

    for L, k, mu in [(5, 2, 0.1), (4, 3, 0.3), (3, 4, 0.9), (6, 2, 1.0)]:
        # M[d, e] = sum_{h: d(h)=e} Q[g, h] for any g with d(g) = d
        M = hamming_lumped_matrix(L, k, mu)
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
    pytest.importorskip("mpmath")
    L, mu, sigma = 30, 0.002, 5.0
    ss = qs.single_peak(qs.SequenceSpace(L, mu), sigma).steady_state()
    # |lambda_2 / lambda_1| ~ 0.2 here: 200 rounds leave 0.2^200 = 1e-140
    ref = mp_single_peak_classes(L, mu, sigma, steps=200, dps=50)
    assert ref[-1] < 1e-50  # the tail spans ~55 orders of magnitude
    np.testing.assert_allclose(ss.population, ref, rtol=1e-11)


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
