"""The linear pull kernel's guard when each step's output (not its input) is rescaled."""

from __future__ import annotations

import math

import numpy as np

import quasispecies as qs
from quasispecies.kernels import pull


def test_guard_covers_products_formed_before_the_rescaling():
    # two self-loops: state 0 with weight 2^-600, state 1 with weight 1 and 1e-100 of the
    # start population. After one step r = (2^-601, 5e-101): its maximum is r(0), so the
    # scaled n = (0.5, ~2^-334) passes a guard on n, but the next step's unscaled product
    # r(0) w = 2^-1201 underflows. The guard must send this temperature to the log
    # kernel, and u stays exact (a guard on the scaled n alone lets it through).
    T, steps = 1.0, 5
    R = np.array([[-600 * math.log(2.0)], [0.0]])
    mdp = qs.MDP.from_transitions(np.array([[0], [1]]), R)
    x0 = np.array([1.0 - 1e-100, 1e-100])
    res = pull.horizon(mdp, [T], steps, x0)
    ref = np.log(x0) * T + steps * R[:, 0]  # n_t(s) = x0(s) w_s^t, K = 1
    assert list(res.kernel) == ["log"]
    np.testing.assert_allclose(res.u[0], ref, rtol=1e-12, atol=0)


def test_linear_kernel_agrees_with_the_log_kernel_on_a_random_operator():
    rng = np.random.default_rng(4)
    S = 300
    mdp = qs.MDP.from_transitions(rng.integers(0, S, (S, 3)), rng.random((S, 3)))
    x0 = rng.dirichlet(np.ones(S))
    Ts = np.array([0.05, 0.3, 2.0])
    lin = pull.horizon(mdp, Ts, 40, x0)
    log = pull.horizon(mdp, Ts, 40, x0, kernel="log")
    assert set(lin.kernel) == {"linear"}
    np.testing.assert_allclose(lin.u, log.u, rtol=0, atol=1e-10)
    np.testing.assert_allclose(lin.x, log.x, rtol=0, atol=1e-12)
