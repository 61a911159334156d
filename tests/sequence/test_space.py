"""``SequenceSpace`` and the builders: input validation and the memory budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

import quasispecies as qs


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
