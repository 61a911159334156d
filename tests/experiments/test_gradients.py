"""The gradient figures: the per-state flux against the dense closed form, the plots' files.

Reference: ``d(T log rho) / dR[s, a] = l_s W[s, a] r_s' / (rho l . r)`` with ``l``, ``r``
from a dense eigensolve (NumPy) of the demo grid's ``W_T``.
"""

from __future__ import annotations

import numpy as np
import pytest

from quasispecies.experiments.demo import demo_grid
from quasispecies.experiments.gradients import live_subgrid, random_token_tree, state_flux
from quasispecies.plot.gradients import flux_grid, recovered_vs_true
from tests.reference import dense as brute


@pytest.mark.parametrize("T", [1.0, 0.2])
def test_state_flux_is_the_dense_closed_form(T):
    sub, live = live_subgrid(demo_grid())
    assert live.sum() == sub.num_states < demo_grid().num_states
    P, R, pi0 = brute.dense_arrays(sub)
    W = brute.replication_matrix(P, R, pi0, T)
    rho, left = brute.perron_left(W)
    _, right = brute.perron_left(W.T)
    edge = left[:, None] * W * right[None, :] / (rho * left @ right)
    got = state_flux(sub, T)
    np.testing.assert_allclose(got, edge.sum(axis=1), atol=1e-9)
    assert abs(got.sum() - 1.0) < 1e-9


def test_token_tree_layout():
    mdp, paths, leaves = random_token_tree(0, k=2, depth=2)
    assert mdp.num_states == 1 + 2 + 4 and leaves.tolist() == [3, 4, 5, 6]
    assert np.all(mdp.next_state[leaves, 0, 0] == leaves)  # leaves loop, reward 0
    assert np.all(mdp.R[leaves, 0] == 0.0) and np.all(np.isneginf(mdp.R[leaves, 1]))
    assert np.all(np.exp(mdp.R[0]).sum() < 1.0)  # top-k of k + 2 tokens
    assert paths[leaves[-1]] == (1, 1)


def test_plots_write_files(tmp_path):
    flux = np.random.default_rng(0).dirichlet(np.ones(6), size=2)
    walls = np.zeros(6, bool)
    walls[2] = True
    p = flux_grid((2, 3), [1.0, 0.1], flux, tmp_path / "f.png", walls=walls, marks={"a": [(0, 0)]})
    assert p.stat().st_size > 1000
    q = recovered_vs_true([("x", [1, 2, 3], [1.1, 2, 3.1], "true")], tmp_path / "r.png")
    assert q.stat().st_size > 1000
    with pytest.raises(ValueError, match="flux"):
        flux_grid((2, 3), [1.0], flux, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="panels"):
        recovered_vs_true([("x", [1, 2], [1], "true")], tmp_path / "bad2.png")
    assert not (tmp_path / "bad.png").exists() and not (tmp_path / "bad2.png").exists()
