"""notebooks/02_error_threshold.ipynb is in sync with its builder and runs top to bottom."""

from __future__ import annotations

import numpy as np

from tests.notebooks._notebooks import assert_in_sync, execute

STEM = "02_error_threshold"


def test_notebook_matches_builder():
    assert_in_sync(STEM)


def test_notebook_executes(tmp_path):
    text, images, elapsed = execute(STEM, tmp_path, timeout=120)
    assert "max class difference" in text
    # Lanczos vs power iteration near the threshold: rows "mu/mu_c |l2/l1| power Lanczos err"
    table = text.split("|lambda difference|\n")[1].splitlines()
    rows = [line.split() for line in table if line.strip()][:3]
    assert [float(r[0]) for r in rows] == [0.9, 1.0, 1.04]
    gap, power, lanczos = (np.array([float(r[i]) for r in rows]) for i in (1, 2, 3))
    assert np.all(np.diff(gap) > 0) and gap[-1] > 0.98  # the gap closes towards 0.98
    assert power[-1] > 1000  # the "> 1000 matvecs where |l2/l1| ~ 0.98"
    assert np.all(lanczos * 10 < power[1:].min())
    # power iteration stops when a step changes x by < 1e-10 in L1, so its own lambda error
    # is about 1e-10 / (1 - |l2/l1|) ~ 1e-8 at the last row
    assert max(float(r[4]) for r in rows) < 1e-7
    rel = float(text.split("relative lambda difference: ")[1].split()[0])
    assert rel < 1e-9
    assert images == 1
    assert elapsed < 120
