"""The shared CLI plumbing (quasispecies.cli.options): one parser per kind of value, every
error naming the flag with its dashes, one JSON encoding; and each subcommand using it."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.cli import build_parser, main
from quasispecies.cli.options import (
    flag_errors,
    parse_grid,
    parse_range,
    parse_temperatures,
    print_json,
)


def test_parse_temperatures_forms():
    np.testing.assert_array_equal(parse_temperatures("1, 0.1,0"), [1.0, 0.1, 0.0])
    np.testing.assert_array_equal(parse_temperatures("geom:0.01:1:3"), np.geomspace(0.01, 1, 3))
    np.testing.assert_array_equal(parse_temperatures("lin:0:1:5"), np.linspace(0, 1, 5))
    assert parse_temperatures("0").tolist() == [0.0]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("abc", "cannot parse"),
        ("", "no value given"),
        (" , ", "no value given"),
        ("1,-1", "temperature must be >= 0, got -1.0"),
        ("-1", "temperature must be >= 0"),
        ("lin:-1:1:3", "temperature must be >= 0"),
        ("1,nan", "finite"),
        ("inf", "finite"),
        ("geom:0:1:3", "LO > 0"),
        ("geom:1:2", "cannot parse"),
        ("geom:1:2:3:4", "cannot parse"),
        ("lin:0:1:0", "N must be >= 1"),
        ("lin:0:1:x", "cannot parse"),
    ],
)
def test_parse_temperatures_errors_name_the_flag(text, needle):
    with pytest.raises(ValueError, match=r"^--temperatures: ") as err:
        parse_temperatures(text)
    assert needle in str(err.value)
    with pytest.raises(ValueError, match=r"^--taus: "):
        parse_temperatures(text, "--taus")


def test_parse_grid_allows_negative_values():
    np.testing.assert_array_equal(parse_grid("-1,2", "--x"), [-1.0, 2.0])


def test_parse_range():
    np.testing.assert_array_equal(parse_range("0.01:0.05:5"), np.linspace(0.01, 0.05, 5))
    assert parse_range("0.2:0.3:1").tolist() == [0.2]
    np.testing.assert_array_equal(parse_range("-2:2:3", "--x", bounds=(-5, 5)), [-2, 0, 2])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("0.1", "cannot parse"),
        ("a:b:c", "cannot parse"),
        ("0:0.1:2.5", "cannot parse"),
        ("0:0.1:3:4", "cannot parse"),
        ("0:1.5:3", "must lie in [0, 1]"),
        ("-0.1:0.1:3", "must lie in [0, 1]"),
        ("0.1:0.01:3", "LO must be <= HI"),
        ("0:0.1:0", "N must be >= 1"),
        ("nan:0.1:3", "finite"),
    ],
)
def test_parse_range_errors_name_the_flag(text, needle):
    with pytest.raises(ValueError, match=r"^--mu: ") as err:
        parse_range(text)
    assert needle in str(err.value)


def test_flag_errors_relabels_only_the_named_argument():
    with pytest.raises(ValueError, match=r"^--top-k: expected"), flag_errors({"top_k": "--top-k"}):
        raise ValueError("top_k: expected a positive integer, got 0")
    with pytest.raises(ValueError, match=r"^top_kk: x$"), flag_errors({"top_k": "--top-k"}):
        raise ValueError("top_kk: x")
    with pytest.raises(KeyError), flag_errors({"top_k": "--top-k"}):
        raise KeyError("top_k")


def test_print_json_infinity_tokens(capsys):
    doc = {"a": np.array([1.0, np.inf, -np.inf, np.nan]), "b": np.int64(3), "t": "é"}
    assert print_json(doc) == 0
    text = capsys.readouterr().out
    assert text.endswith("\n") and text.count("\n") == 1
    # +-inf as JSON's Infinity extension (floats when parsed), NaN as null, no NaN token
    assert "[1.0, Infinity, -Infinity, null]" in text and "NaN" not in text
    assert json.loads(text) == {"a": [1.0, math.inf, -math.inf, None], "b": 3, "t": "é"}
    assert "\\u00e9" in text  # ASCII by default ...
    print_json(doc, ensure_ascii=False)
    assert '"é"' in capsys.readouterr().out  # ... token text kept as it is for `lm`


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def test_every_flag_has_help_and_every_command_a_description():
    top = build_parser()
    seen = []
    stack = list(_subparsers(top))
    while stack:
        name, p = stack.pop()
        seen.append(name)
        assert p.description and len(p.description) > 20, name
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and len(action.help) > 5, (name, action.option_strings)
        stack += list(_subparsers(p))
    assert {"demo", "sweep", "paths", "limit", "threshold", "lm", "collapse", "chain"} <= set(seen)
    assert {"tree", "score", "next", "decode", "parse", "figures", "serve"} <= set(seen)
    assert all(
        "--json" in p.format_help() for name, p in _subparsers(top) if name != "lm"
    )  # the contract: every subcommand takes --json


@pytest.fixture
def grid_file(tmp_path):
    return qs.save_mdp(tmp_path / "grid.npz", qs.grid_world(3, 4, goal=(2, 3)))


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["sweep", "{mdp}", "--temperatures", "-1"], "--temperatures: temperature must be >= 0"),
        (["sweep", "{mdp}", "--temperatures=1,x"], "--temperatures: cannot parse"),
        (["sweep", "{mdp}", "--temperatures", "1", "--horizon", "-1"], "--horizon: must be >= 0"),
        (["sweep", "{mdp}", "--temperatures", "1", "--out", "{tmp}/r.txt"], "--out: expected"),
        (["sweep", "{mdp}", "--temperatures", "1", "--checkpoint", "{tmp}/c.json"], "--checkpoint"),
        (["sweep", "{tmp}/missing.npz", "--temperatures", "1"], "MDP_FILE: "),
        (["paths", "{mdp}", "--temperature", "nan", "--horizon", "2"], "--temperature: "),
        (["paths", "{mdp}", "--temperature", "1", "--horizon", "2", "--top", "0"], "--top: "),
        (["limit", "{mdp}", "--temperatures=-0.5"], "--temperatures: temperature must be >= 0"),
        (["limit", "{mdp}", "--start", "-1"], "--start: state -1 is outside"),
        (["threshold", "--length", "5", "--sigma", "2", "--mu", "0:0.1"], "--mu: cannot parse"),
        (["threshold", "--length", "5", "--sigma", "inf", "--mu", "0:0.1:2"], "--sigma: "),
        (["collapse", "--n", "1", "--out", "{tmp}"], "--n: must be >= 2"),
        (["collapse", "--seed", "-1", "--out", "{tmp}"], "--seed: must be >= 0"),
        (["collapse", "--strengths=-1,2", "--out", "{tmp}"], "--strengths: must be >= 0"),
        (["collapse", "--taus", "geom:0:1:3", "--out", "{tmp}"], "--taus: geom:LO:HI:N"),
        (["collapse", "--lm", "--depth", "0", "--out", "{tmp}"], "--depth: must be >= 1"),
        (["chain", "--limit", "0", "--figures", "{tmp}"], "--limit: must be >= 1"),
        (["chain", "--rounds", "-1", "--figures", "{tmp}"], "--rounds: must be >= 0"),
        (["chain", "--threshold", "high", "--figures", "{tmp}"], "--threshold: "),
        (["chain", "--threshold", "nan", "--figures", "{tmp}"], "--threshold: "),
        (["chain", "--no-run", "--result", "{tmp}/bad.json"], "--result: "),
        (["chain", "--questions", "{tmp}/none.jsonl", "--figures", "{tmp}"], "--questions: "),
        (["lm", "decode", "--prompt", "x", "--temperatures", "-1"], "--temperatures: "),
        (
            ["lm", "tree", "--prompt", "x", "--depth", "1", "--top-k", "1", "--out", "t.txt"],
            "--out",
        ),
        (["lm", "next", "--prompt", "x", "--gguf", "{tmp}/none.gguf"], "--gguf: no such file"),
        (["lm", "parse", "{tmp}/none.json"], "RESPONSE: "),
        (["lm", "serve", "--port", "70000"], "--port: must be in [0, 65535]"),
    ],
)
def test_flag_errors_exit_2_naming_the_flag(argv, flag, grid_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(mdp=grid_file, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr()
    assert err.out == ""
    assert err.err.startswith(f"quasispecies {argv[0]}: error: {flag}"), err.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
