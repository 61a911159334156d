"""Dynamics vs brute force: path enumeration, dense Perron vectors, LMDP references, solve_ivp."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import quasispecies as qs
from tests.reference import dense as brute

TEMPS = [1.0, 0.3, 0.05, 1e-8, 0.0]


def _case(seed: int):
    """Seeded small MDPs: deterministic / stochastic, with and without disallowed actions."""
    rng = np.random.default_rng(seed)
    S = int(rng.integers(2, 4))
    A = int(rng.integers(1, 3))
    stochastic = bool(seed % 2)
    density = 1.0 if seed % 3 == 0 else 0.6
    mdp = qs.random_mdp(
        S,
        A,
        seed=seed,
        stochastic=stochastic,
        density=density,
        per_transition_reward=stochastic and seed % 4 == 1,
    )
    x0 = rng.dirichlet(np.ones(S)) if seed % 5 else np.eye(S)[0]
    H = int(rng.integers(1, 4))
    return mdp, x0, H


# 240 seeded MDPs x 5 temperatures, each against explicit path enumeration.
@pytest.mark.parametrize("seed", range(240))
def test_scaled_log_population_matches_path_enumeration(seed):
    mdp, x0, H = _case(seed)
    P, R, pi0 = brute.dense_arrays(mdp)
    got = qs.scaled_log_population(mdp, np.array(TEMPS), H, x0)
    for i, T in enumerate(TEMPS):
        want = brute.scaled_log_population(P, R, pi0, x0, T, H)
        np.testing.assert_array_equal(np.isneginf(got[i]), np.isneginf(want))
        fin = np.isfinite(want)
        # T log n is O(|G|): absolute float64 tolerance on that scale.
        np.testing.assert_allclose(got[i][fin], want[fin], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(0, 240, 3))
def test_evolve_matches_enumerated_populations(seed):
    mdp, x0, H = _case(seed)
    P, R, pi0 = brute.dense_arrays(mdp)
    xs = qs.evolve(mdp, np.array(TEMPS), H, x0)
    assert xs.shape == (len(TEMPS), H + 1, mdp.num_states)
    for i, T in enumerate(TEMPS):
        np.testing.assert_allclose(xs[i, 0], x0, atol=1e-15)
        if T == 0:
            want = brute.population_limit_T0(P, R, pi0, x0, H)
        else:
            u = brute.scaled_log_population(P, R, pi0, x0, T, H)
            z = np.where(np.isfinite(u), u / T, -np.inf)
            want = np.exp(z - z.max())
            want /= want.sum()
        # x = softmax(u / T): float64 rounding of u (~1e-16 |u|) is amplified by 1/T, so at
        # T = 1e-8 both sides are only defined to ~1e-8 relative; elsewhere 1e-9.
        rtol = max(1e-9, 1e-14 * (1 + np.abs(R[np.isfinite(R)]).max() * H) / T) if T else 1e-9
        np.testing.assert_allclose(xs[i, -1], want, rtol=rtol, atol=1e-12)


def test_T_tiny_approaches_T_zero_limit():
    for seed in range(20):
        mdp, x0, H = _case(seed)
        x = qs.evolve(mdp, np.array([1e-8, 0.0]), H, x0)
        u = qs.scaled_log_population(mdp, np.array([1e-8, 0.0]), H, x0)
        np.testing.assert_allclose(u[0], u[1], atol=1e-7)  # |u^0 - u^T| <= T H log(A S)
        np.testing.assert_allclose(x[0, -1], x[1, -1], atol=1e-6)


def test_maslov_bound_holds():
    """u^0 + T log w* <= u^T <= u^0 (deterministic MDP, uniform pi0, x0 = delta)."""
    for seed in range(30):
        mdp = qs.random_mdp(5, 3, seed=seed)
        H = 6
        u = qs.scaled_log_population(mdp, np.array([2.0, 0.5, 0.1, 0.01, 0.0]), H, 0)
        for T, uT in zip([2.0, 0.5, 0.1, 0.01], u[:4], strict=True):
            fin = np.isfinite(u[-1])
            assert np.all(uT[fin] <= u[-1][fin] + 1e-12)
            assert np.all(u[-1][fin] - uT[fin] <= T * H * np.log(3) + 1e-12)


def test_rl_json_deterministic_path_integral():
    # ../shared/reference/rl.json, "deterministic_path_integral": 2 states, action a -> state a,
    # R = [[1, 0], [0.5, 2]], x0 = delta_0, H = 3; T log(sum over 8 paths exp(G/T)).
    R = np.array([[1.0, 0.0], [0.5, 2.0]])
    # The reference sums exp(G/T) with unit path weights; uniform pi0 weighs each path by
    # (1/2)^3, i.e. shifts T log n by -3 T log 2.
    mdp = qs.MDP.from_transitions(np.array([[0, 1], [0, 1]]), R)
    T = np.array([1.0, 0.1, 0.0])
    u = qs.scaled_log_population(mdp, T, 3, 0)
    total = qs.semiring.scaled_lse(u, T[:, None], axis=-1) + 3 * T * np.log(2)
    np.testing.assert_allclose(total, [4.827937, 4.000009, 4.0], atol=1e-6)


def test_extreme_temperatures_are_finite_and_normalised():
    mdp = qs.grid_world(5, 6, walls=[(2, 2), (2, 3)], goal=(4, 5))
    for T in (1e-8, 1e8):
        xs = qs.evolve(mdp, T, 500, 0)
        assert np.isfinite(xs).all()
        np.testing.assert_allclose(xs.sum(axis=1), 1.0, atol=1e-12)
        u = qs.scaled_log_population(mdp, T, 500, 0)
        assert not np.isnan(u).any() and not np.isposinf(u).any()


def test_jit_and_nojit_agree(jit_mode):
    mdp = qs.random_mdp(4, 3, seed=7, stochastic=True, density=0.7)
    x0 = np.full(4, 0.25)
    T = np.array([1.0, 0.1, 0.0])
    P, R, pi0 = brute.dense_arrays(mdp)
    got = qs.scaled_log_population(mdp, T, 3, x0)
    for i, t in enumerate(T):
        np.testing.assert_allclose(
            got[i], brute.scaled_log_population(P, R, pi0, x0, t, 3), atol=1e-10
        )


def test_scalar_and_sweep_agree():
    mdp = qs.random_mdp(6, 2, seed=11)
    T = np.array([2.0, 0.7, 0.0])
    sweep = qs.evolve(mdp, T, 7, 2)
    for i, t in enumerate(T):
        # vmap may reorder float reductions: equal to the last few ulp.
        np.testing.assert_allclose(qs.evolve(mdp, float(t), 7, 2), sweep[i], rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ steady state
@pytest.mark.parametrize("seed", range(40))
def test_steady_state_matches_dense_eig(seed):
    mdp = qs.random_mdp(6, 3, seed=seed, stochastic=bool(seed % 2))
    P, R, pi0 = brute.dense_arrays(mdp)
    for T in (2.0, 1.0, 0.3):
        rho, x = brute.perron_left(brute.replication_matrix(P, R, pi0, T))
        res = qs.steady_state(mdp, T)
        if not res.irreducible:
            continue  # random graph not strongly connected; covered by the reducible tests
        np.testing.assert_allclose(res.log_growth, np.log(rho), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.population, x, rtol=1e-8, atol=1e-12)
        assert res.residual < 1e-12


def test_steady_state_low_temperature_and_zero():
    """T log rho(W_T) -> max cycle mean; T = 1e-8 stays finite and on the critical cycle."""
    for seed in range(15):
        mdp = qs.random_mdp(7, 3, seed=100 + seed, stochastic=True, density=0.4)
        mu = qs.max_cycle_mean(mdp)
        assert np.isclose(mu, qs.maxplus.karp(mdp.max_plus_weights()), atol=1e-12)
        res = qs.steady_state(mdp, np.array([0.05, 1e-8, 0.0]))
        assert np.isfinite(res.scaled_log_growth).all()
        assert res.scaled_log_growth[2] == pytest.approx(mu, abs=1e-12)
        # mu + T log(min K) <= T log rho <= mu: rows of K sum to 1, so the balanced operator
        # has row sums <= 1; the best cycle alone gives at least its mean kernel weight.
        kmin = np.exp(mdp.log_kernel[np.isfinite(mdp.log_kernel)].min())
        for T, g in zip([0.05, 1e-8], res.scaled_log_growth[:2], strict=True):
            assert mu + T * np.log(kmin) - 1e-12 <= g <= mu + 1e-12
        # T = 0 is the T -> 0+ limit: it agrees with T = 1e-8.
        np.testing.assert_allclose(res.population[2], res.population[1], atol=1e-6)
        if res.irreducible[0]:
            P, R, pi0 = brute.dense_arrays(mdp)
            rho, x = brute.perron_left(brute.replication_matrix(P, R, pi0, 0.05))
            np.testing.assert_allclose(res.population[0], x, atol=1e-10)
            np.testing.assert_allclose(res.log_growth[0], np.log(rho), rtol=1e-10)


def test_periodic_critical_cycle_does_not_fool_steady_state():
    """A 3-cycle 0->1->2->0 with rewards (3, 0, 0): mean 1; one-step growth of the max is 3 or 0."""
    ns = np.array([[1], [2], [0]])
    mdp = qs.MDP.from_transitions(ns, np.array([[3.0], [0.0], [0.0]]))
    for T in (1.0, 0.1, 1e-8):
        res = qs.steady_state(mdp, T)
        assert res.scaled_log_growth == pytest.approx(1.0, abs=1e-12)
        # x W = rho x on a cycle: x(s+1) / x(s) = w(s) / rho.
        if T >= 0.1:
            rho = np.exp(res.log_growth)
            w = np.exp(np.array([3.0, 0.0, 0.0]) / T)
            np.testing.assert_allclose(
                res.population[[1, 2, 0]] * rho, res.population * w, rtol=1e-10
            )
    # From x0 on a reducible variant the iteration must converge, not oscillate.
    ns2 = np.array([[1], [2], [0], [0]])
    mdp2 = qs.MDP.from_transitions(ns2, np.array([[3.0], [0.0], [0.0], [5.0]]))
    res = qs.steady_state(mdp2, 1.0, x0=np.eye(4)[3])
    assert not res.irreducible and res.converged
    assert res.population[3] == 0.0
    assert res.scaled_log_growth == pytest.approx(1.0, abs=1e-12)


def test_reducible_non_closed_class_iterates_from_x0():
    # 0 <-> 1 (rewards 1) feeds into absorbing 2 (reward 0.5 self-loop): dominant class {0,1}
    # is not closed, so the left vector has mass on 2 too; it is the limit of x0 W^t.
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[1, 0, 0] = 1.0
    P[0, 1, 2] = P[1, 1, 2] = P[2, 0, 2] = P[2, 1, 2] = 1.0
    R = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5]])
    mdp = qs.MDP(P, R)
    res = qs.steady_state(mdp, 1.0, x0=np.array([1.0, 0.0, 0.0]))
    assert not res.irreducible and res.converged
    W = brute.replication_matrix(*brute.dense_arrays(mdp), 1.0)
    rho = np.max(np.abs(np.linalg.eigvals(W)))
    np.testing.assert_allclose(np.exp(res.log_growth), rho, rtol=1e-12)
    np.testing.assert_allclose(res.population @ W, rho * res.population, atol=1e-10)


def test_grid_world_steady_state_concentrates_on_goal():
    g = qs.grid_world(4, 5, walls=[(1, 1), (2, 1)], goal=(3, 4), goal_reward=1.0, step_cost=0.1)
    res = qs.steady_state(g, np.array([1.0, 0.05, 0.0]))
    goal = 3 * 5 + 4
    assert res.population[2, goal] == pytest.approx(1.0)
    assert res.population[1, goal] > 0.99
    assert res.scaled_log_growth[2] == pytest.approx(1.0)
    walls = [1 * 5 + 1, 2 * 5 + 1]
    assert np.all(res.population[:, walls] == 0.0)


# ------------------------------------------------------------ LMDP references
def test_lmdp_average_cost_reference():
    # ../shared/reference/lmdp.json, "average_cost": one action, P = passive dynamics,
    # R[s] = -q(s), T = 1: lambda z = diag(exp(-q)) P z and the left Perron vector.
    p = np.array([[0.5, 0.5, 0], [0.25, 0.5, 0.25], [0, 0.5, 0.5]])
    q = np.array([1.0, 0.0, 2.0])
    mdp = qs.MDP(p[:, None, :], -q[:, None])
    res = qs.steady_state(mdp, 1.0)
    np.testing.assert_allclose(np.exp(res.log_growth), 0.6324742854, rtol=1e-9)
    np.testing.assert_allclose(res.population, [0.278685, 0.5, 0.221315], atol=1e-6)


def test_lmdp_first_exit_reference():
    # ../shared/reference/lmdp.json, "first_exit": z(x) = exp(-q(x)) sum p(x'|x) z(x'),
    # absorbing state 2 with z = 1. Backward messages of the path sum: z = lim W^H 1 restricted.
    p = np.array([[0.5, 0.5, 0], [0.25, 0.25, 0.5], [0, 0, 1]])
    q = np.array([1.0, 0.5, 0.0])
    mdp = qs.MDP(p[:, None, :], -q[:, None])
    # n_H(absorbing) from x0 = delta_s is z(s) in the limit (the exit mass).
    z = []
    for s in range(3):
        u = qs.scaled_log_population(mdp, 1.0, 200, s)
        z.append(np.exp(u[2]))
    np.testing.assert_allclose(z, [0.083956, 0.372475, 1.0], atol=1e-6)
    np.testing.assert_allclose(-np.log(z), [2.477465, 0.987585, 0.0], atol=1e-5)


# ------------------------------------------------------------- continuous time
def test_evolve_continuous_matches_solve_ivp():
    for seed in range(5):
        mdp = qs.random_mdp(5, 2, seed=seed, stochastic=True, density=0.6)
        P, R, pi0 = brute.dense_arrays(mdp)
        G = brute.replication_matrix(P, R, pi0, 0.7)
        x0 = np.random.default_rng(seed).dirichlet(np.ones(5))
        times = np.array([0.0, 0.3, 1.0, 2.5])
        got = qs.evolve_continuous(mdp, 0.7, times, x0)

        def rhs(_, x, G=G):
            xg = x @ G
            return xg - xg.sum() * x

        sol = solve_ivp(
            rhs, (0, times[-1]), x0, t_eval=times, rtol=1e-12, atol=1e-14, method="DOP853"
        )
        np.testing.assert_allclose(got, sol.y.T, atol=1e-9)


def test_evolve_continuous_rejects_overflowing_temperature():
    mdp = qs.chain(4, goal_reward=1.0)
    with pytest.raises(ValueError, match="T"):
        qs.evolve_continuous(mdp, 1e-8, [1.0])
    with pytest.raises(ValueError, match="T"):
        qs.evolve_continuous(mdp, 0.0, [1.0])


def test_gradients_are_finite_with_forbidden_actions():
    import jax
    import jax.numpy as jnp

    mdp = qs.random_mdp(4, 3, seed=5, density=0.5)
    ns, lk, r = mdp.arrays()
    from quasispecies.dynamics.horizon import run_horizon as _run

    def value(rew, T):
        _, u = _run((ns, lk, rew), T, jnp.full(4, 0.25), 4, False, False)
        return jnp.max(u)

    for T in (1.0, 0.01):
        g = jax.grad(value)(r, T)
        assert np.isfinite(np.asarray(g)).all()
