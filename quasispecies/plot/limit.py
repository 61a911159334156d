r"""Figures of the ``T -> 0`` limit (matplotlib, Agg canvas, imported lazily).

* ``limit_growth.png`` — ``T log rho(W_T)`` tends to the maximum cycle mean ``mu*``
  inside the band ``mu* + (T/L) sum_cycle log K <= T log rho <= mu*``; right: the gap
  ``mu* - T log rho`` on log-log axes, linear in ``T``.
* ``limit_policy.png`` — the fraction of decisions where ``argmax pi_T`` is Bellman's
  optimal action, against ``T``: it tends to 1 for deterministic transitions; with
  stochastic ones it tends to agreement with the *optimistic* policy instead.
* ``limit_gap.png`` — ``T log Z_H`` (path-integral value from the start state) against
  ``T``, between ``V*_H`` and ``V+_H``: it converges to ``V+``, and ``V+ - V*`` per state
  is zero exactly when transitions are deterministic.

:func:`write_figures` draws any list of :class:`quasispecies.rl.LimitReport`;
:func:`paper_figures` builds the three canonical examples (a random deterministic MDP,
pymdptoolbox's forest, a safe-vs-gamble MDP) and writes ``figures/limit_*.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quasispecies.plot.style import (
    PAPER_COLORS as _COLORS,
    PAPER_RC as _RC,
    paper_axes as _figure,
    save_paper as _save,
)

__all__ = [
    "example_mdps",
    "gap_figure",
    "growth_figure",
    "paper_figures",
    "policy_figure",
    "write_figures",
]


def _positive(rep):
    pos = rep.temperatures > 0
    order = np.argsort(rep.temperatures[pos])
    return pos, order


def growth_figure(reports):
    """``T log rho(T) -> mu*`` with its bound band; returns the matplotlib Figure."""
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig, (ax, ax2) = _figure(7.0, 2.7, 2)
        for i, (label, rep) in enumerate(reports):
            c = _COLORS[i % len(_COLORS)]
            pos, order = _positive(rep)
            T = rep.temperatures[pos][order]
            g = rep.scaled_log_growth[pos][order]
            lo = rep.growth_lower_bound[pos][order]
            mu = rep.max_cycle_mean
            ax.fill_between(T, lo, np.full_like(T, mu), color=c, alpha=0.12, lw=0)
            ax.plot(T, g, color=c, label=label)
            ax.axhline(mu, color=c, ls="--", lw=0.9)
            ax.annotate(
                rf"$\mu^*={mu:.3g}$",
                (T[0], mu),
                xytext=(2, 3),
                textcoords="offset points",
                color=c,
                fontsize=7,
            )
            gap = mu - g
            ok = gap > 0
            ax2.loglog(T[ok], gap[ok], color=c, label=label)
            ax2.loglog(T, mu - lo, color=c, ls=":", lw=1.0)
        lo_all = min(float(np.min(r.scaled_log_growth[r.temperatures > 0])) for _, r in reports)
        hi_all = max(r.max_cycle_mean for _, r in reports)
        pad = 0.08 * (hi_all - lo_all + 1e-12)
        ax.set_ylim(lo_all - pad, hi_all + 2 * pad)
        ax.set_xscale("log")
        ax.set_xlabel("temperature $T$")
        ax.set_ylabel(r"$T\,\log\rho(W_T)$")
        ax.set_title(r"growth rate $\to$ maximum cycle mean")
        ax2.legend(loc="lower right")
        ax2.set_xlabel("temperature $T$")
        ax2.set_ylabel(r"$\mu^* - T\log\rho(W_T)$")
        ax2.set_title(r"gap (solid) and bound $-\frac{T}{L}\sum_{C^*}\log K$ (dotted)")
    return fig


def policy_figure(reports):
    """Agreement of ``argmax pi_T`` with the Bellman (left) and optimistic (right) optima."""
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig, axes = _figure(7.0, 2.7, 2)
        fields = (
            ("policy_agreement", r"Bellman's $\arg\max_a Q^*$"),
            ("policy_agreement_optimistic", r"the optimistic $\arg\max_a Q^+$"),
        )
        for ax, (name, title) in zip(axes, fields, strict=True):
            for i, (label, rep) in enumerate(reports):
                c = _COLORS[i % len(_COLORS)]
                pos, order = _positive(rep)
                T = rep.temperatures[pos][order]
                y = getattr(rep, name)[pos][order]
                # decreasing widths keep coinciding curves visible
                ax.plot(T, y, color=c, lw=3.4 - 1.0 * i, label=label, solid_capstyle="butt")
            ax.set_xscale("log")
            ax.set_ylim(-0.06, 1.06)
            ax.set_xlabel("temperature $T$")
            ax.set_title(f"agreement with {title}")
        axes[0].set_ylabel(r"fraction of decisions $(s,t)$ agreeing")
        axes[0].legend(loc="center left")
    return fig


def gap_figure(reports):
    """``T log Z_H(T)`` between ``V*_H`` and ``V+_H`` per report, and ``V+ - V*`` per state."""
    import matplotlib as mpl

    n = len(reports)
    with mpl.rc_context(_RC):
        fig, axes = _figure(2.6 * n + 2.4, 2.7, n + 1)
        for i, (label, rep) in enumerate(reports):
            ax = axes[i]
            c = _COLORS[i % len(_COLORS)]
            pos, order = _positive(rep)
            T = rep.temperatures[pos][order]
            z = rep.scaled_log_total[pos][order]
            ax.fill_between(
                T,
                rep.value_lower_bound[pos][order],
                np.full_like(T, rep.optimistic_value),
                color=c,
                alpha=0.12,
                lw=0,
                label="bound",
            )
            ax.plot(T, z, color=c, label=r"$T\log Z_H$")
            ax.axhline(rep.optimistic_value, color="k", ls="--", lw=0.9, label=r"$V^+_H$")
            ax.axhline(rep.expected_value, color="k", ls=":", lw=1.1, label=r"$V^*_H$")
            span = rep.optimistic_value - min(float(z.min()), rep.expected_value)
            ax.set_ylim(
                min(float(z.min()), rep.expected_value) - 0.1 * span,
                rep.optimistic_value + 0.12 * span,
            )
            ax.set_xscale("log")
            ax.set_xlabel("temperature $T$")
            ax.set_title(f"{label} (H = {rep.horizon}, start {rep.start})")
            if i == 0:
                ax.set_ylabel("value from the start state")
            ax.legend(loc="best")
        ax = axes[n]
        for i, (label, rep) in enumerate(reports):
            gap = np.nan_to_num(rep.gap, nan=0.0)
            c = _COLORS[i % len(_COLORS)]
            x = np.arange(gap.size)
            ax.vlines(x, 0.0, gap, color=c, lw=1.2)
            ax.plot(x, gap, "o", color=c, ms=4, label=label)
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xlabel("state $s$")
        ax.set_ylabel(r"$V^+_H(s) - V^*_H(s)$")
        ax.set_title("what selection cannot see")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if n > 1:
            ax.legend(loc="center right")
    return fig


def write_figures(reports, out_dir, *, gap_reports=None) -> list[Path]:
    """Write ``limit_growth.png``, ``limit_policy.png``, ``limit_gap.png`` to ``out_dir``.

    ``reports`` is a list of ``(label, LimitReport)``; ``gap_reports`` (default: the same)
    those drawn in the value-gap figure. Files are written atomically.
    """
    out = Path(out_dir)
    gap_reports = reports if gap_reports is None else gap_reports
    return [
        _save(growth_figure(reports), out / "limit_growth.png"),
        _save(policy_figure(reports), out / "limit_policy.png"),
        _save(gap_figure(gap_reports), out / "limit_gap.png"),
    ]


def example_mdps():
    """The three canonical examples: ``{label: (mdp, horizon)}``.

    * deterministic: ``random_mdp(8, 3, seed=3)``, horizon 6;
    * forest: pymdptoolbox's forest (``rl.forest()``), horizon 6;
    * gamble: two states; action 0 pays 1 surely, action 1 pays 10 with probability 0.05
      and -5 otherwise (Bellman plays safe, the population gambles), horizon 4.
    """
    from quasispecies.model.builders import forest, random_mdp
    from quasispecies.model.mdp import MDP

    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = 1.0
    P[:, 1] = [0.95, 0.05]
    R = np.zeros((2, 2, 2))
    R[:, 0, :] = 1.0
    R[:, 1, 0] = -5.0
    R[:, 1, 1] = 10.0
    return {
        "deterministic": (random_mdp(8, 3, seed=3), 6),
        "forest": (forest(), 6),
        "gamble": (MDP(P, R), 4),
    }


def paper_figures(out_dir="figures", temperatures=None) -> list[Path]:
    """Compute the limit reports of :func:`example_mdps` and write ``limit_*.png``."""
    from quasispecies.rl import limit_report

    Ts = np.geomspace(1e-3, 10.0, 41) if temperatures is None else np.asarray(temperatures)
    reps = [
        (name, limit_report(m, Ts, horizon=H, start=0)) for name, (m, H) in example_mdps().items()
    ]
    return write_figures(reps, out_dir, gap_reports=reps[:2])
