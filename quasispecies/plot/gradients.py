"""Figures for gradients and reward inference (matplotlib, Agg backend, imported lazily).

* :func:`flux_grid` -- where selection pays attention: the gradient
  ``d(T log rho) / dR`` summed over each state's transitions (the stationary flux
  through the state, ``l_s r_s / (l . r)``), one grid panel per temperature;
* :func:`recovered_vs_true` -- fitted against planted rewards, one panel per case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quasispecies.plot.style import pyplot as _plt, save as _save

__all__ = ["flux_grid", "recovered_vs_true"]


def flux_grid(
    grid_shape: tuple[int, int],
    temperatures,
    flux: np.ndarray,
    path,
    *,
    walls: np.ndarray | None = None,
    marks: dict[str, list[tuple[int, int]]] | None = None,
    floor: float = 1e-4,
) -> Path:
    """Heat maps of the per-state flux ``flux[k]`` (``(len(temperatures), h * w)``, each
    summing to 1) on the grid, log colour scale from ``floor``; walls grey."""
    plt = _plt()
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    h, w = grid_shape
    flux = np.asarray(flux, dtype=float)
    if flux.shape != (len(temperatures), h * w):
        raise ValueError(f"flux: expected shape {(len(temperatures), h * w)}, got {flux.shape}")
    n = len(temperatures)
    fig, axes = plt.subplots(
        1, n, figsize=(2.3 * n + 0.8, 2.3 * h / w + 0.8), squeeze=False, layout="constrained"
    )
    cmap = plt.get_cmap("magma").with_extremes(bad="#3a3a3a")
    mesh = None
    for ax, T, f in zip(axes[0], temperatures, flux, strict=True):
        img = np.clip(f.reshape(h, w), floor, 1.0)
        if walls is not None:
            img = np.ma.masked_where(np.asarray(walls).reshape(h, w), img)
        mesh = ax.imshow(
            img, cmap=cmap, norm=LogNorm(vmin=floor, vmax=1.0), interpolation="nearest"
        )
        colours = ["#55ddff", "#ffffff"]
        for k, cells in enumerate((marks or {}).values()):
            for r, c in cells:
                ax.add_patch(
                    Rectangle(
                        (c - 0.5, r - 0.5), 1, 1, fill=False, ec=colours[k % 2], ls="--", lw=1.0
                    )
                )
        ax.set_title(f"T = {T:g}")
        ax.set_xticks([])
        ax.set_yticks([])
    names = ", ".join(f"{c}: {m}" for c, m in zip(["cyan", "white"], marks or {}, strict=False))
    fig.suptitle(
        "Where selection pays attention: d(T log rho)/dR summed over each state's moves"
        + (f" ({names})" if names else ""),
        fontsize=9,
    )
    cb = fig.colorbar(mesh, ax=list(axes[0]), shrink=0.85, pad=0.01)
    cb.set_label("stationary flux through the state")
    return _save(fig, path)


def recovered_vs_true(panels, path) -> Path:
    """Scatter of fitted against planted values; ``panels`` is a list of
    ``(title, true, fitted, xlabel)``, each pair compared after removing its mean (the gauge)."""
    plt = _plt()
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.0), squeeze=False, layout="constrained")
    for ax, (title, true, fitted, xlabel) in zip(axes[0], panels, strict=True):
        t = np.asarray(true, dtype=float).ravel()
        f = np.asarray(fitted, dtype=float).ravel()
        if t.shape != f.shape:
            raise ValueError(f"panels: {title!r} has {t.size} true and {f.size} fitted values")
        t, f = t - t.mean(), f - f.mean()
        lo, hi = float(min(t.min(), f.min())), float(max(t.max(), f.max()))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999999", lw=0.8, zorder=0)
        ax.scatter(t, f, s=14, color="#1f5fa8", alpha=0.8)
        err = float(np.max(np.abs(f - t)))
        ax.set_title(f"{title}\nmax |fitted - true| = {err:.1e}")
        ax.set_xlabel(f"{xlabel} (mean removed)")
        ax.set_ylabel("fitted (mean removed)")
        ax.set_aspect("equal")
    return _save(fig, path)
