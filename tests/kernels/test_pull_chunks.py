"""Temperatures side by side in the linear pull kernel: each column is the lone run, bitwise."""

from __future__ import annotations

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.kernels import pull


def _mdps():
    rng = np.random.default_rng(11)
    S, A = 700, 3
    det = qs.MDP.from_transitions(rng.integers(0, S, (S, A)), rng.standard_normal((S, A)))
    ns = rng.integers(0, S, (S, A, 2))
    ns[:, 0, 0] = 5  # a sink with in-degree > MAX_WIDTH: the segment-reduction tail
    sto = qs.MDP.from_successors(ns, rng.dirichlet(np.ones(2), (S, A)), rng.random((S, A)))
    return {"det": det, "stoch": sto}, rng.dirichlet(np.ones(S))


@pytest.mark.parametrize("kind", ["det", "stoch"])
@pytest.mark.parametrize("history", [False, True])
def test_chunked_sweep_is_bitwise_the_one_temperature_runs(kind, history):
    mdps, x0 = _mdps()
    mdp = mdps[kind]
    # 11 temperatures: a chunk of 8 and a padded one; the lowest trip the guard inside a
    # chunk (redone on the log kernel), T = 0 runs on the pair kernel
    Ts = np.concatenate([np.geomspace(5e-4, 20.0, 10), [0.0]])
    assert pull.chunk_size(pull.pull_operator(mdp), 10) == 8
    got = pull.horizon(mdp, Ts, 30, x0, history=history)
    assert {"linear", "log", "pair"} <= set(got.kernel), got.kernel
    for i, T in enumerate(Ts):
        one = pull.horizon(mdp, [T], 30, x0, history=history)
        assert one.kernel[0] == got.kernel[i]
        np.testing.assert_array_equal(got.u[i], one.u[0])
        np.testing.assert_array_equal(got.x[i], one.x[0])
        if history:
            np.testing.assert_array_equal(got.history[i], one.history[0])
    # and the chunked linear kernel against the log-domain recursion (independent kernel)
    lin = got.kernel == "linear"
    ref = pull.horizon(mdp, Ts[lin], 30, x0, kernel="log")
    np.testing.assert_allclose(got.u[lin], ref.u, rtol=0, atol=1e-10)


def test_chunk_size_is_a_power_of_two_within_the_memory_budget(monkeypatch):
    mdps, _ = _mdps()
    op = pull.pull_operator(mdps["stoch"])
    assert [pull.chunk_size(op, k) for k in (0, 1, 2, 3, 5, 8, 9, 100)] == [1, 1, 2, 4, 8, 8, 8, 8]
    slots = sum(int(np.prod(p.shape[1:])) for p in op.preds) + int(op.tail_src.shape[1])
    monkeypatch.setattr(pull, "CHUNK_BYTES", 3 * 8 * slots)  # room for 3 columns: 2
    assert pull.chunk_size(op, 32) == 2
    monkeypatch.setattr(pull, "CHUNK_BYTES", 8 * slots - 1)  # not even one: one at a time
    assert pull.chunk_size(op, 32) == 1
    # a history per column counts against the same budget
    monkeypatch.setattr(pull, "CHUNK_BYTES", 4 * (8 * slots + 1000))
    assert pull.chunk_size(op, 32) == 4 and pull.chunk_size(op, 32, 1000) == 4
    assert pull.chunk_size(op, 32, 1001) == 2


def test_population_false_leaves_x_out_and_keeps_u():
    mdps, x0 = _mdps()
    Ts = np.array([1e-3, 0.5, 2.0, 0.0])
    full = pull.horizon(mdps["stoch"], Ts, 20, x0)
    lean = pull.horizon(mdps["stoch"], Ts, 20, x0, population=False)
    assert lean.x is None and full.x is not None
    np.testing.assert_array_equal(lean.u, full.u)
    assert list(lean.kernel) == list(full.kernel)
