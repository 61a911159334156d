"""notebooks/04_selection_and_collapse.ipynb is in sync with its builder and runs top to bottom."""

from __future__ import annotations

from tests.notebooks._notebooks import assert_in_sync, execute

STEM = "04_selection_and_collapse"


def test_notebook_matches_builder():
    assert_in_sync(STEM)


def test_notebook_executes(tmp_path):
    text, images, _ = execute(STEM, tmp_path, timeout=240)
    assert "beta log Z = 1.3511555" in text  # rl.json "kl_tilt" value, to 7 digits
    assert "rounds to reach 1%: 8.0" in text  # odds 1.5 * 0.5^k <= 1/99
    assert images == 4
    assert (tmp_path / "figures_04" / "collapse_entropy.png").stat().st_size > 10_000
