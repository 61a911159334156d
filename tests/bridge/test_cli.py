"""`quasispecies lm ...` end to end, and `lm tree` -> `sweep` on the written table."""

from __future__ import annotations

import json

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.cli import main
from tests.lm_support import FIXTURES, PROMPT, embedded_lm

pytestmark = pytest.mark.lm


@pytest.fixture(scope="module", autouse=True)
def _warm():
    embedded_lm()  # the CLI's default_lm() is the same cached object


def test_lm_tree_then_sweep(tmp_path, capsys):
    out = tmp_path / "tree.csv"
    args = [
        "lm",
        "tree",
        "--prompt",
        PROMPT,
        "--depth",
        "2",
        "--top-k",
        "3",
        "--out",
        str(out),
        "--json",
    ]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["states"] == 13 and doc["leaves"] == 9 and out.is_file()
    mdp, x0 = qs.load_mdp(out)
    assert x0[0] == 1.0 and mdp.labels[0] == ""
    lm = embedded_lm()
    tree = qs.bridge.token_tree(lm, PROMPT, 2, 3)
    assert mdp.labels == tree.mdp.labels
    assert doc["map"]["text"] == tree.texts[qs.bridge.map_leaf(tree)[0]]
    # the written table runs through `quasispecies sweep`
    assert main(["sweep", str(out), "--temperatures", "1,0", "--horizon", "2", "--json"]) == 0
    sweep = json.loads(capsys.readouterr().out)
    pop = np.asarray(sweep["population"], dtype=float)
    leaves = tree.leaves
    p = np.exp(tree.logprob[leaves])
    np.testing.assert_allclose(pop[0][leaves], p / p.sum(), rtol=1e-12, atol=0)
    assert pop[1][qs.bridge.map_leaf(tree)[0]] == 1.0


def test_lm_tree_human_output(tmp_path, capsys):
    out = tmp_path / "tree.parquet"
    assert (
        main(["lm", "tree", "--prompt", PROMPT, "--depth", "1", "--top-k", "2", "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "token tree: 3 states" in text and "MAP" in text and out.is_file()


def test_lm_score_next_decode_parse(capsys):
    assert main(["lm", "score", "--prompt", PROMPT, "--continuation", " Paris.", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert abs(doc["logprob"] - (-0.638)) < 1e-3 and doc["tokens"] == [" Paris", "."]
    assert main(["lm", "next", "--prompt", PROMPT, "--top-k", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tokens"][0] == " Paris" and len(doc["logprobs"]) == 3
    assert (
        main(
            [
                "lm",
                "decode",
                "--prompt",
                "Once upon a time",
                "--depth",
                "3",
                "--top-k",
                "5",
                "--temperatures",
                "0,1",
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["map"]["text"] == ", there was" and doc["greedy_is_map"] is False
    assert doc["sequence_entropy"][0] == 0.0
    assert main(["lm", "parse", str(FIXTURES / "openai_completions_echo.json"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "openai.completions" and doc["logprobs"][0] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lm", "score", "--prompt", "", "--continuation", "x"], "prompt: empty"),
        (
            ["lm", "tree", "--prompt", "hi", "--depth", "0", "--top-k", "2", "--out", "t.csv"],
            "depth",
        ),
        (
            ["lm", "tree", "--prompt", "hi", "--depth", "1", "--top-k", "2", "--out", "t.txt"],
            "--out",
        ),
        (["lm", "decode", "--prompt", "hi", "--temperatures", "a,b"], "--temperatures"),
        (["lm", "parse", "missing.json"], "does not exist"),
        (["lm", "next", "--prompt", "hi", "--gguf", "missing.gguf"], "no such file"),
    ],
)
def test_lm_errors_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_lm_parse_malformed(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text('{"choices": [{"logprobs": {"tokens": ["a"')
    assert main(["lm", "parse", str(bad)]) == 2
    assert "malformed or truncated JSON" in capsys.readouterr().err
