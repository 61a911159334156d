"""``quasispecies collapse --base --tuned --prompts``: the embedded model against its own
known tilt served over HTTP (the project's server), through the cache and the budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quasispecies.cli import main
from quasispecies.experiments.base_tuned import TiltedLM
from tests.lm_support import embedded_lm

pytestmark = pytest.mark.lm


@pytest.fixture(scope="module")
def tuned_url():
    from quasispecies.bridge.server import serve

    base = embedded_lm()
    r = np.random.default_rng(3).normal(size=base.vocab_size)
    server, url = serve(TiltedLM(base, r, 0.5))
    yield url
    server.shutdown()
    server.server_close()


def test_base_tuned_command(tuned_url, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("The capital of France is\nOnce upon a time\n")
    argv = ["collapse", "--base", "embedded", "--tuned", tuned_url, "--prompts", str(prompts)]
    argv += ["--depth", "1", "--top-k", "3", "--cache", str(tmp_path / "c")]
    argv += ["--out", str(tmp_path / "o"), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["prompts"] == 2
    assert doc["summary"]["token_fit_r2"] > 1 - 1e-6  # the tuned model is a token tilt
    study = json.loads((tmp_path / "o" / "base_tuned.json").read_text())
    assert study["models"]["tuned"] == tuned_url
    assert (tmp_path / "o" / "base_tuned.png").stat().st_size > 10_000
    chunks = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert main(argv) == 0  # a rerun: every base query served by the cache
    capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == chunks


def test_budget_and_bad_flags(tuned_url, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("The capital of France is\n")
    argv = ["collapse", "--base", "embedded", "--tuned", tuned_url, "--prompts", str(prompts)]
    argv += ["--depth", "2", "--top-k", "2", "--out", str(tmp_path / "o")]
    assert main([*argv, "--cache", str(tmp_path / "c"), "--max-requests", "1"]) == 3
    err = capsys.readouterr().err
    assert "--max-requests: the budget of 1" in err and "kept in" in err
    assert not (tmp_path / "o" / "base_tuned.json").exists()
    assert main(["collapse", "--base", "embedded", "--prompts", str(prompts)]) == 2
    assert "--tuned: required" in capsys.readouterr().err
    assert main([*argv, "--max-requests", "-1"]) == 2
    assert "--max-requests" in capsys.readouterr().err
    assert (
        main(["collapse", "--base", "nope:x", "--tuned", "embedded", "--prompts", str(prompts)])
        == 2
    )
    assert "--base" in capsys.readouterr().err
