"""The gradient figures of the README's "Gradients" section (issue 15, point 3).

    .venv/bin/python -m quasispecies.experiments.gradients [OUT_DIR]   # default figures/

* ``gradient_flux.png`` -- ``d(T log rho) / dR`` on the demo grid world
  (:func:`quasispecies.experiments.demo.demo_grid`) at four temperatures, by
  ``jax.grad`` through :func:`quasispecies.steady_state` (implicit differentiation),
  summed over each state's moves: the stationary flux through the state, i.e. where
  selection pays attention. Hot: it spreads over the reachable cells; cooling, it
  leaves the large plateau for the single peak.
* ``reward_recovery.png`` -- :func:`quasispecies.fit_rewards` against planted rewards:
  the grid's cell rewards from its stationary population at ``T = 0.3``; state rewards
  of a random stochastic MDP; and on a random token tree the sequence-level tilt
  ``beta log(p_tuned / p_base)`` from the tuned leaf distribution (``beta = 0.5``).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.dynamics import steady_state
from quasispecies.experiments.demo import PEAK, PLATEAU, demo_grid
from quasispecies.model.mdp import MDP
from quasispecies.selection.fit import fit_rewards
from quasispecies.semiring.core import log_normalise

__all__ = ["FLUX_TEMPERATURES", "live_subgrid", "random_token_tree", "run_gradients", "state_flux"]

FLUX_TEMPERATURES = (1.0, 0.3, 0.15, 0.05)


def live_subgrid(grid: MDP):
    """``(sub_mdp, live)``: the grid without its walls (states with no allowed move), so
    that ``W_T`` is irreducible and its Perron vector differentiable."""
    live = np.asarray(grid.allowed.any(axis=1), dtype=bool)
    index = np.cumsum(live) - 1
    ns = grid.next_state[live, :, 0]
    if not live[ns].all():
        raise ValueError("grid: a move leads into a wall")
    sub = MDP.from_transitions(index[ns], grid.R[live], grid.pi0[live])
    return sub, live


def state_flux(mdp: MDP, T: float) -> np.ndarray:
    """``(S,)``: ``sum_a d(T log rho) / dR[s, a]`` (``jax.grad`` of ``scaled_log_growth``)."""
    ns = mdp.next_state[:, :, 0]

    def growth(R):
        return steady_state(MDP.from_transitions(ns, R, mdp.pi0), T).scaled_log_growth

    g = np.asarray(jax.grad(growth)(np.asarray(mdp.R, dtype=float)))
    return g.sum(axis=1)


def random_token_tree(seed: int, k: int = 3, depth: int = 3):
    """A token tree in the layout of :func:`quasispecies.bridge.token_tree` with random
    top-``k`` log-probs: ``(mdp, paths, leaves)``; ``paths[s]`` is state ``s``'s tokens."""
    rng = np.random.default_rng(seed)
    paths: list[tuple[int, ...]] = [()]
    for d in range(1, depth + 1):
        paths += list(itertools.product(range(k), repeat=d))
    index = {p: i for i, p in enumerate(paths)}
    S = len(paths)
    ns = np.zeros((S, k), dtype=int)
    R = np.full((S, k), -np.inf)
    for p, i in index.items():
        if len(p) == depth:
            ns[i], R[i, 0] = i, 0.0
            continue
        logp = np.asarray(log_normalise(jnp.asarray(rng.normal(size=k + 2))))
        for a in range(k):
            ns[i, a], R[i, a] = index[(*p, a)], logp[a]
    leaves = np.array([index[p] for p in paths if len(p) == depth])
    return MDP.from_transitions(ns, R), paths, leaves


def _path_sum(R, paths, leaf, index) -> float:
    p = paths[leaf]
    return float(sum(R[index[p[:d]], p[d]] for d in range(len(p))))


