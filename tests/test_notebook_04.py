"""notebooks/04_selection_and_collapse.ipynb is in sync with its builder and runs top to bottom."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_04", NOTEBOOKS / "build_04_selection_and_collapse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_matches_builder():
    on_disk = nbformat.read(NOTEBOOKS / "04_selection_and_collapse.ipynb", as_version=4)
    built = _builder().build()
    assert [c.source for c in on_disk.cells] == [c.source for c in built.cells]


def test_notebook_executes(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / "04_selection_and_collapse.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any failing cell or assert
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "beta log Z = 1.3511555" in text  # rl.json "kl_tilt" value, to 7 digits
    assert "rounds to reach 1%: 8.0" in text  # odds 1.5 * 0.5^k <= 1/99
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images == 4
    assert (tmp_path / "figures_04" / "collapse_entropy.png").stat().st_size > 10_000
