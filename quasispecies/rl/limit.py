r"""The ``T -> 0`` limit of selection on one MDP, measured: growth against the maximum
cycle mean (Karp 1978), ``T log Z`` against ``V*`` and ``V+``, policy agreement, entropy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from quasispecies.dynamics import steady_state
from quasispecies.kernels.maxplus import Cycle, optimal_cycle
from quasispecies.model.files import jsonable
from quasispecies.model.mdp import check_mdp
from quasispecies.model.validate import check_nonneg_int, check_temperature
from quasispecies.paths import trajectory_stats
from quasispecies.rl.agreement import agreements
from quasispecies.rl.bellman import OPT_RTOL, finite_horizon_values

__all__ = ["LimitReport", "limit_report"]


@dataclass(frozen=True)
class LimitReport:
    r"""The ``T -> 0`` limit of selection on one MDP, measured per temperature.

    Scalars describe the limit; every ``(K,)`` array is indexed like ``temperatures``.

    * Growth: ``scaled_log_growth = T log rho(W_T)`` satisfies
      ``mu* + (T / L) sum_{cycle} log K <= T log rho <= mu*`` (``growth_lower_bound`` and
      ``max_cycle_mean``), the cycle being :attr:`cycle` (length ``L``).
    * Values from ``x0 = delta_start`` over ``horizon`` steps: ``scaled_log_total = T log Z``
      (``Z`` = total population) satisfies ``V+ + T c* <= T log Z <= V+``, ``c*`` the log
      prior weight of the best paths (``value_lower_bound``); for uniform ``pi0`` and
      deterministic ``P`` the looser ``V+ - T H log A`` (``simple_lower_bound``).
      ``expected_value = V*_H(start)``, ``optimistic_value = V+_H(start)``.
    * ``policy_agreement``: fraction of the ``(t, s)`` with a unique Bellman-optimal
      action where ``argmax pi_T`` picks it (``policy_agreement_optimistic``: against the
      optimistic optimum).
    * ``entropy`` (nats) and ``expected_return`` of the path distribution.
    * ``gap = V+_H - V*_H`` per state (zero for deterministic MDPs).
    """

    temperatures: np.ndarray
    horizon: int
    start: int
    deterministic: bool
    max_cycle_mean: float
    cycle: Cycle
    scaled_log_growth: np.ndarray
    growth_lower_bound: np.ndarray
    expected_value: float
    optimistic_value: float
    scaled_log_total: np.ndarray
    value_lower_bound: np.ndarray
    simple_lower_bound: np.ndarray
    policy_agreement: np.ndarray
    policy_agreement_optimistic: np.ndarray
    entropy: np.ndarray
    expected_return: np.ndarray
    gap: np.ndarray
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (``inf`` kept as a float: JSON's ``Infinity`` when dumped; NaN as ``None``)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "cycle"}
        d["cycle"] = {
            "mean": self.cycle.mean,
            "states": self.cycle.states,
            "actions": self.cycle.actions,
            "rewards": self.cycle.rewards,
            "log_kernel": self.cycle.log_kernel,
        }
        return jsonable(d)

    def table(self) -> str:
        """A plain-text table, one row per temperature."""
        head = (
            f"{'T':>10} {'T log rho':>11} {'>= bound':>11} {'T log Z':>11} {'>= bound':>11} "
            f"{'agree(V*)':>9} {'agree(V+)':>9} {'entropy':>9} {'E[G]':>9}"
        )
        rows = [head]
        for i, T in enumerate(self.temperatures):
            rows.append(
                f"{T:>10.3g} {self.scaled_log_growth[i]:>11.6f} {self.growth_lower_bound[i]:>11.6f} "
                f"{self.scaled_log_total[i]:>11.6f} {self.value_lower_bound[i]:>11.6f} "
                f"{self.policy_agreement[i]:>9.3f} {self.policy_agreement_optimistic[i]:>9.3f} "
                f"{self.entropy[i]:>9.4f} {self.expected_return[i]:>9.4f}"
            )
        rows.append(
            f"max cycle mean mu* = {self.max_cycle_mean:.6f} on cycle "
            f"{self.cycle.states.tolist()} (actions {self.cycle.actions.tolist()})"
        )
        rows.append(
            f"H = {self.horizon}, start = {self.start}: V*_H = {self.expected_value:.6f}, "
            f"V+_H = {self.optimistic_value:.6f}, max gap V+ - V* = "
            f"{np.max(np.where(np.isfinite(self.gap), self.gap, 0.0)):.6f}"
        )
        rows.extend(self.notes)
        return "\n".join(rows)


def limit_report(mdp, temperatures, *, horizon: int = 10, start: int = 0) -> LimitReport:
    r"""Measure the ``T -> 0`` reinforcement-learning limit of selection on ``mdp``.

    Per temperature: ``T log rho(W_T)`` against the maximum cycle mean and its bound
    (:func:`quasispecies.steady_state`), ``T log Z_H`` from ``delta_start`` against
    ``V*_H``, ``V+_H`` and the bound, the agreement of ``argmax pi_T`` with the
    Bellman-optimal actions, and the path entropy. See :class:`LimitReport`.

    ``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)`` acts on row vectors
    (``n_{t+1} = n_t W_T``); ``T log rho(W_T) -> mu*``, the maximum cycle mean of the
    support graph with edge weight ``max_a R`` (R. M. Karp, "A characterization of the
    minimum cycle mean in a digraph", *Discrete Math.* 23, 1978); ``V*_H``, ``V+_H`` by
    backward induction (Bellman 1957); ``pi_T`` is the soft-optimal policy for
    deterministic ``P`` (Todorov, PNAS 106, 2009).
    """
    mdp = check_mdp(mdp)
    Ts, _ = check_temperature(temperatures, "temperatures")
    Ts = np.atleast_1d(Ts)
    horizon = check_nonneg_int(horizon, "horizon")
    start = check_nonneg_int(start, "start")
    if start >= mdp.num_states:
        raise ValueError(f"start: state {start} is outside [0, {mdp.num_states})")
    notes = []
    cyc = optimal_cycle(mdp)
    mu = cyc.mean
    if np.isfinite(mu):
        L = len(cyc.states)
        lower = mu + Ts * float(np.sum(cyc.log_kernel)) / L
        ss = steady_state(mdp, Ts, x0=start)
        growth = np.asarray(ss.scaled_log_growth, dtype=np.float64)
        if not bool(np.all(ss.irreducible)):
            notes.append(
                "W_T is reducible: T log rho is the growth of the best block; the "
                "quasispecies depends on x0"
            )
    else:
        lower = np.full(Ts.shape, -np.inf)
        growth = np.full(Ts.shape, -np.inf)
        notes.append("the support graph has no cycle: W_T is nilpotent, T log rho = -inf")
    vals = finite_horizon_values(mdp, horizon)
    stats = trajectory_stats(mdp, Ts, horizon, start)
    zero = trajectory_stats(mdp, 0.0, horizon, start)
    vplus = float(vals.optimistic[start])
    c_best = float(zero.log_multiplicity)
    vlower = vplus + Ts * c_best
    simple = vplus - Ts * horizon * np.log(mdp.num_actions)
    agree = agreements(mdp, Ts, True, horizon, False, OPT_RTOL)
    agree_o = agreements(mdp, Ts, True, horizon, True, OPT_RTOL)
    gap = np.where(
        np.isfinite(vals.optimistic) & np.isfinite(vals.expected),
        vals.optimistic - vals.expected,
        np.nan,
    )
    return LimitReport(
        temperatures=Ts,
        horizon=horizon,
        start=start,
        deterministic=mdp.deterministic,
        max_cycle_mean=float(mu),
        cycle=cyc,
        scaled_log_growth=growth,
        growth_lower_bound=lower,
        expected_value=float(vals.expected[start]),
        optimistic_value=vplus,
        scaled_log_total=np.asarray(stats.scaled_log_partition),
        value_lower_bound=vlower,
        simple_lower_bound=simple,
        policy_agreement=np.array([a.fraction for a in agree]),
        policy_agreement_optimistic=np.array([a.fraction for a in agree_o]),
        entropy=np.asarray(stats.entropy),
        expected_return=np.asarray(stats.expected_return),
        gap=gap,
        notes=notes,
    )
