"""Fitness tables (CSV, JSONL, Parquet) <-> MDP: exact round trips and clear errors."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import quasispecies as qs
from quasispecies.model.tables import (
    Table,
    load_table_mdp,
    mdp_to_table,
    read_table,
    table_to_mdp,
    write_table,
)

EXTS = ("csv", "jsonl", "parquet")


def _random_stochastic(seed: int, S=5, A=3):
    rng = np.random.default_rng(seed)
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.5)
    P[:, :, 0] += 0.1
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(S, A, S))
    pi0 = rng.random((S, A))
    pi0 /= pi0.sum(axis=1, keepdims=True)
    return qs.MDP(P, R, pi0)


def _same_mdp(a, b):
    np.testing.assert_array_equal(a.P, b.P)
    np.testing.assert_array_equal(a.pi0, b.pi0)
    live = a.P > 0
    np.testing.assert_array_equal(
        np.broadcast_to(a.R, live.shape)[live]
        if a.R.ndim == 3
        else np.broadcast_to(a.R[:, :, None], live.shape)[live],
        np.broadcast_to(b.R, live.shape)[live]
        if b.R.ndim == 3
        else np.broadcast_to(b.R[:, :, None], live.shape)[live],
    )


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("seed", range(4))
def test_stochastic_mdp_round_trip(tmp_path, ext, seed):
    mdp = _random_stochastic(seed)
    x0 = np.random.default_rng(seed).dirichlet(np.ones(5))
    path = tmp_path / f"m.{ext}"
    write_table(path, mdp, x0=x0)
    back, x0b = qs.load_mdp(path)  # io.load_mdp dispatches to tables.load_table_mdp
    _same_mdp(mdp, back)
    np.testing.assert_array_equal(x0, x0b)
    assert back.labels == list(range(5))
    table = read_table(path)
    assert table.prob is not None and table.pi0 is not None and table.x0 is not None
    # the population dynamics of both agree exactly
    np.testing.assert_array_equal(qs.evolve(mdp, 0.5, 4, x0), qs.evolve(back, 0.5, 4, x0b))


@pytest.mark.parametrize("ext", EXTS)
def test_string_labels_and_tricky_text(tmp_path, ext):
    labels = ["", "a,b", 'quote "x"', "new\nline", "ünï 😀", "  spaced  "]
    S = len(labels)
    ns = np.array([[(s + 1) % S, s] for s in range(S)])
    R = np.array([[-0.1 * s, -math.inf if s == 2 else 1.5] for s in range(S)])
    mdp = qs.MDP.from_transitions(ns, R)
    mdp.labels = labels
    acts = [["go", "stay"] for _ in range(S)]
    table = mdp_to_table(mdp, labels=labels, action_labels=acts)
    assert table.prob is None and table.pi0 is None  # deterministic, uniform pi0
    assert len(table) == 2 * S - 1  # the -inf action is not a row
    path = tmp_path / f"t.{ext}"
    write_table(path, table)
    assert read_table(path) == table  # exact, labels and floats
    back, x0 = load_table_mdp(path)
    assert x0 is None and back.labels == labels
    assert back.action_labels[2] == ["go"]
    np.testing.assert_array_equal(back.allowed, mdp.allowed)
    np.testing.assert_array_equal(back.next_state[back.allowed], mdp.next_state[mdp.allowed])
    np.testing.assert_array_equal(back.reward[back.allowed], mdp.reward[mdp.allowed])


def test_float_values_survive_exactly(tmp_path):
    vals = np.array([0.1, 1 / 3, -1e-300, 5e-324, 1e308, -2.5, np.nextafter(1.0, 2.0)])
    n = len(vals)
    table = Table(
        state=list(range(n)),
        action=[0] * n,
        next_state=[(i + 1) % n for i in range(n)],
        reward=vals,
    )
    for ext in EXTS:
        write_table(tmp_path / f"f.{ext}", table)
        back = read_table(tmp_path / f"f.{ext}")
        assert back == table and np.array_equal(back.reward, vals)


@settings(max_examples=30, deadline=None)
@given(
    S=st.integers(1, 6),
    A=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
    ext=st.sampled_from(EXTS),
)
def test_random_deterministic_round_trip(tmp_path_factory, S, A, seed, ext):
    rng = np.random.default_rng(seed)
    ns = rng.integers(0, S, size=(S, A))
    R = np.round(rng.normal(size=(S, A)), int(rng.integers(0, 17)))
    mdp = qs.MDP.from_transitions(ns, R)
    path = tmp_path_factory.mktemp("h") / f"r.{ext}"
    write_table(path, mdp)
    back, _ = load_table_mdp(path)
    np.testing.assert_array_equal(back.next_state[:, :, 0], ns)
    np.testing.assert_array_equal(back.reward[:, :, 0], R)
    assert mdp_to_table(back) == mdp_to_table(mdp)


def _write_csv(path, text):
    path.write_text(text)
    return path


BAD_TABLES = [
    ("state,action,next_state\n0,0,0\n", r"missing column\(s\) \['reward'\]"),
    ("state,action,next_state,reward\n0,0,1,0.5\n", "unknown state 1 in column 'next_state'"),
    (
        "state,action,next_state,reward,prob\n0,0,0,1,-0.5\n0,0,1,1,1.5\n1,0,0,0,1\n",
        "negative probability -0.5",
    ),
    ("state,action,next_state,reward,prob\n0,0,0,1,0.5\n0,0,1,1,0.4\n1,0,0,0,1\n", "sum to 0.9"),
    ("state,action,next_state,reward\n0,0,0,1\n0,0,0,2\n", "lists the same next_state twice"),
    (
        "state,action,next_state,reward\n0,0,0,1\n0,0,1,2\n1,0,1,0\n",
        "has 2 rows but the table has no 'prob'",
    ),
    ("state,action,next_state,reward\n0,0,0,abc\n", "'abc' is not a number"),
    ("state,action,next_state,reward\n0,0,0,nan\n", "is NaN"),
    ("state,action,next_state,reward\n0,0,0,inf\n", r"\+inf"),
    ("state,action,next_state,reward\n", "no rows"),
    ("", "empty file"),
    ("state,action,next_state,reward\n0,0,0\n", "line 2 has 3 fields"),
    ("state,action,next_state,reward,x0\n0,0,1,0,0.5\n1,0,0,0,0.4\n", "x0 sums to 0.9"),
    ("state,action,next_state,reward,pi0\n0,a,0,0,0.5\n0,b,0,0,0.6\n", "pi0"),
    ("state,state,action,next_state,reward\n", "duplicate column"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TABLES)
def test_bad_csv_tables(tmp_path, text, message):
    path = _write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message):
        qs.load_mdp(path)


def test_bad_jsonl_and_parquet(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"state": "a", "action": 0, "next_state": "a", "reward": 0}\n{"state": "b", "act')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_table(p)
    p.write_text('{"state": "a", "action": 0, "next_state": "a", "reward": 0}\n[1, 2]\n')
    with pytest.raises(ValueError, match="line 2 is not a JSON object"):
        read_table(p)
    p.write_text('{"state": "a", "action": 0, "next_state": 1, "reward": 0}\n')
    with pytest.raises(ValueError, match="state labels are str but next_state labels are int"):
        load_table_mdp(p)
    p.write_text(
        '{"state": "a", "action": 0, "next_state": "a", "reward": 0}\n'
        '{"state": 3, "action": 0, "next_state": "a", "reward": 0}\n'
    )
    with pytest.raises(ValueError, match="mixes string and integer labels"):
        read_table(p)
    p.write_text('{"state": "a", "action": 0, "next_state": "a"}\n')
    with pytest.raises(ValueError, match="row 0 lacks column 'reward'|missing column"):
        read_table(p)
    p.write_text(
        '{"state": "a", "action": 0, "next_state": "a", "reward": "-inf"}\n'
        '{"state": "a", "action": 1, "next_state": "a", "reward": -1.0}\n'
    )
    t = read_table(p)
    assert t.reward[0] == -math.inf
    q = tmp_path / "bad.parquet"
    q.write_bytes(b"PAR1 garbage")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        read_table(q)
    with pytest.raises(ValueError, match="unknown table type"):
        read_table(_write_csv(tmp_path / "x.tsv", "a"))
    with pytest.raises(ValueError, match="does not exist"):
        read_table(tmp_path / "missing.csv")


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    good = mdp_to_table(qs.MDP.from_transitions(np.array([[0]]), np.array([[1.0]])))
    write_table(path, good)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_table(path, Table(state=[0], action=[0], next_state=[0], reward=np.array([2.0])))
    assert path.read_bytes() == before  # old file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]  # no temp file left


def test_write_argument_checks(tmp_path):
    mdp = qs.MDP.from_transitions(np.array([[0]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="unknown table type"):
        write_table(tmp_path / "t.txt", mdp)
    with pytest.raises(ValueError, match="table: expected a Table or an MDP"):
        write_table(tmp_path / "t.csv", {"state": [0]})
    with pytest.raises(ValueError, match="labels: state labels must be unique"):
        mdp_to_table(
            qs.MDP.from_transitions(np.array([[1], [0]]), np.zeros((2, 1))), labels=["a", "a"]
        )
    with pytest.raises(ValueError, match="x0"):
        mdp_to_table(mdp, x0=[0.5])
    with pytest.raises(ValueError, match="state 0 has no allowed action"):
        mdp_to_table(qs.MDP.from_transitions(np.array([[0]]), np.array([[-np.inf]])))


def test_rows_and_columns():
    t = Table(
        state=["a", "a"],
        action=["x", "y"],
        next_state=["a", "a"],
        reward=np.array([0.0, -1.0]),
        x0=np.array([1.0, 1.0]),
    )
    assert t.columns == ["state", "action", "next_state", "reward", "x0"]
    assert t.rows()[1] == {
        "state": "a",
        "action": "y",
        "next_state": "a",
        "reward": -1.0,
        "x0": 1.0,
    }
    mdp, x0 = table_to_mdp(t)
    assert mdp.num_states == 1 and mdp.num_actions == 2 and x0.tolist() == [1.0]
    assert json.loads(json.dumps(t.rows()))  # JSON-serialisable
    with pytest.raises(ValueError, match="action: column has 1 rows"):
        Table(state=["a", "b"], action=["x"], next_state=["a", "b"], reward=np.zeros(2))
