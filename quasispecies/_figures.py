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

    from .io import atomic_write

    path = Path(path)
    with atomic_write(path, "wb") as fh:
        fig.savefig(
            fh, format=path.suffix.lstrip(".") or "png", bbox_inches="tight" if tight else None
        )
    plt.close(fig)
    return path
