"""Result-file JSON: +-inf as the Infinity/-Infinity extension tokens, NaN as null, and
every reader accepting both that and the older "inf"/"-inf" strings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.dynamics.sweep import load_result, save_result
from quasispecies.model.files import dump_json, from_jsonable, jsonable, read_json, write_json


def test_jsonable_keeps_infinities_as_floats():
    doc = jsonable({"x": np.array([np.inf, -np.inf, np.nan, 2.0]), "y": np.float32(np.inf)})
    assert doc == {"x": [math.inf, -math.inf, None, 2.0], "y": math.inf}


def test_dump_json_writes_infinity_tokens():
    text = dump_json({"a": [np.inf, -np.inf, np.nan]})
    assert text == '{"a": [Infinity, -Infinity, null]}'
    # what Python's json module (the reference parser) reads back: floats, not text
    back = json.loads(text)["a"]
    assert back[0] == math.inf and back[1] == -math.inf and back[2] is None


def test_write_then_read_json_round_trip(tmp_path):
    path = write_json(tmp_path / "r.json", {"v": np.array([1.5, np.inf, -np.inf, np.nan])})
    assert "Infinity" in path.read_text()
    assert read_json(path) == {"v": [1.5, math.inf, -math.inf, None]}


def test_read_json_accepts_the_old_inf_strings(tmp_path):
    # files written before the Infinity convention: jsonable wrote "inf"/"-inf"
    path = tmp_path / "old.json"
    path.write_text('{"v": ["inf", "-inf", null, 3.0], "name": "infinite", "n": {"k": "inf"}}')
    assert read_json(path) == {
        "v": [math.inf, -math.inf, None, 3.0],
        "name": "infinite",
        "n": {"k": math.inf},
    }
    assert from_jsonable(["Infinity", "-Infinity", "x"]) == [math.inf, -math.inf, "x"]


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        read_json(bad)
    raw = tmp_path / "raw.json"
    raw.write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="raw.json: not UTF-8"):
        read_json(raw)


@pytest.fixture
def sweep_result():
    mdp = qs.grid_world(3, 4, goal=(2, 3), walls=[(1, 1)])
    return qs.sweep.temperature_sweep(mdp, [1.0, 0.1, 0.0])


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_sweep_result_round_trip(sweep_result, tmp_path, suffix):
    # T = 0 gives log_growth = +inf (max-plus eigenvalue 1 > 0): the value under test
    assert sweep_result["log_growth"][-1] == math.inf
    path = save_result(tmp_path / f"res{suffix}", sweep_result)
    back = load_result(path)
    assert set(back) == set(sweep_result)
    for k, v in sweep_result.items():
        np.testing.assert_array_equal(back[k], np.asarray(v), err_msg=k)


def test_sweep_load_result_reads_old_json(tmp_path):
    path = tmp_path / "old.json"
    path.write_text('{"log_growth": [0.5, "inf"], "x": [1.0, null], "critical": [true, false]}')
    back = load_result(path)
    np.testing.assert_array_equal(back["log_growth"], [0.5, np.inf])
    np.testing.assert_array_equal(back["x"], [1.0, np.nan])
    assert back["critical"].dtype == bool
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="old.json: expected a JSON object"):
        load_result(path)
