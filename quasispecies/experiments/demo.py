"""The built-in demonstration: survival of the flattest on a grid world.

A 7 x 9 grid holds a sharp **peak** (one cell, reward 1 for staying on it; every move
off it costs) and a flat **plateau** (a 3 x 3 block where every move earns 0.75). Each
cell's replicators copy themselves along the moves of a uniform exploration policy,
with fitness ``exp(r / T)``:

* at high ``T`` selection is weak and the population spreads over the grid;
* at intermediate ``T`` it sits on the plateau: lower reward, but most "mutations"
  (moves) keep the reward, so it grows faster — survival of the flattest;
* as ``T -> 0`` selection becomes reinforcement learning: the population moves to the
  optimal cycle (staying on the peak), ``T log rho -> 1``, the max-plus eigenvalue.

The crossover is where the two blocks' Perron roots cross (``T* ~ 0.19`` here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quasispecies.dynamics.sweep import temperature_sweep
from quasispecies.kernels.maxplus import critical_nodes, max_plus_eigenvalue
from quasispecies.model.builders import grid_world

__all__ = ["TABLE_TEMPERATURES", "demo_grid", "run_demo"]

HEIGHT, WIDTH = 7, 9
PEAK = (1, 7)
PLATEAU = [(r, c) for r in (3, 4, 5) for c in (1, 2, 3)]
WALLS = [(0, 5), (1, 5), (2, 5), (4, 5), (5, 5), (6, 5)]
TABLE_TEMPERATURES = (2.0, 1.0, 0.5, 0.3, 0.2, 0.15, 0.1, 0.05, 0.01, 1e-8, 0.0)


def demo_grid():
    """The demonstration grid world (see the module docstring)."""
    return grid_world(
        HEIGHT,
        WIDTH,
        walls=WALLS,
        goal=PEAK,
        goal_reward=1.0,
        step_cost=0.1,
        cell_rewards=dict.fromkeys(PLATEAU, 0.75),
    )


def _masks(mdp):
    S = mdp.num_states
    peak = np.zeros(S, bool)
    peak[PEAK[0] * WIDTH + PEAK[1]] = True
    plateau = np.zeros(S, bool)
    for r, c in PLATEAU:
        plateau[r * WIDTH + c] = True
    walls = ~mdp.allowed.any(axis=1)
    return peak, plateau, walls


def run_demo(out_dir="figures", *, num_temperatures: int = 121) -> dict:
    """Run the demo: the table at :data:`TABLE_TEMPERATURES` and two figures in ``out_dir``."""
    from quasispecies.plot import temperature as plot

    mdp = demo_grid()
    peak, plateau, walls = _masks(mdp)
    A0 = mdp.max_plus_weights()
    mu = max_plus_eigenvalue(A0)
    crit = critical_nodes(A0, mu)
    table = temperature_sweep(mdp, np.array(TABLE_TEMPERATURES), progress=False)
    rows = []
    for i, T in enumerate(table["temperatures"]):
        pop = table["population"][i]
        rows.append(
            {
                "T": float(T),
                "T_log_rho": float(table["scaled_log_growth"][i]),
                "max_plus_value": float(mu),
                "mass_on_best_cycle": float(pop[crit].sum()),
                "mass_on_plateau": float(pop[plateau].sum()),
            }
        )
    grid_T = np.logspace(-2, 1, num_temperatures)
    sweep = temperature_sweep(mdp, grid_T, progress=False)
    pops = sweep["population"]
    # crossover: where the plateau and the peak carry equal mass
    diff = pops[:, plateau].sum(1) - pops[:, peak].sum(1)
    idx = np.flatnonzero(np.diff(np.sign(diff)) != 0)
    crossover = float(np.sqrt(grid_T[idx[0]] * grid_T[idx[0] + 1])) if idx.size else None
    out = Path(out_dir)
    free = np.flatnonzero(~walls)
    # order states: peak first, plateau next, then the rest by distance to the peak
    rows_, cols_ = np.divmod(free, WIDTH)
    dist = np.abs(rows_ - PEAK[0]) + np.abs(cols_ - PEAK[1])
    key = np.where(peak[free], -2, np.where(plateau[free], -1, dist))
    order = free[np.lexsort((free, key))]
    fig1 = plot.population_vs_temperature(
        grid_T,
        pops,
        out / "population_vs_temperature.png",
        groups={
            "peak (reward 1, sharp)": peak,
            "plateau (reward 0.75, flat)": plateau,
            "rest of the grid": ~(peak | plateau),
        },
        state_order=order,
        crossover=crossover,
        title="Survival of the flattest, then selection becomes RL (7x9 grid)",
    )
    shown = [1.0, 0.3, 0.15, 0.05, 0.0]
    shown_pop = [table["population"][list(TABLE_TEMPERATURES).index(t)] for t in shown]
    fig2 = plot.grid_populations(
        (HEIGHT, WIDTH),
        shown,
        np.array(shown_pop),
        out / "grid_population.png",
        walls=walls,
        marks={"peak": [PEAK], "plateau": PLATEAU},
    )
    return {
        "mdp": {
            "states": mdp.num_states,
            "actions": mdp.num_actions,
            "peak": PEAK,
            "plateau": PLATEAU,
            "walls": WALLS,
        },
        "max_cycle_mean": float(mu),
        "crossover_temperature": crossover,
        "table": rows,
        "figures": [str(fig1), str(fig2)],
    }
