"""The algorithm choices are visible and overridable, and every forced choice agrees with auto.

``evolve`` / ``scaled_log_population`` take ``layout=`` (the storage of ``W_T``: pull,
segment or dense) and ``steady_state`` takes ``method=`` (dense, power or pull); the
defaults are the size thresholds ``PULL_MIN_STATES`` / ``DENSE_STEADY_LIMIT``.
"""

from __future__ import annotations

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.dynamics import horizon, resolve_layout, resolve_method, steady

TEMPS = np.array([1.0, 0.1, 0.0])
STEPS = 6


def _mdps():
    rng = np.random.default_rng(7)
    S, A = 24, 3
    ns = rng.integers(0, S, (S, A))
    ns[:, 0] = (np.arange(S) + 1) % S  # a ring: strongly connected
    det = qs.MDP.from_transitions(ns, rng.standard_normal((S, A)))
    succ = rng.integers(0, S, (S, A, 2))
    succ[:, 0, 0] = (np.arange(S) + 1) % S
    sto = qs.MDP.from_successors(succ, rng.dirichlet(np.ones(2), (S, A)), rng.random((S, A)))
    dense = qs.random_mdp(8, 2, seed=3, stochastic=True)
    return {"det": det, "sto": sto, "dense": dense}


MDPS = _mdps()


def _close_u(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
    fin = np.isfinite(a)
    np.testing.assert_allclose(a[fin], b[fin], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MDPS))
def test_every_layout_agrees_with_auto(name):
    mdp = MDPS[name]
    x0 = np.full(mdp.num_states, 1 / mdp.num_states)
    u_auto = qs.scaled_log_population(mdp, TEMPS, STEPS, x0)
    x_auto = qs.evolve(mdp, TEMPS, STEPS, x0)
    layouts = ["pull", "segment"] + (["dense"] if mdp.dense else [])
    for layout in layouts:
        _close_u(qs.scaled_log_population(mdp, TEMPS, STEPS, x0, layout=layout), u_auto)
        xs = qs.evolve(mdp, TEMPS, STEPS, x0, layout=layout)
        np.testing.assert_allclose(xs, x_auto, rtol=0, atol=1e-12)


def test_layout_choice_is_reported_and_checked(monkeypatch):
    det, dense = MDPS["det"], MDPS["dense"]
    assert resolve_layout(dense) == "dense"
    assert resolve_layout(det) == "segment"
    monkeypatch.setattr(horizon, "PULL_MIN_STATES", det.num_states)
    assert resolve_layout(det) == "pull"
    assert resolve_layout(det, "segment") == "segment"
    with pytest.raises(ValueError, match="layout"):
        qs.evolve(det, 1.0, 2, layout="dense")  # successor lists have no dense form
    with pytest.raises(ValueError, match="layout"):
        qs.scaled_log_population(det, 1.0, 2, layout="scatter")


@pytest.mark.parametrize("name", sorted(MDPS))
def test_every_steady_method_agrees_with_auto(name):
    mdp = MDPS[name]
    for T in (1.0, 0.3):
        auto = qs.steady_state(mdp, T)
        assert auto.irreducible and auto.method == "balanced dense eig"
        for method, word in (("dense", "dense eig"), ("power", "power"), ("pull", "pull form")):
            res = qs.steady_state(mdp, T, method=method)
            assert word in res.method, (method, res.method)
            assert res.converged
            np.testing.assert_allclose(res.population, auto.population, rtol=0, atol=1e-10)
            assert abs(res.scaled_log_growth - auto.scaled_log_growth) <= 1e-10
            assert abs(res.log_growth - auto.log_growth) <= 1e-10 / T


def test_steady_method_choice_is_reported_and_checked(monkeypatch):
    det, dense = MDPS["det"], MDPS["dense"]
    assert resolve_method(det) == "dense"
    monkeypatch.setattr(steady, "DENSE_STEADY_LIMIT", det.num_states - 1)
    assert resolve_method(det) == "pull"
    monkeypatch.setattr(steady, "DENSE_STEADY_LIMIT", dense.num_states - 1)
    assert resolve_method(dense) == "power"
    with pytest.raises(ValueError, match="method"):
        qs.steady_state(det, 1.0, method="arpack")
