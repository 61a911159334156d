"""notebooks/01_derivation.ipynb is in sync with its builder and runs top to bottom."""

from __future__ import annotations

from tests.notebooks._notebooks import assert_in_sync, execute

STEM = "01_derivation"


def test_notebook_matches_builder():
    assert_in_sync(STEM)


def test_notebook_executes(tmp_path):
    text, images, elapsed = execute(STEM, tmp_path, timeout=120)
    assert "Bellman optimum V* (policy iteration)" in text and "26.244" in text
    assert "optimistic limit V+" in text and "32.4" in text
    assert "optimal cycle" in text
    assert images == 1
    assert elapsed < 120
