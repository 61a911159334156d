"""notebooks/02_error_threshold.ipynb is in sync with its builder and runs top to bottom."""

from __future__ import annotations

from _notebooks import assert_in_sync, execute

STEM = "02_error_threshold"


def test_notebook_matches_builder():
    assert_in_sync(STEM)


def test_notebook_executes(tmp_path):
    text, images, elapsed = execute(STEM, tmp_path, timeout=120)
    assert "max class difference" in text
    # Lanczos beats power iteration near the threshold (both counts printed by the notebook)
    lanczos = int(text.split("Lanczos: ")[1].split(" matvecs")[0])
    power = int(text.split("power  : ")[1].split(" matvecs")[0])
    assert lanczos * 5 < power
    rel = float(text.split("relative lambda difference: ")[1].split()[0])
    assert rel < 1e-9
    assert images == 1
    assert elapsed < 120
