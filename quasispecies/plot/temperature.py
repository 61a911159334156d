"""Figures for the stationary quasispecies (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quasispecies.plot.style import pyplot as _plt, save as _save

__all__ = ["grid_populations", "population_vs_temperature"]


def population_vs_temperature(
    temperatures: np.ndarray,
    population: np.ndarray,
    path,
    *,
    groups: dict[str, np.ndarray] | None = None,
    state_order: np.ndarray | None = None,
    state_labels: list[str] | None = None,
    crossover: float | None = None,
    title: str = "Stationary population against temperature",
) -> Path:
    """Heat map of the stationary population (states x log10 T), with group masses above.

    ``population`` is ``(K, S)`` for the ``K`` positive ``temperatures``; ``groups`` maps
    a legend name to a boolean state mask whose total mass is drawn as a curve.
    """
    plt = _plt()
    from matplotlib.colors import LogNorm

    T = np.asarray(temperatures, dtype=float)
    pop = np.asarray(population, dtype=float)
    keep = T > 0
    T, pop = T[keep], pop[keep]
    order = np.argsort(T)
    T, pop = T[order], pop[order]
    so = np.arange(pop.shape[1]) if state_order is None else np.asarray(state_order)
    fig, (ax0, ax1) = plt.subplots(
        2,
        1,
        figsize=(6.4, 6.8),
        sharex=True,
        gridspec_kw={"height_ratios": [1, 2.2], "hspace": 0.08},
    )
    logT = np.log10(T)
    colors = ["#c0392b", "#2e86c1", "#7f8c8d", "#27ae60", "#8e44ad"]
    for (name, mask), col in zip((groups or {}).items(), colors, strict=False):
        ax0.plot(logT, pop[:, mask].sum(axis=1), color=col, lw=1.8, label=name)
    ax0.set_ylabel("population mass")
    ax0.set_ylim(-0.02, 1.02)
    if groups:
        ax0.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5)
    ax0.set_title(title)
    floor = 1e-6
    img = np.clip(pop[:, so].T, floor, 1.0)
    edges = np.concatenate(
        [
            [logT[0] - (logT[1] - logT[0]) / 2],
            (logT[1:] + logT[:-1]) / 2,
            [logT[-1] + (logT[-1] - logT[-2]) / 2],
        ]
    )
    n = len(so)
    mesh = ax1.pcolormesh(
        edges,
        np.arange(n + 1) - 0.5,
        img,
        norm=LogNorm(vmin=floor, vmax=1.0),
        cmap="magma",
        shading="flat",
        rasterized=True,
    )
    ax1.set_ylabel("state" if state_order is None else "state (ordered)")
    ax1.set_xlabel(r"$\log_{10} T$")
    ax1.set_ylim(n - 0.5, -0.5)
    if state_labels is not None and n <= 40:
        ax1.set_yticks(np.arange(n), [state_labels[i] for i in so], fontsize=6)
    if crossover is not None:
        for ax in (ax0, ax1):
            ax.axvline(np.log10(crossover), color="#555", ls="--", lw=0.8)
        ax0.annotate(
            f"T* ≈ {crossover:.3g}",
            (np.log10(crossover), 0.12),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=8,
            color="#333",
        )
    cb = fig.colorbar(mesh, ax=ax1, shrink=0.8, pad=0.12, location="bottom", aspect=40)
    cb.set_label("stationary frequency (log scale, floor 1e-6)")
    return _save(fig, path)


def grid_populations(
    grid_shape: tuple[int, int],
    temperatures: list[float],
    populations: np.ndarray,
    path,
    *,
    walls: np.ndarray | None = None,
    marks: dict[str, list[tuple[int, int]]] | None = None,
) -> Path:
    """The grid coloured by stationary population, one panel per temperature."""
    plt = _plt()
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    h, w = grid_shape
    n = len(temperatures)
    fig, axes = plt.subplots(
        1, n, figsize=(2.3 * n + 0.8, 2.3 * h / w + 0.7), squeeze=False, layout="constrained"
    )
    floor = 1e-4
    mesh = None
    for ax, T, pop in zip(axes[0], temperatures, populations, strict=True):
        img = np.clip(np.asarray(pop, dtype=float).reshape(h, w), floor, 1.0)
        if walls is not None:
            img = np.ma.masked_where(walls.reshape(h, w), img)
        cmap = plt.get_cmap("viridis").with_extremes(bad="#3a3a3a")
        mesh = ax.imshow(
            img, cmap=cmap, norm=LogNorm(vmin=floor, vmax=1.0), interpolation="nearest"
        )
        styles = {0: ("#ff5555", "-"), 1: ("#ffffff", "--")}
        for k, (_, cells) in enumerate((marks or {}).items()):
            col, ls = styles.get(k, ("#ffaa00", ":"))
            for r, c in cells:
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec=col, ls=ls, lw=1.2))
        ax.set_title(f"T = {T:g}" if T > 0 else "T = 0 (limit)")
        ax.set_xticks([])
        ax.set_yticks([])
    if marks:
        names = list(marks)
        txt = ",  ".join(
            f"{m}: {s}" for m, s in zip(["red box", "white dashed"], names, strict=False)
        )
        fig.suptitle(f"Stationary population on the grid ({txt}; grey: walls)", fontsize=9)
    cb = fig.colorbar(mesh, ax=list(axes[0]), shrink=0.85, pad=0.01)
    cb.set_label("stationary frequency")
    return _save(fig, path)