def _tree_panel(beta: float = 0.5, seed: int = 0):
    mdp, paths, leaves = random_token_tree(seed)
    index = {p: i for i, p in enumerate(paths)}
    rng = np.random.default_rng(seed + 1)
    G = rng.normal(size=leaves.size)
    logp_base = np.array([_path_sum(mdp.R, paths, s, index) for s in leaves])
    logp_tuned = np.asarray(log_normalise(jnp.asarray(logp_base + G / beta)))
    x = np.zeros(mdp.num_states)
    x[leaves] = np.exp(logp_tuned)
    fit = fit_rewards(mdp, x, beta, horizon=3, x0=0, rewards="transition", base_reward=beta * mdp.R)
    got = np.array([_path_sum(fit.rewards, paths, s, index) for s in leaves])
    return beta * (logp_tuned - logp_base), got, fit


def run_gradients(out_dir="figures") -> dict:
    """Compute and draw both figures into ``out_dir``; returns the numbers behind them."""
    from quasispecies.plot.gradients import flux_grid, recovered_vs_true

    out = Path(out_dir)
    grid = demo_grid()
    sub, live = live_subgrid(grid)
    h, w = grid.grid_shape or (1, grid.num_states)
    flux = np.zeros((len(FLUX_TEMPERATURES), grid.num_states))
    for k, T in enumerate(FLUX_TEMPERATURES):
        flux[k, live] = state_flux(sub, T)
    peak = PEAK[0] * w + PEAK[1]
    plateau = [r * w + c for r, c in PLATEAU]
    marks = {"peak": [PEAK], "plateau": PLATEAU}
    flux_grid((h, w), FLUX_TEMPERATURES, flux, out / "gradient_flux.png", walls=~live, marks=marks)

    # recovered vs true: the grid's arrival rewards r(s') (the demo is a state-reward MDP)
    ns = sub.next_state[:, :, 0]
    true_grid = np.zeros(sub.num_states)
    ok = np.isfinite(sub.R)
    true_grid[ns[ok]] = sub.R[ok]
    T_fit = 0.3
    grid_fit = fit_rewards(sub, steady_state(sub, T_fit).population, T_fit)
    rng = np.random.default_rng(0)
    S, A = 30, 3
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.3)
    P[np.arange(S), :, (np.arange(S) + 1) % S] += 0.05
    P /= P.sum(axis=2, keepdims=True)
    r = rng.normal(size=S)
    rand = MDP(P, np.broadcast_to(r[None, None, :], (S, A, S)))
    rand_fit = fit_rewards(rand, steady_state(rand, 0.5).population, 0.5)
    want_tree, got_tree, tree_fit = _tree_panel()
    panels = [
        ("demo grid, T = 0.3 (stationary)", true_grid, grid_fit.rewards, "true cell reward"),
        ("random MDP S = 30, T = 0.5", r, rand_fit.rewards, "true state reward"),
        ("token tree, beta = 0.5 (H = 3)", want_tree, got_tree, "beta log(p_tuned / p_base)"),
    ]
    recovered_vs_true(panels, out / "reward_recovery.png")

    def err(t, f):
        t, f = np.asarray(t), np.asarray(f)
        return float(np.max(np.abs((f - f.mean()) - (t - t.mean()))))

    return {
        "flux_temperatures": list(FLUX_TEMPERATURES),
        "flux_on_peak": flux[:, peak].tolist(),
        "flux_on_plateau": flux[:, plateau].sum(axis=1).tolist(),
        "recovery_max_error": {
            "grid": err(true_grid, grid_fit.rewards),
            "random_mdp": err(r, rand_fit.rewards),
            "token_tree": err(want_tree, got_tree),
        },
        "iterations": {
            "grid": grid_fit.iterations,
            "random_mdp": rand_fit.iterations,
            "token_tree": tree_fit.iterations,
        },
        "figures": [str(out / "gradient_flux.png"), str(out / "reward_recovery.png")],
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run_gradients(sys.argv[1] if len(sys.argv) > 1 else "figures"), indent=1))
