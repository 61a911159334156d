"""`quasispecies paths` and `quasispecies limit`, end to end through `main(argv)`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import quasispecies as qs
from quasispecies import paths, rl
from quasispecies.cli import main


@pytest.fixture
def forest_file(tmp_path):
    return qs.save_mdp(tmp_path / "forest.json", rl.forest())


def test_paths_json_matches_the_api(forest_file, capsys):
    argv = ["paths", str(forest_file), "--temperature", "0.5", "--horizon", "4", "--start", "0"]
    assert main([*argv, "--top", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    mdp = rl.forest()
    assert doc["num_paths"] == paths.num_paths(mdp, 4, 0) == 81
    best = paths.top_k(mdp, 0.5, 4, 3, 0)
    assert [r["states"] for r in doc["top"]] == best.states.tolist()
    st = paths.trajectory_stats(mdp, 0.5, 4, 0)
    assert doc["scaled_log_partition"] == pytest.approx(float(st.scaled_log_partition), rel=1e-14)
    assert doc["entropy"] == pytest.approx(float(st.entropy), rel=1e-14)
    # probabilities of the listed paths: exp(log weight - log Z)
    e = paths.enumerate(mdp, 0.5, 4, 0)
    p = np.exp(e.log_weight - float(st.scaled_log_partition) / 0.5)
    assert doc["top"][0]["probability"] == pytest.approx(p.max(), rel=1e-12)
    v = rl.finite_horizon_values(mdp, 4)
    assert doc["expected_value"] == pytest.approx(v.expected[0])
    assert doc["optimistic_value"] == pytest.approx(v.optimistic[0])
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "V+_H" in text and "rank" in text


def test_paths_out_streams_every_path(forest_file, tmp_path, capsys):
    out = tmp_path / "all.csv"
    argv = ["paths", str(forest_file), "--temperature", "0", "--horizon", "3", "--start", "2"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    assert "wrote 27 paths" in capsys.readouterr().out
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    e = paths.enumerate(rl.forest(), 0.0, 3, 2)
    assert len(rows) == 27
    assert [list(map(int, r["states"].split())) for r in rows] == e.states.tolist()
    np.testing.assert_array_equal([float(r["log_weight"]) for r in rows], e.log_weight)
    jl = tmp_path / "all.jsonl"
    assert main([*argv, "--out", str(jl), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["written"] == 27
    assert json.loads(jl.read_text().splitlines()[5])["states"] == e.states[5].tolist()
    # T = 0: the best paths share the probability by their prior weight.
    assert sum(r["probability"] for r in doc["top"]) == pytest.approx(1.0)


def test_limit_table_json_and_figures(forest_file, tmp_path, capsys):
    argv = ["limit", str(forest_file), "--temperatures", "1,0.1,0", "--horizon", "5"]
    assert main(argv) == 0
    assert "max cycle mean mu* = 4.000000" in capsys.readouterr().out
    out = tmp_path / "lim"
    assert main([*argv, "--json", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["max_cycle_mean"] == 4.0 and doc["cycle"]["states"] == [2]
    assert doc["scaled_log_total"][-1] == pytest.approx(doc["optimistic_value"])
    assert doc["optimistic_value"] > doc["expected_value"]
    for name in ("limit_report.json", "limit_growth.png", "limit_policy.png", "limit_gap.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "limit_report.json").read_text())["horizon"] == 5


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--temperature", "-1", "--horizon", "2"], "--temperature"),
        (["--temperature", "1", "--horizon", "-2"], "--horizon"),
        (["--temperature", "1", "--horizon", "2", "--top", "0"], "--top"),
        (["--temperature", "1", "--horizon", "2", "--start", "9"], "--start"),
        (["--temperature", "1", "--horizon", "2", "--out", "x.txt"], "--out"),
    ],
)
def test_paths_bad_arguments(forest_file, capsys, extra, needle):
    assert main(["paths", str(forest_file), *extra]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--temperatures", "1,-0.5"], "--temperatures"),
        (["--horizon", "-1"], "--horizon"),
        (["--start", "5"], "--start"),
    ],
)
def test_limit_bad_arguments(forest_file, capsys, extra, needle):
    assert main(["limit", str(forest_file), *extra]) == 2
    assert needle in capsys.readouterr().err
