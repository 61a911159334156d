"""MDP validation, builders and networkx round trips (file I/O: test_io.py)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import quasispecies as qs


def _P(S=3, A=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(S), size=(S, A))


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"P": np.full((3, 2, 3), 0.5)}, "P: row"),
        ({"P": -_P()}, "P: negative"),
        ({"P": np.where(np.eye(3)[None, None, :, 0] > 0, np.nan, _P())}, "P: contains NaN"),
        ({"R": np.full((3, 2), np.nan)}, "R: NaN"),
        ({"R": np.full((3, 2), np.inf)}, r"R: \+inf"),
        ({"R": np.zeros((3, 3))}, "R: expected shape"),
        ({"P": np.ones((3, 2, 4)) / 4}, "P: expected shape"),
        ({"pi0": np.full((3, 2), 0.7)}, "pi0: row"),
        ({"pi0": np.full((3, 3), 1 / 3)}, "pi0: expected shape"),
        ({"pi0": np.array([[1.5, -0.5]] * 3)}, "pi0: negative"),
    ],
)
def test_dense_mdp_rejects_bad_input(kwargs, match):
    args = {"P": _P(), "R": np.zeros((3, 2)), "pi0": None} | kwargs
    with pytest.raises(ValueError, match=match):
        qs.MDP(args["P"], args["R"], args["pi0"])


def test_from_transitions_rejects_bad_input():
    with pytest.raises(ValueError, match="next_state: entry"):
        qs.MDP.from_transitions(np.array([[0, 3], [1, 1], [2, 0]]), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="next_state: entry"):
        qs.MDP.from_transitions(np.array([[0, -1], [1, 1], [2, 0]]), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="R: expected shape"):
        qs.MDP.from_transitions(np.zeros((3, 2), int), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="next_state: expected a 2-D"):
        qs.MDP.from_transitions(np.zeros(3, int), np.zeros(3))
    with pytest.raises(ValueError, match="pi0: positive probability"):
        qs.MDP.from_transitions(
            np.zeros((2, 2), int), np.array([[0.0, -np.inf]] * 2), np.full((2, 2), 0.5)
        )


def test_disallowed_actions_are_masked():
    """-inf reward or pi0 = 0 removes an action; default pi0 is uniform over the rest."""
    P = _P()
    P[0, 1] = 0.0  # action 1 in state 0 has no successor
    R = np.zeros((3, 2))
    R[2, 0] = -np.inf
    mdp = qs.MDP(P, R)
    np.testing.assert_array_equal(mdp.allowed, [[True, False], [True, True], [False, True]])
    np.testing.assert_allclose(mdp.pi0, [[1, 0], [0.5, 0.5], [0, 1]])


def test_runtime_argument_errors():
    mdp = qs.chain(4)
    with pytest.raises(ValueError, match="T: temperature must be >= 0"):
        qs.evolve(mdp, -0.1, 3)
    with pytest.raises(ValueError, match="T: temperature is NaN"):
        qs.evolve(mdp, np.nan, 3)
    with pytest.raises(ValueError, match="x0: must sum to 1"):
        qs.evolve(mdp, 1.0, 3, np.full(4, 0.3))
    with pytest.raises(ValueError, match="x0: expected length 4"):
        qs.evolve(mdp, 1.0, 3, np.full(3, 1 / 3))
    with pytest.raises(ValueError, match="x0: negative"):
        qs.evolve(mdp, 1.0, 3, np.array([1.5, -0.5, 0, 0]))
    with pytest.raises(ValueError, match="x0: start state 9"):
        qs.scaled_log_population(mdp, 1.0, 3, 9)
    with pytest.raises(ValueError, match="steps: must be >= 0"):
        qs.evolve(mdp, 1.0, -1)
    with pytest.raises(ValueError, match="mdp: expected a quasispecies.MDP"):
        qs.steady_state(np.eye(3), 1.0)


def test_extinction_is_an_error_not_nan():
    # State 1 has no allowed action: every lineage from state 0 dies at step 2.
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = 1.0
    mdp = qs.MDP(P, np.zeros((2, 1)))
    with pytest.raises(ValueError, match="no lineage survives"):
        qs.evolve(mdp, 1.0, 3, 0)
    u = qs.scaled_log_population(mdp, 1.0, 3, 0)
    assert np.isneginf(u).all()


# ------------------------------------------------------------------- builders
def test_chain_and_grid_shapes():
    c = qs.chain(5, goal_reward=2.0)
    assert c.shape == (5, 2) and c.deterministic
    assert qs.max_cycle_mean(c) == 2.0
    g = qs.grid_world(3, 4, walls=[(1, 1)], goal=(2, 3), step_cost=0.2, cell_rewards={(0, 3): 0.5})
    assert g.shape == (12, 5)
    assert not g.allowed[1 * 4 + 1].any()  # wall cell
    # moving right from (2, 2) reaches the goal
    assert g.next_state[2 * 4 + 2, 3, 0] == 2 * 4 + 3 and g.R[2 * 4 + 2, 3] == 1.0
    # moving up from (1, 3) reaches the bonus cell, down into the wall holds still
    assert g.R[1 * 4 + 3, 0] == 0.5
    assert g.next_state[0 * 4 + 1, 1, 0] == 0 * 4 + 1
    gs = qs.grid_world(3, 3, goal=(2, 2), slip=0.3)
    np.testing.assert_allclose(gs.P.sum(axis=2), 1.0)
    with pytest.raises(ValueError, match="walls"):
        qs.grid_world(3, 3, walls=[(5, 5)])
    with pytest.raises(ValueError, match="goal"):
        qs.grid_world(3, 3, walls=[(1, 1)], goal=(1, 1))


def test_random_mdp_is_seeded_and_valid():
    a = qs.random_mdp(6, 3, seed=4, stochastic=True, density=0.5)
    b = qs.random_mdp(6, 3, seed=4, stochastic=True, density=0.5)
    np.testing.assert_array_equal(a.P, b.P)
    assert a.allowed.any(axis=1).all()
    d = qs.random_mdp(50, 4, seed=1)
    assert d.deterministic and not d.dense


def test_networkx_round_trip():
    mdp = qs.random_mdp(5, 3, seed=2, stochastic=True, density=0.6, per_transition_reward=True)
    G = qs.to_networkx(mdp)
    back = qs.from_networkx(G)
    np.testing.assert_allclose(back.P, mdp.P)
    live = mdp.P > 0
    np.testing.assert_allclose(back.R[live], mdp.R[live])
    for T in (1.0, 0.0):
        np.testing.assert_allclose(qs.evolve(back, T, 4, 0), qs.evolve(mdp, T, 4, 0), atol=1e-13)


def test_from_networkx_defaults_and_errors():
    G = nx.DiGraph()
    G.add_edge("a", "b", reward=1.0)
    G.add_edge("b", "a")
    mdp = qs.from_networkx(G)
    assert mdp.labels == ["a", "b"] and qs.max_cycle_mean(mdp) == 0.5
    bad = nx.DiGraph()
    bad.add_edge(0, 1, action=-1)
    with pytest.raises(ValueError, match="graph: edge"):
        qs.from_networkx(bad)
    with pytest.raises(ValueError, match="graph: expected"):
        qs.from_networkx(nx.Graph())
