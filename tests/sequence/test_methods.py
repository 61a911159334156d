"""Solver choices are explicit: forcing each one gives the same answer, and the memory budget
(``SequenceSpace(memory_limit=...)``, default: the OS probe) is what decides and refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.sequence import genotype
from tests.reference.sequence import dense_perron, dense_Q


def random_full(L=8, seed=0, **space_kw):
    rng = np.random.default_rng(seed)
    sp = qs.SequenceSpace(L, rng.uniform(0.01, 0.2, L), **space_kw)
    f = rng.uniform(0.5, 3.0, 2**L)
    return qs.fitness_landscape(sp, f), f


@pytest.mark.parametrize("T", [1.0, 0.3])
def test_forced_ritz_methods_agree(T):
    model, f = random_full(seed=int(10 * T))
    rho, x = dense_perron(f[:, None] ** (1 / T) * dense_Q(model.space.mu, 2))
    for ritz in ("auto", "clenshaw", "replay"):
        for stored in (False, True):
            ss = model.steady_state(T, ritz=ritz, store_sqrt_g=stored)
            assert f"ritz={ritz!r}" in ss.method and ss.converged
            assert ss.log_growth == pytest.approx(math.log(rho), rel=1e-12)
            np.testing.assert_allclose(ss.population, x, atol=1e-12)
    with pytest.raises(ValueError, match="^ritz"):
        model.steady_state(T, ritz="lanczos")


def test_auto_fallback_follows_the_memory_budget(monkeypatch):
    # make every Clenshaw vector "miss" the residual bar, so "auto" wants the replay fallback
    monkeypatch.setattr(genotype, "RESIDUAL_OK", 0.0)
    model, _ = random_full(seed=3)
    roomy = model.steady_state(1.0)
    assert "replayed" in roomy.method and roomy.method.startswith("Lanczos")
    assert "Ritz vector by replay" in roomy.method
    # a budget of exactly the four vectors the solve needs leaves no room for a fifth
    tight_space = qs.SequenceSpace(
        8, model.space.mu, memory_limit=model.space.full_space_bytes(genotype.FULL_SPACE_VECTORS)
    )
    tight = genotype.GenotypeModel(tight_space, model.log_fitness)
    ss = tight.steady_state(1.0)
    assert "replay skipped" in ss.method and "memory_limit=" in ss.method
    assert "Ritz vector by clenshaw" in ss.method and not ss.converged
    assert ss.log_growth == pytest.approx(roomy.log_growth, rel=1e-13)
    np.testing.assert_allclose(ss.population, roomy.population, atol=1e-12)
    with pytest.raises(ValueError, match=r"^length: ritz='replay'.*memory_limit="):
        tight.steady_state(1.0, ritz="replay")


def test_memory_limit_refuses_and_names_itself():
    sp = qs.SequenceSpace(10, 0.01, memory_limit=1000)
    assert sp.memory_budget() == (1000, "memory_limit=1000")
    for build in (
        lambda: qs.fitness_landscape(sp, np.ones(2**10)),
        lambda: qs.single_peak(sp, 10.0, lumped=False),
        lambda: qs.nk_landscape(sp, 2),
    ):
        with pytest.raises(ValueError, match=r"^length: .*1 KB budget \(memory_limit=1000\)"):
            build()
    assert qs.single_peak(sp, 10.0).steady_state().population.shape == (11,)  # classes fit
    roomy = qs.SequenceSpace(4, 0.01, memory_limit=4 * 8 * 16)
    model = qs.fitness_landscape(roomy, np.arange(1.0, 17.0))
    with pytest.raises(ValueError, match=r"^steps: .*memory_limit=512"):
        model.evolve(1.0, 4)  # 5 populations of 16 genotypes: 640 B
    assert model.evolve(1.0, 3).shape == (4, 16)
    for bad in (-1, 2.5, "1GB"):
        with pytest.raises(ValueError, match="^memory_limit"):
            qs.SequenceSpace(3, 0.1, memory_limit=bad)


def test_default_budget_is_the_probe():
    have, source = qs.SequenceSpace(3, 0.1).memory_budget()
    assert have > 0 and "/proc/meminfo" in source and "memory_limit" in source
    assert qs.sequence.available_bytes() > 0


@pytest.mark.parametrize(
    "build",
    [
        lambda sp, lumped: qs.single_peak(sp, 5.0, lumped=lumped),
        lambda sp, lumped: qs.additive(sp, 0.2, lumped=lumped),
        lambda sp, lumped: qs.multiplicative(sp, 0.7, base=2.0, lumped=lumped),
    ],
)
def test_forced_lumping_agrees(build):
    sp = qs.SequenceSpace(7, 0.06)
    auto, classes, full = build(sp, None), build(sp, True), build(sp, False)
    assert auto.lumped and classes.lumped and not full.lumped
    for T in (1.0, 0.5):
        a, c, g = (m.steady_state(T) for m in (auto, classes, full))
        assert a.method == c.method and "Hamming-class model (8 classes" in c.method
        assert g.method.startswith("Lanczos")
        assert c.log_growth == pytest.approx(g.log_growth, rel=1e-12)
        np.testing.assert_allclose(full.class_frequencies(g.population), c.population, atol=1e-12)
    with pytest.raises(ValueError, match="^lumped"):
        build(qs.SequenceSpace(7, np.linspace(0.01, 0.1, 7)), True)
