"""Figures for selection, mode collapse and iterative chaining (matplotlib, Agg, imported lazily).

Each function takes the JSON-ready dicts produced by :mod:`quasispecies.experiments.collapse_study`
and :mod:`quasispecies.experiments.chaining` (a :func:`~quasispecies.experiments.chaining.summarise`
dict) and writes one PNG atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from quasispecies.plot.style import pyplot as _plt, save as _save

__all__ = ["chain_error_figure", "collapse_attractor_figure", "collapse_entropy_figure"]

_TAU_COLORS = {0.5: "#2471a3", 1.5: "#28b463", 2.0: "#e67e22", 3.0: "#c0392b"}


def _tau_color(t: float, taus) -> str:
    if t in _TAU_COLORS:
        return _TAU_COLORS[t]
    import matplotlib

    cmap = matplotlib.colormaps["plasma"]
    lo, hi = min(taus), max(taus)
    return cmap(0.15 + 0.7 * (t - lo) / max(hi - lo, 1e-12))


def _entropy_panel(ax, panel: dict[str, Any], title: str, xlabel: str) -> None:
    lam = np.asarray(panel["strength"], dtype=float)
    taus = [float(t) for t in panel["tau"]]
    H = np.asarray(panel["entropy"], dtype=float)  # (B, K) re-heated, sequence level
    H_tilt = np.asarray(panel["tilted_entropy"], dtype=float)
    H_base = np.asarray(panel["base_entropy"], dtype=float)
    x = lam
    ax.plot(x, H_tilt, color="black", lw=2.0, label=r"tilted $p_\beta$ ($\tau=1$)", zorder=5)
    for k, t in enumerate(taus):
        if t == 1.0:
            continue
        c = _tau_color(t, taus)
        ax.plot(x, H[:, k], color=c, lw=1.3, ls="--", label=rf"re-heated, $\tau={t:g}$")
        ax.axhline(H_base[k], color=c, lw=0.7, ls=":", alpha=0.9)
    if "token_entropy" in panel:
        Ht = np.asarray(panel["token_entropy"], dtype=float)
        for k, t in enumerate(taus):
            if t == 1.0:
                continue
            ax.plot(
                x,
                Ht[:, k],
                color=_tau_color(t, taus),
                lw=1.0,
                ls="-",
                alpha=0.55,
                label="token-level sampling (thin, same colours)" if k == len(taus) - 1 else None,
            )
    ax.axhline(H_tilt[0], color="black", lw=0.7, ls=":")
    ax.set_xscale("symlog", linthresh=max(lam[lam > 0].min(), 1e-3) if (lam > 0).any() else 1.0)
    ax.set_xlim(0, lam.max())
    ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("entropy (nats)")
    ax.set_title(title, loc="left")
    n_out = panel.get("n_outcomes")
    if n_out:
        ax.text(
            0.03,
            0.04,
            f"{n_out} outcomes",
            transform=ax.transAxes,
            ha="left",
            va="bottom",
            fontsize=7.5,
            color="0.35",
        )


def collapse_entropy_figure(study: dict[str, Any], path) -> Path:
    """Entropy against tilt strength ``1/beta`` with re-heating curves, one panel per domain.

    Solid: ``H(p_lambda)`` with ``p_lambda ∝ p0 exp(lambda r)`` (Korbak et al. 2022);
    dashed: ``H(p_lambda^(1/tau) / Z)``, the tuned model sampled at temperature ``tau``
    (:func:`quasispecies.selection.collapse.reheating`). Dotted horizontal lines: the untuned distribution sampled at the same ``tau``
    (black: ``tau = 1``). The gap between a dashed curve and its dotted line is the
    entropy that re-heating does not give back.
    """
    plt = _plt()
    panels = [(k, v) for k, v in study.items() if isinstance(v, dict) and "strength" in v]
    titles = {
        "distribution": ("(a) Zipf prior, Gaussian reward", r"tilt strength $1/\beta$"),
        "paths": ("(b) MDP path distribution", r"inverse temperature $1/T$ (return tilt)"),
        "lm_tree": ("(c) LM token tree, self-evaluation reward", r"tilt strength $1/\beta$"),
    }
    fig, axes = plt.subplots(1, len(panels), figsize=(3.5 * len(panels), 3.2), squeeze=False)
    for ax, (name, panel) in zip(axes[0], panels, strict=True):
        title, xl = titles.get(name, (name, r"$1/\beta$"))
        _entropy_panel(ax, panel, title, xl)
    seen: dict[str, Any] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    from matplotlib.lines import Line2D

    seen["untuned model at the same $\\tau$"] = Line2D([], [], color="0.3", lw=0.8, ls=":")
    fig.legend(
        list(seen.values()),
        list(seen.keys()),
        loc="lower center",
        ncol=3,
        bbox_to_anchor=(0.5, -0.16),
    )
    fig.suptitle(
        r"Tilting $p_0 e^{r/\beta}$ collapses entropy; re-heating to $\tau$ only moves the "
        r"collapse from $1/\beta$ to $1/(\beta\tau)$",
        x=0.01,
        ha="left",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, path)


def collapse_attractor_figure(study: dict[str, Any], path) -> Path:
    """Iterated selection: mass on the top outcomes and entropy against the number of rounds.

    Round ``k`` is ``p_k ∝ p0 exp(k r / beta)`` (fixed reward), converging to ``p0``
    restricted to ``argmax r``; the self-referential ``r = log p`` gives
    ``p_k ∝ p0^((1 + 1/beta)^k)`` (:func:`quasispecies.selection.collapse.iterate_tilt`).
    """
    plt = _plt()
    att = study["attractor"]
    traj = np.asarray(att["trajectory"], dtype=float)
    k = np.arange(traj.shape[0])
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(7.0, 2.9))
    order = np.argsort(-traj[-1])[:4]
    for j, i in enumerate(order):
        ax0.plot(k, traj[:, i], lw=1.5, label=f"outcome {i} (r = {att['r'][i]:.2f})", color=f"C{j}")
    ax0.plot(
        k,
        traj.sum(axis=1) - traj[:, order].sum(axis=1),
        color="0.5",
        lw=1.2,
        ls="--",
        label="all others",
    )
    ax0.set_xlabel("rounds of selection k")
    ax0.set_ylabel("probability")
    ax0.set_title(r"(a) $p_k \propto p_0 e^{k r/\beta}$", loc="left")
    ax0.legend(loc="center right")
    ax1.plot(k, att["entropy"], color="black", lw=1.8, label="fixed reward")
    if "self_entropy" in att:
        ax1.plot(
            np.arange(len(att["self_entropy"])),
            att["self_entropy"],
            color="#c0392b",
            lw=1.5,
            ls="--",
            label=r"self-reward $r = \log p_k$",
        )
    ax1.axhline(att["attractor_entropy"], color="black", lw=0.7, ls=":", label="attractor")
    ax1.set_xlabel("rounds of selection k")
    ax1.set_ylabel("entropy (nats)")
    ax1.set_title("(b) entropy falls to the attractor's", loc="left")
    ax1.legend()
    fig.tight_layout()
    return _save(fig, path)


def chain_error_figure(
    summary: dict[str, Any],
    path,
    simulation: dict[str, Any] | None = None,
    evaluator: str = "survey",
) -> Path:
    """Error rate per chaining round: the real model against :func:`filter_rounds`.

    The prediction is ``eps_{k+1} = eps_k fpr / (eps_k fpr + (1 - eps_k) tpr)``
    (:func:`quasispecies.selection.chaining.filter_rounds`), i.e. the error odds fall by
    ``fpr / tpr`` per round.

    Left: observed error of the model's answers and of the passing buffer, with the
    recurrence's predictions from the round-0 ``tpr``/``fpr``. Right (if ``simulation``):
    finite-buffer runs of the idealised loop with the same rates.
    """
    plt = _plt()
    n_panels = 2 if simulation else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(4.0 * n_panels + 0.4, 3.3), squeeze=False)
    ax = axes[0][0]

    def arr(key):
        return np.array([np.nan if v is None else v for v in summary[key]], dtype=float)

    eps, ctx, pred, pred_buf = (
        arr("eps"),
        arr("context_error"),
        arr("predicted"),
        arr("predicted_buffer"),
    )
    k = np.arange(len(eps))
    n = summary["n_questions"]
    se = np.sqrt(np.clip(eps * (1 - eps), 0.25 / n, None) / n)
    ax.errorbar(
        k,
        eps,
        yerr=se,
        color="black",
        marker="o",
        ms=4,
        lw=1.6,
        capsize=2,
        label="observed: error of the model's answers",
        zorder=5,
    )
    ax.plot(
        k,
        ctx,
        color="#2e86c1",
        marker="s",
        ms=3.5,
        lw=1.2,
        label="observed: error of its context (kept answers)",
    )
    ax.plot(
        k,
        pred,
        color="#c0392b",
        ls="--",
        marker="^",
        ms=3.5,
        lw=1.4,
        label=r"predicted: filter_rounds($\varepsilon_0$, tpr, fpr)",
    )
    ax.plot(
        k[1:],
        pred_buf[:-1],
        color="#c0392b",
        ls="none",
        marker="v",
        ms=4.5,
        mfc="none",
        label=r"predicted one step: filter_step($\varepsilon_{k-1}$)",
    )
    ax.set_xticks(k)
    ax.set_xlabel("round k")
    ax.set_ylabel("error rate")
    ax.set_ylim(0, 1)
    extra = ""
    auc_l = summary.get("auc_likelihood")
    if auc_l and auc_l[0] is not None:
        extra = f", likelihood AUC = {auc_l[0]:.2f}"
    judge = "survey self-evaluation" if evaluator == "survey" else "answer likelihood"
    if evaluator != "survey":
        extra = ""
    ax.set_title(
        f"(a) SmolLM2-135M-Instruct, {n} questions\nkept by {judge}: tpr = {summary['tpr0']:.2f}, "
        f"fpr = {summary['fpr0']:.2f}\nAUC = {summary['auc'][0]:.2f}{extra}",
        loc="left",
        fontsize=8.5,
    )
    ax.legend(loc="upper right", fontsize=7)
    if simulation:
        ax2 = axes[0][1]
        exact = np.asarray(simulation["exact"], dtype=float)
        kk = np.arange(len(exact))
        for j, (B, stats) in enumerate(
            sorted(simulation["buffers"].items(), key=lambda x: int(x[0]))
        ):
            c = plt.get_cmap("viridis")(0.15 + 0.7 * j / max(len(simulation["buffers"]) - 1, 1))
            ax2.fill_between(kk, stats["q10"], stats["q90"], color=c, alpha=0.18, lw=0)
            ax2.plot(kk, stats["mean"], color=c, lw=1.4, label=f"buffer B = {B} (mean, 10-90%)")
        ax2.plot(kk, exact, color="#c0392b", ls="--", lw=1.6, label="exact recurrence")
        ax2.set_xticks(kk)
        ax2.set_xlabel("round k")
        ax2.set_ylabel("error rate in context")
        ax2.set_ylim(0, 1)
        ax2.set_title("(b) idealised loop, finite buffers\n(same tpr, fpr)", loc="left", fontsize=9)
        ax2.legend(loc="upper right")
    fig.tight_layout()
    return _save(fig, path)
