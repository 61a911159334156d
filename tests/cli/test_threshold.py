"""``quasispecies threshold``: JSON/CSV output vs the library and closed forms; bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.cli import main


def test_threshold_json(capsys, tmp_path):
    out = tmp_path / "curves.json"
    rc = main(
        [
            "threshold",
            "--length",
            "10",
            "50",
            "--sigma",
            "10",
            "--mu",
            "0.01:0.05:5",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    assert doc == {**json.loads(out.read_text()), "files": [str(out)]}
    assert doc["lengths"] == [10, 50]
    np.testing.assert_allclose(doc["mu"], np.linspace(0.01, 0.05, 5), rtol=1e-15)
    for c in doc["curves"]:
        L = c["length"]
        assert c["threshold"] == pytest.approx(1 - 10 ** (-1 / L), rel=1e-14)
        assert c["threshold_approx"] == pytest.approx(math.log(10) / L, rel=1e-14)
        for mu, x0, fbar in zip(doc["mu"], c["master_frequency"], c["mean_fitness"], strict=True):
            ss = qs.single_peak(qs.SequenceSpace(L, mu), 10.0).steady_state()
            assert x0 == pytest.approx(ss.population[0], rel=1e-12)
            assert fbar == pytest.approx(math.exp(ss.log_growth), rel=1e-10)
    # shared/reference/eigen_single_peak.json, key "L50_sigma10": mu = 0.01 -> x0 = 0.5615
    assert doc["curves"][1]["master_frequency"][0] == pytest.approx(0.5615, abs=5e-5)


def test_threshold_csv_and_table(capsys, tmp_path):
    out = tmp_path / "curves.csv"
    assert (
        main(
            [
                "threshold",
                "--length",
                "4,8",
                "--sigma",
                "2",
                "--mu",
                "0:0.2:3",
                "--alphabet",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "mu_c = 1 - sigma^(-1/L)" in text and "wrote" in text
    rows = out.read_text().splitlines()
    assert len(rows) == 1 + 2 * 3
    L, mu, x0 = rows[-1].split(",")[:3]
    ss = qs.single_peak(qs.SequenceSpace(int(L), float(mu), alphabet=3), 2.0).steady_state()
    assert float(x0) == pytest.approx(ss.population[0], rel=1e-12)


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["--length", "0", "--sigma", "10", "--mu", "0:0.1:3"], "--length"),
        (["--length", "ten", "--sigma", "10", "--mu", "0:0.1:3"], "--length"),
        (["--length", "10", "--sigma", "1", "--mu", "0:0.1:3"], "--sigma"),
        (["--length", "10", "--sigma", "10", "--mu", "0:1.5:3"], "--mu"),
        (["--length", "10", "--sigma", "10", "--mu=-0.1:0.1:3"], "--mu"),
        (["--length", "10", "--sigma", "10", "--mu", "0.1:0.01:3"], "--mu"),
        (["--length", "10", "--sigma", "10", "--mu", "0:0.1:0"], "--mu"),
        (["--length", "10", "--sigma", "10", "--mu", "0.1"], "--mu"),
        (["--length", "10", "--sigma", "10", "--mu", "0:0.1:3", "--alphabet", "1"], "--alphabet"),
    ],
)
def test_threshold_bad_input(argv, what, capsys, tmp_path):
    out = tmp_path / "x.json"
    rc = main(["threshold", *argv, "--out", str(out), "--json"])
    assert rc == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"quasispecies threshold: error: {what}" in captured.err
    assert list(tmp_path.iterdir()) == []  # no partial output


def test_threshold_bad_out_suffix(capsys, tmp_path):
    rc = main(
        [
            "threshold",
            "--length",
            "5",
            "--sigma",
            "3",
            "--mu",
            "0:0.1:2",
            "--out",
            str(tmp_path / "x.txt"),
        ]
    )
    assert rc == 2 and "--out" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
