r"""Figures of Eigen's error threshold (matplotlib, Agg canvas, imported lazily).

* ``threshold_master.png`` — left: master-class frequency against the per-site error rate
  ``mu`` for several lengths ``L`` (solid: the exact quasispecies; dashed: the
  no-back-mutation formula :math:`(\sigma(1-\mu)^L - 1)/(\sigma - 1)`), with the exact
  threshold :math:`1 - \sigma^{-1/L}` (dotted) and :math:`\ln\sigma / L` (tick on the axis)
  marked; right: the mean fitness :math:`\bar f = \lambda`, falling from ``sigma`` to ~1.
* ``threshold_classes.png`` — Hamming-class distributions below and above the threshold
  (log scale), against the uniform distribution ``C(L, d) / 2^L`` the population melts into.

Style (rcParams, colours, atomic saving): :mod:`quasispecies.plot.style`, as for the limit figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from quasispecies.plot.style import (
    PAPER_COLORS as _COLORS,
    PAPER_RC as _RC,
    paper_axes as _figure,
    save_paper as _save,
)

__all__ = ["classes_figure", "master_figure", "paper_figures", "write_figures"]


def master_figure(curves):
    """Master-class frequency (left) and mean fitness (right) vs ``mu`` for each length."""
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig, (ax, ax2) = _figure(7.0, 2.8, 2)
        mu = curves.mu
        pos = mu > 0
        for i, L in enumerate(curves.lengths):
            c = _COLORS[i % len(_COLORS)]
            ax.plot(mu[pos], curves.master_frequency[i][pos], color=c, label=f"$L={L}$")
            nb = curves.master_frequency_no_back[i][pos]
            ax.plot(mu[pos][nb > 0], nb[nb > 0], color=c, ls="--", lw=0.9)
            ax.axvline(curves.threshold[i], color=c, ls=":", lw=0.9)
            ax.plot(
                [curves.threshold_approx[i]],
                [1.0],
                marker="v",
                color=c,
                ms=4,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
            )
            ax2.plot(mu[pos], curves.mean_fitness[i][pos], color=c, label=f"$L={L}$")
            ax2.axvline(curves.threshold[i], color=c, ls=":", lw=0.9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        floor = max(1e-6, float(np.nanmin(curves.master_frequency[:, pos])))
        ax.set_ylim(floor, 1.5)
        ax.set_xlabel(r"error rate per site $\mu$")
        ax.set_ylabel(r"master-class frequency $x_0$")
        ax.set_title(rf"$\sigma={curves.sigma:g}$: exact (solid), no back-mutation (dashed)")
        ax.legend(loc="lower left")
        ax.text(
            0.99,
            0.02,
            r"dotted: $1-\sigma^{-1/L}$;  $\blacktriangledown$: $\ln\sigma/L$",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
        )
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.axhline(1.0, color="0.6", lw=0.8)
        ax2.set_xlabel(r"error rate per site $\mu$")
        ax2.set_ylabel(r"mean fitness $\bar f=\lambda$")
        ax2.set_title("mean fitness collapses at the threshold")
    return fig


def classes_figure(space_length: int, sigma: float, mus, populations, *, alphabet: int = 2):
    """Class distributions ``x_d`` (log scale) at the given error rates, for one length."""
    import matplotlib as mpl

    L = int(space_length)
    d = np.arange(L + 1)
    log_sizes = (
        math.lgamma(L + 1)
        - np.array([math.lgamma(i + 1) + math.lgamma(L - i + 1) for i in d])
        + d * math.log(alphabet - 1)
    )
    uniform = np.exp(log_sizes - L * math.log(alphabet))
    mu_c = 1 - sigma ** (-1.0 / L)
    with mpl.rc_context(_RC):
        fig, (ax,) = _figure(6.4, 3.0, 1)
        cmap = mpl.colormaps["coolwarm"]
        for j, (mu, x) in enumerate(zip(mus, populations, strict=True)):
            c = cmap(j / max(1, len(mus) - 1))
            ax.semilogy(
                d,
                x,
                color=c,
                marker="o",
                ms=2.2,
                lw=1.2,
                label=rf"$\mu={mu:.3g}$ ($\mu/\mu_c={mu / mu_c:.2f}$)",
            )
        ax.semilogy(
            d,
            uniform,
            color="0.25",
            ls="--",
            lw=1.0,
            label=rf"uniform: $\binom{{L}}{{d}}/{alphabet}^L$",
        )
        ax.set_ylim(1e-16, 1.5)
        ax.set_xlim(0, L)
        ax.set_xlabel("Hamming distance $d$ from the master")
        ax.set_ylabel("class frequency $x_d$")
        ax.set_title(rf"$L={L}$, $\sigma={sigma:g}$, $\mu_c=1-\sigma^{{-1/L}}={mu_c:.4f}$")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return fig


def write_figures(curves, out_dir, *, classes_length: int | None = None) -> list[Path]:
    """Write ``threshold_master.png`` and ``threshold_classes.png`` into ``out_dir``.

    The class figure uses ``classes_length`` (default: the longest of ``curves.lengths``)
    at ``mu/mu_c`` in 0.25, 0.5, 0.9, 1.1 (recomputed with the class model).
    """
    from quasispecies.sequence import SequenceSpace, single_peak

    out = Path(out_dir)
    files = [_save(master_figure(curves), out / "threshold_master.png")]
    L = int(classes_length or max(curves.lengths))
    mu_c = 1 - curves.sigma ** (-1.0 / L)
    top = (curves.alphabet - 1) / curves.alphabet
    mus = [min(top, f * mu_c) for f in (0.25, 0.5, 0.9, 1.1)]
    pops = [
        single_peak(SequenceSpace(L, m, curves.alphabet), curves.sigma)
        .steady_state(curves.temperature)
        .population
        for m in mus
    ]
    fig = classes_figure(L, curves.sigma, mus, pops, alphabet=curves.alphabet)
    files.append(_save(fig, out / "threshold_classes.png"))
    return files


def paper_figures(
    out_dir="figures", lengths=(10, 20, 50, 100), sigma: float = 10.0, num: int = 121
) -> list[Path]:
    """The figures in ``figures/``: ``L = 10, 20, 50, 100``, ``sigma = 10``, log-spaced ``mu``."""
    from quasispecies.sequence import error_threshold

    mus = np.geomspace(1e-3, 0.5, num)
    curves = error_threshold(list(lengths), sigma, mus)
    return write_figures(curves, out_dir, classes_length=50)
