"""``quasispecies lm tree --cache DIR --max-requests N``: a budgeted build stops with exit 3
and writes nothing, the same command resumes from the cache, and the table equals the one
built without a cache at the same batch size (the reference)."""

from __future__ import annotations

import pytest

from quasispecies.cli import main

pytestmark = pytest.mark.lm

ARGS = ["lm", "tree", "--prompt", "The capital of France is", "--depth", "2", "--top-k", "2"]


def test_budget_resume_and_rebuild(tmp_path, capsys):
    plain = tmp_path / "plain.csv"
    # the same batching without a cache (other batch shapes move float32 log-probs ~1e-6)
    assert main([*ARGS, "--out", str(plain), "--batch-size", "1", "--json"]) == 0
    out = tmp_path / "t.csv"
    cache = ["--cache", str(tmp_path / "c"), "--batch-size", "1"]
    assert main([*ARGS, "--out", str(out), *cache, "--max-requests", "2"]) == 3
    err = capsys.readouterr().err
    assert "--max-requests: the budget of 2" in err and "kept in" in err
    assert not out.exists()
    assert main([*ARGS, "--out", str(out), *cache, "--max-requests", "1", "--json"]) == 0
    assert out.read_text() == plain.read_text()
    # a rebuild needs no query at all
    out.unlink()
    assert main([*ARGS, "--out", str(out), *cache, "--max-requests", "0", "--json"]) == 0
    assert out.read_text() == plain.read_text()
    capsys.readouterr()
    assert main([*ARGS, "--out", str(out), "--max-requests", "-1"]) == 2
    assert "--max-requests" in capsys.readouterr().err
