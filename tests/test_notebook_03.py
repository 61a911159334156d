"""notebooks/03_lm_bridge.ipynb is in sync with its builder and runs top to bottom."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.lm

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def _builder():
    spec = importlib.util.spec_from_file_location("build_03", NOTEBOOKS / "build_03_lm_bridge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_matches_builder():
    on_disk = nbformat.read(NOTEBOOKS / "03_lm_bridge.ipynb", as_version=4)
    built = _builder().build()
    assert [c.source for c in on_disk.cells] == [c.source for c in built.cells]


def test_notebook_executes(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / "03_lm_bridge.ipynb", as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell or assert
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert 'log p(" Paris." | "The capital of France is") = -0.638' in text
    assert "round trip reproduces the dynamics: True" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images == 3
