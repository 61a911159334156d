"""The house style of every figure, and atomic PNG writing (matplotlib imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: matplotlib rcParams shared by all figures of the package.
RC: dict[str, Any] = {
    "figure.dpi": 150,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend with :data:`RC` applied."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(RC)
    return plt


def save(fig, path, *, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` atomically (no partial file on failure) and close it."""
    import matplotlib.pyplot as plt

    from quasispecies.model.files import atomic_write

    path = Path(path)
    with atomic_write(path, "wb") as fh:
        fig.savefig(
            fh, format=path.suffix.lstrip(".") or "png", bbox_inches="tight" if tight else None
        )
    plt.close(fig)
    return path


# The compact style of the multi-panel paper figures (plot_limit, plot_threshold): drawn on
# an Agg canvas without pyplot's global state, constrained layout, styled by rc_context.
PAPER_COLORS = ["#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400"]
PAPER_RC: Any = {  # Any: matplotlib types rc_context keys as a Literal union
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "savefig.dpi": 200,
}


def paper_axes(width: float, height: float, ncols: int):
    """``(figure, axes)``: one row of ``ncols`` panels in the paper style."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with mpl.rc_context(PAPER_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def save_paper(fig, path) -> Path:
    """:func:`save` for a :func:`paper_axes` figure (its layout already fits it)."""
    import matplotlib as mpl

    with mpl.rc_context(PAPER_RC):
        return save(fig, path, tight=False)
