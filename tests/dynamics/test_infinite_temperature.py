"""T = inf, the neutral-selection limit: exp(r/T) = 1, W = K (pure mutation).

References are dense NumPy, independent of the package kernels: x_{t+1} = x_t K
normalised, and the Perron vector of K from numpy.linalg.eig.
"""

from __future__ import annotations

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.model.validate import check_temperature


def _random_mdp(seed: int, S: int = 6, A: int = 3, forbid: bool = False):
    rng = np.random.default_rng(seed)
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.6)
    P[:, :, 0] += 0.05  # every row has mass: K irreducible through state 0 ...
    P[0, :, :] += 0.05  # ... and from it
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(S, A, S))
    if forbid:
        R[1, 0, :] = -np.inf  # one action of state 1 is not allowed (K row renormalised by pi0)
    pi0 = rng.random((S, A)) + 0.1
    pi0 /= pi0.sum(axis=1, keepdims=True)
    if forbid:
        pi0[1, 0] = 0.0
        pi0[1] /= pi0[1].sum()
    return qs.MDP(P, R, pi0), P, R, pi0


def _dense_K(P, R, pi0):
    K = np.einsum("sa,sat->sat", pi0, P)
    K = np.where(np.isneginf(R), 0.0, K)
    return K.sum(axis=1)


def _perron_left(K):
    vals, vecs = np.linalg.eig(K.T)
    i = int(np.argmax(vals.real))
    v = np.abs(vecs[:, i].real)
    return v / v.sum(), float(vals[i].real)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("forbid", [False, True])
def test_evolve_at_inf_is_pure_mutation(seed, forbid):
    mdp, P, R, pi0 = _random_mdp(seed, forbid=forbid)
    K = _dense_K(P, R, pi0)
    x0 = np.full(6, 1 / 6)
    ref = [x0]
    for _ in range(8):
        x = ref[-1] @ K
        ref.append(x / x.sum())
    np.testing.assert_allclose(qs.evolve(mdp, np.inf, 8, x0), np.array(ref), atol=1e-13)
    # inside a temperature array, mixed with finite T (each row computed on its own)
    xs = qs.evolve(mdp, np.array([0.5, np.inf, 0.0]), 8, x0)
    np.testing.assert_allclose(xs[1], np.array(ref), atol=1e-13)
    np.testing.assert_allclose(xs[0], qs.evolve(mdp, 0.5, 8, x0), atol=1e-13)
    np.testing.assert_allclose(xs[2], qs.evolve(mdp, 0.0, 8, x0), atol=1e-13)
    # the T -> inf limit is continuous
    np.testing.assert_allclose(qs.evolve(mdp, 1e12, 8, x0), np.array(ref), atol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_steady_state_at_inf_is_perron_vector_of_K(seed):
    mdp, P, R, pi0 = _random_mdp(seed)
    K = _dense_K(P, R, pi0)
    x_ref, rho = _perron_left(K)
    ss = qs.steady_state(mdp, np.inf)
    assert ss.temperature == np.inf
    np.testing.assert_allclose(ss.population, x_ref, atol=1e-12)
    assert ss.log_growth == pytest.approx(np.log(rho), abs=1e-12)  # stochastic K: rho = 1
    # T log rho(W_T) -> sum_s x_s sum_{a,s'} K R (first-order perturbation of rho = 1)
    rbar = np.einsum("sa,sat,sat->s", pi0, P, R)
    assert ss.scaled_log_growth == pytest.approx(float(x_ref @ rbar), rel=1e-10)
    big = qs.steady_state(mdp, 1e12)
    np.testing.assert_allclose(big.population, ss.population, atol=1e-9)
    assert big.log_growth == pytest.approx(ss.log_growth, abs=1e-9)
    assert qs.steady_state(mdp, 1e6).scaled_log_growth == pytest.approx(
        ss.scaled_log_growth, rel=1e-4
    )
    sweep = qs.steady_state(mdp, np.array([1.0, np.inf]))
    np.testing.assert_array_equal(sweep.temperature, [1.0, np.inf])
    np.testing.assert_allclose(sweep.population[1], x_ref, atol=1e-12)
    np.testing.assert_allclose(sweep.population[0], qs.steady_state(mdp, 1.0).population)


def test_steady_state_at_inf_substochastic_K():
    # a forbidden transition with no alternative: K loses mass, rho(K) < 1, T log rho -> -inf
    P = np.array([[[0.0, 1.0]], [[0.5, 0.5]]])
    R = np.array([[[0.0, 1.0]], [[2.0, -np.inf]]])
    mdp = qs.MDP(P, R)
    K = np.array([[0.0, 1.0], [0.5, 0.0]])
    x_ref, rho = _perron_left(K)
    ss = qs.steady_state(mdp, np.inf)
    np.testing.assert_allclose(ss.population, x_ref, atol=1e-12)
    assert ss.log_growth == pytest.approx(np.log(rho), abs=1e-12)
    assert ss.scaled_log_growth == -np.inf
    assert qs.steady_state(mdp, 1e12).log_growth == pytest.approx(np.log(rho), abs=1e-9)


def test_sparse_mdp_at_inf():
    ns = np.array([[1, 2], [2, 0], [0, 1]])
    R = np.array([[1.0, -1.0], [0.5, 3.0], [-2.0, 0.0]])
    mdp = qs.MDP.from_transitions(ns, R)
    K = np.zeros((3, 3))
    for s in range(3):
        for a in range(2):
            K[s, ns[s, a]] += 0.5
    x_ref, _ = _perron_left(K)
    np.testing.assert_allclose(qs.steady_state(mdp, np.inf).population, x_ref, atol=1e-12)
    x = qs.evolve(mdp, np.inf, 3, 0)
    np.testing.assert_allclose(x[-1], np.eye(3)[0] @ np.linalg.matrix_power(K, 3), atol=1e-14)


def test_scaled_log_population_refuses_inf():
    mdp, *_ = _random_mdp(0)
    with pytest.raises(ValueError, match=r"^T: T = inf has no finite u = T log n"):
        qs.scaled_log_population(mdp, np.inf, 3, 0)
    with pytest.raises(ValueError, match=r"^T: T = inf"):
        qs.scaled_log_population(mdp, np.array([1.0, np.inf]), 3, 0)


def test_check_temperature_allow_inf_flag():
    with pytest.raises(ValueError, match="T: temperature must be finite, got inf"):
        check_temperature(np.inf)
    with pytest.raises(ValueError, match="temperature must be finite, got -inf"):
        check_temperature(-np.inf, allow_inf=True)
    arr, sweep = check_temperature([1.0, np.inf], allow_inf=True)
    assert sweep and arr[1] == np.inf
    with pytest.raises(ValueError, match="NaN"):
        check_temperature(np.nan, allow_inf=True)


def test_sequence_space_refuses_inf():
    model = qs.single_peak(qs.SequenceSpace(4, 0.01), 2.0)
    with pytest.raises(ValueError, match="^T: T = inf .* MDPs only"):
        qs.steady_state(model, np.inf)
    with pytest.raises(ValueError, match="^T: T = inf .* MDPs only"):
        qs.evolve(model, np.inf, 2)
