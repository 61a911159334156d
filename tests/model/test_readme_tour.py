"""The README's "Python API tour" and "Gradients" snippets run as written (every name
they use is defined)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _tour_source(heading: str = "Python API tour") -> str:
    text = README.read_text("utf-8")
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, f"the {heading} section has a python block"
    return blocks[0]


def test_python_api_tour_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tour writes env.npz into the current directory
    namespace: dict = {}
    exec(compile(_tour_source(), "README.md (Python API tour)", "exec"), namespace)
    assert (tmp_path / "env.npz").exists()
    assert namespace["big"].num_states == 1000
    assert namespace["land"] is not None
    assert namespace["x"].shape[:2] == (4, 51)


def test_gradients_snippet_runs():
    import numpy as np

    namespace: dict = {}
    exec(compile(_tour_source("Gradients"), "README.md (Gradients)", "exec"), namespace)
    # the stationary flux of the selected measure sums to one; a path of 8 steps carries
    # 8 rewards into each of the 3 final states' u_H
    np.testing.assert_allclose(float(namespace["flux"].sum()), 1.0, rtol=1e-12)
    np.testing.assert_allclose(float(namespace["occupancy"].sum()), 24.0, rtol=1e-12)
