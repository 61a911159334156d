"""What every ``notebooks/build_NN_name.py`` shares: cells -> notebook, and writing it.

A builder defines ``CELLS`` (a list of ``("md" | "code", source)``) and ends with::

    def build():
        return notebook(CELLS)

    if __name__ == "__main__":
        write(build(), __file__)

``write`` puts ``NN_name.ipynb`` (unexecuted) next to ``build_NN_name.py``. The tests load
builders by path (``tests/_notebooks.py``), with this folder on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """An unexecuted notebook of ``cells`` (``kind`` is ``"md"`` or ``"code"``).

    Cell ids are their positions (``cell-0`` ...), not nbformat's random ones, so rebuilding
    an unchanged builder rewrites the same file.
    """
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(src, id=f"cell-{i}")
        if kind == "md"
        else new_code_cell(src, id=f"cell-{i}")
        for i, (kind, src) in enumerate(cells)
    ]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write(nb: nbformat.NotebookNode, builder_file: str) -> Path:
    """Write ``nb`` as ``NN_name.ipynb`` beside ``build_NN_name.py``; print and return the path."""
    src = Path(builder_file)
    out = src.with_name(src.stem.removeprefix("build_") + ".ipynb")
    nbformat.write(nb, out)
    print(f"wrote {out}")
    return out
