"""The README's "Python API tour" snippet runs as written (every name it uses is defined)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _tour_source() -> str:
    text = README.read_text("utf-8")
    section = text.split("## Python API tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the tour has one python block"
    return blocks[0]


def test_python_api_tour_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tour writes env.npz into the current directory
    namespace: dict = {}
    exec(compile(_tour_source(), "README.md (Python API tour)", "exec"), namespace)
    assert (tmp_path / "env.npz").exists()
    assert namespace["big"].num_states == 1000
    assert namespace["land"] is not None
    assert namespace["x"].shape[:2] == (4, 51)
