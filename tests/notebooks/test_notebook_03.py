"""notebooks/03_lm_bridge.ipynb is in sync with its builder and runs top to bottom."""

from __future__ import annotations

import pytest

from tests.notebooks._notebooks import assert_in_sync, execute

pytestmark = pytest.mark.lm

STEM = "03_lm_bridge"


def test_notebook_matches_builder():
    assert_in_sync(STEM)


def test_notebook_executes(tmp_path):
    text, images, _ = execute(STEM, tmp_path, timeout=300)
    assert 'log p(" Paris." | "The capital of France is") = -0.638' in text
    assert "round trip reproduces the dynamics: True" in text
    assert images == 3
