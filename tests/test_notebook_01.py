"""notebooks/01_derivation.ipynb is in sync with its builder and runs top to bottom."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def _builder():
    spec = importlib.util.spec_from_file_location("build_01", NOTEBOOKS / "build_01_derivation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_matches_builder():
    on_disk = nbformat.read(NOTEBOOKS / "01_derivation.ipynb", as_version=4)
    built = _builder().build()
    assert [c.source for c in on_disk.cells] == [c.source for c in built.cells]


def test_notebook_executes(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / "01_derivation.ipynb", as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError on any failing cell or assert
    elapsed = time.perf_counter() - t0
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "Bellman optimum V* (policy iteration)" in text and "26.244" in text
    assert "optimistic limit V+" in text and "32.4" in text
    assert "optimal cycle" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images == 1
    assert elapsed < 120
