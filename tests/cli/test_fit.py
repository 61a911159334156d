"""`quasispecies fit`, end to end through `main(argv)`.

The reference is the closed form of the stationary state-reward fit,
``r_j = T log(x_j / (x K)_j) + c`` (NumPy on the dense kernel), which any positive
population satisfies exactly; 1e-6 because the fit stops at a gradient max-norm of 1e-8.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.cli import main
from tests.reference import dense as brute

T = 0.6


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    S, A = 6, 2
    ns = rng.integers(0, S, size=(S, A))
    ns[:, 0] = (np.arange(S) + 1) % S
    mdp = qs.MDP.from_transitions(ns, rng.normal(size=(S, A)))  # rewards are ignored
    x = rng.dirichlet(np.ones(S) * 3)
    P, _, pi0 = brute.dense_arrays(mdp)
    want = T * np.log(x / np.einsum("s,sa,sat->t", x, pi0, P))
    mdp_file = qs.save_mdp(tmp_path / "m.json", mdp)
    pop_json = tmp_path / "x.json"
    pop_json.write_text(json.dumps({"population": x.tolist()}))
    pop_csv = tmp_path / "x.csv"
    pop_csv.write_text("\n".join(repr(float(v)) for v in x))
    return mdp_file, pop_json, pop_csv, want - want.mean()


def test_fit_json_and_out(files, tmp_path, capsys):
    mdp_file, pop_json, pop_csv, want = files
    out = tmp_path / "fit.json"
    argv = ["fit", str(mdp_file), "--population", str(pop_json), "--temperature", str(T)]
    assert main([*argv, "--json", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(doc["rewards"], want, atol=1e-6)
    assert doc["convex"] and doc["converged"] and doc["horizon"] is None
    assert np.all(np.diff(doc["loss_history"]) <= 1e-12)
    assert json.loads(out.read_text())["rewards"] == doc["rewards"]
    # the same from a CSV file, as a table on stdout
    assert main(["fit", str(mdp_file), "--population", str(pop_csv), "--temperature", str(T)]) == 0
    text = capsys.readouterr().out
    assert "gauge: r -> r + c" in text and "converged" in text


def test_fit_errors(files, tmp_path, capsys):
    mdp_file, pop_json, _, _ = files
    base = ["fit", str(mdp_file), "--temperature", str(T)]
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"pop": [1, 2]}')
    short = tmp_path / "short.json"
    short.write_text("[0.5, 0.5]")
    garbled = tmp_path / "g.csv"
    garbled.write_text("0.1, zero, 0.3")
    cases = [
        ([*base, "--population", str(tmp_path / "none.json")], "--population: "),
        ([*base, "--population", str(tmp_path / "x.parquet")], "--population: expected"),
        ([*base, "--population", str(bad_json)], '"population"'),
        ([*base, "--population", str(short)], "--population: expected shape (6,)"),
        ([*base, "--population", str(garbled)], "--population: "),
        (
            ["fit", str(mdp_file), "--population", str(pop_json), "--temperature", "0"],
            "--temperature: ",
        ),
        ([*base, "--population", str(pop_json), "--horizon", "0"], "--horizon"),
        ([*base, "--population", str(pop_json), "--out", str(tmp_path / "o.txt")], "--out"),
        ([*base, "--population", str(pop_json), "--horizon", "2", "--start", "9"], "--start"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
    assert not (tmp_path / "o.txt").exists()
