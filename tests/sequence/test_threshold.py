"""Eigen's error threshold: the curves of ``qs.error_threshold`` against single steady states,
the closed-form thresholds, and the reference table at ``L = 50``."""

from __future__ import annotations

import math

import numpy as np
import pytest

import quasispecies as qs
from tests.reference.sequence import REF_L50, REF_L50_APPROX, REF_L50_THRESHOLD


def lam(ss) -> float:
    return math.exp(ss.log_growth)


def test_l50_thresholds():
    curves = qs.error_threshold(50, 10.0, [0.01])
    assert curves.threshold[0] == pytest.approx(REF_L50_THRESHOLD, abs=5e-8)
    assert curves.threshold_approx[0] == pytest.approx(REF_L50_APPROX, abs=5e-8)
    assert curves.threshold[0] == pytest.approx(1 - 10 ** (-1 / 50), rel=1e-14)
    assert curves.threshold_approx[0] == pytest.approx(math.log(10) / 50, rel=1e-14)


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
