"""qs.rl.limit: the limit report (growth, values, agreement, entropy, gap) and the
argument checks of the rl solvers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import quasispecies as qs
from quasispecies import rl


def test_limit_report_deterministic():
    mdp = qs.random_mdp(6, 3, seed=2)
    Ts = np.array([1.0, 0.3, 0.1, 0.03, 1e-8, 0.0])
    rep = rl.limit_report(mdp, Ts, horizon=5, start=0)
    mu = qs.max_cycle_mean(mdp)
    assert rep.max_cycle_mean == pytest.approx(mu, abs=1e-12)
    tol = 1e-10
    assert (rep.growth_lower_bound - tol <= rep.scaled_log_growth).all()
    assert (rep.scaled_log_growth <= mu + tol).all()
    assert rep.scaled_log_growth[-1] == pytest.approx(mu, abs=1e-12)
    assert (rep.value_lower_bound - tol <= rep.scaled_log_total).all()
    assert (rep.scaled_log_total <= rep.optimistic_value + tol).all()
    assert (rep.simple_lower_bound <= rep.value_lower_bound + tol).all()
    assert rep.expected_value == pytest.approx(rep.optimistic_value, abs=1e-12)
    np.testing.assert_allclose(rep.gap, 0.0, atol=1e-12)
    assert rep.policy_agreement[-1] == 1.0 and rep.policy_agreement[-2] == 1.0
    assert np.all(np.diff(rep.entropy) <= 1e-9)  # entropy falls as T falls
    doc = json.loads(json.dumps(rep.to_dict()))
    assert doc["cycle"]["mean"] == pytest.approx(mu)
    assert "max cycle mean" in rep.table()


def test_limit_report_forest_shows_the_gap():
    rep = rl.limit_report(rl.forest(), [1.0, 0.1, 0.01, 0.0], horizon=6)
    assert rep.max_cycle_mean == 4.0 and rep.cycle.states.tolist() == [2]
    assert rep.optimistic_value - rep.expected_value > 2.0
    assert rep.scaled_log_total[-1] == pytest.approx(rep.optimistic_value, abs=1e-12)
    assert abs(rep.scaled_log_total[-2] - rep.optimistic_value) < abs(
        rep.scaled_log_total[-2] - rep.expected_value
    )
    assert not rep.deterministic and (rep.gap > 0).any()


def test_bad_input_names_the_argument():
    mdp = rl.forest()
    with pytest.raises(ValueError, match="^horizon"):
        rl.finite_horizon_values(mdp, -1)
    with pytest.raises(ValueError, match="^horizon"):
        rl.soft_value_iteration(mdp, 1.0, horizon=-2)
    with pytest.raises(ValueError, match="^discount"):
        rl.policy_iteration(mdp, 1.0)
    with pytest.raises(ValueError, match="^discount"):
        rl.soft_value_iteration(mdp, 1.0)  # infinite horizon needs discount < 1
    with pytest.raises(ValueError, match="^discount"):
        rl.finite_horizon_values(mdp, 3, discount=1.5)
    with pytest.raises(ValueError, match="^form"):
        rl.soft_value_iteration(mdp, 1.0, horizon=2, form="bogus")
    with pytest.raises(ValueError, match="^actions"):
        rl.soft_value_iteration(mdp, 1.0, horizon=2, actions="bogus")
    with pytest.raises(ValueError, match="^T"):
        rl.soft_value_iteration(mdp, -1.0, horizon=2)
    with pytest.raises(ValueError, match="^start"):
        rl.limit_report(mdp, [1.0], start=7)
    with pytest.raises(ValueError, match="^temperatures"):
        rl.limit_report(mdp, [-1.0])
    with pytest.raises(ValueError, match="^mdp"):
        rl.finite_horizon_values(np.zeros((2, 2)), 2)
