"""qs.paths.enumeration against brute force: enumerate (itertools order), num_paths
(counting semiring, exact beyond int64), iter_chunks (streamed, resumable, bounded memory)
and the argument checks, over 240 seeded MDPs x 5 temperatures."""

from __future__ import annotations

import numpy as np
import pytest

import quasispecies as qs
from quasispecies import paths
from tests.reference import dense as brute, paths as pb

TEMPS = np.array(pb.TEMPS)
SEEDS = range(240)


# ----------------------------------------------------------------------- enumeration
@pytest.mark.parametrize("seed", SEEDS)
def test_enumerate_matches_itertools(seed):
    mdp, x0, H = pb.case(seed)
    st_, ac, lp, G = pb.all_paths(mdp, x0, H)
    e = paths.enumerate(mdp, TEMPS, H, x0)
    N = len(G)
    assert e.states.shape == (len(TEMPS), N, H + 1) and e.actions.shape == (len(TEMPS), N, H)
    # Same paths in the same (lexicographic) order.
    np.testing.assert_array_equal(e.states[0], st_)
    np.testing.assert_array_equal(e.actions[0], ac)
    np.testing.assert_allclose(e.log_prior[0], lp, rtol=0, atol=1e-12)
    np.testing.assert_allclose(e.reward[0], G, rtol=0, atol=1e-12)
    for i, T in enumerate(TEMPS):
        # lp + G/T is O(|G| / T): a relative float64 tolerance on that scale.
        np.testing.assert_allclose(e.log_weight[i], pb.log_weight(lp, G, T), rtol=1e-12, atol=1e-12)
    assert paths.num_paths(mdp, H, x0) == N
    one = paths.enumerate(mdp, 0.3, H, x0)
    np.testing.assert_array_equal(one.states, st_)
    np.testing.assert_allclose(one.log_weight, e.log_weight[1], rtol=0, atol=0)


@pytest.mark.parametrize("i", range(12))
def test_enumerate_other_shapes(i):
    mdp, x0, H = pb.zoo_case(i)
    st_, ac, lp, G = pb.all_paths(mdp, x0, H)
    e = paths.enumerate(mdp, 1.0, H, x0)
    np.testing.assert_array_equal(e.states, st_)
    np.testing.assert_array_equal(e.actions, ac)
    np.testing.assert_allclose(e.log_weight, lp + G, rtol=1e-12, atol=1e-12)
    assert paths.num_paths(mdp, H, x0) == len(G)


# ------------------------------------------------------------------ counting semiring
@pytest.mark.parametrize("S,A,H", [(2, 3, 4), (3, 2, 6), (1, 4, 5), (5, 1, 7)])
def test_counting_full_support_is_A_to_the_H(S, A, H):
    mdp = qs.random_mdp(S, A, seed=S * 10 + A)
    assert paths.num_paths(mdp, H, 0) == A**H
    assert paths.num_paths(mdp, H, None) == S * A**H
    # Stochastic, full support: (A S)^H per start state.
    dense = qs.random_mdp(S, A, seed=1, stochastic=True)
    assert paths.num_paths(dense, H, 0) == (A * S) ** H


def test_counting_is_exact_beyond_int64():
    mdp = qs.random_mdp(2, 3, seed=0)
    assert paths.num_paths(mdp, 60, None) == 2 * 3**60  # > 2^63


# ------------------------------------------------------------------------ streaming
def test_iter_chunks_concatenate_to_enumerate_and_resume():
    mdp, x0, H = pb.case(5)
    full = paths.enumerate(mdp, 0.7, H, x0)
    N = full.states.shape[0]
    for size in (1, 7, 1000):
        parts = list(paths.iter_chunks(mdp, 0.7, H, x0, chunk_size=size))
        assert all(p.states.shape[0] <= size for p in parts)
        np.testing.assert_array_equal(np.concatenate([p.states for p in parts]), full.states)
        np.testing.assert_array_equal(np.concatenate([p.actions for p in parts]), full.actions)
        np.testing.assert_array_equal(
            np.concatenate([p.log_weight for p in parts]), full.log_weight
        )
    # An interrupted run resumes from the first unfinished index.
    head = list(paths.iter_chunks(mdp, 0.7, H, x0, chunk_size=5, stop=23))
    tail = list(paths.iter_chunks(mdp, 0.7, H, x0, chunk_size=5, start=23))
    both = np.concatenate([p.states for p in head + tail])
    np.testing.assert_array_equal(both, full.states)
    assert sum(p.states.shape[0] for p in head) == min(23, N)


def test_streaming_runs_in_bounded_memory():
    import tracemalloc

    # 4^10 = 1,048,576 paths; enumerate() would hold ~200 MB, the stream ~3 MB at a time.
    mdp = qs.random_mdp(4, 4, seed=2)
    H, T = 10, 0.5
    assert paths.num_paths(mdp, H, 0) == 4**10
    tracemalloc.start()
    acc, n = pb.streamed_log_sum(
        paths.iter_chunks(mdp, T, H, 0, chunk_size=1 << 14, progress=False)
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 4**10
    assert peak < 20 * 2**20
    want = float(paths.trajectory_stats(mdp, T, H, 0).scaled_log_partition)
    assert T * acc == pytest.approx(want, rel=1e-12)


def test_progress_bar_only_when_asked(capsys):
    mdp, x0, H = pb.case(1)
    paths.enumerate(mdp, 1.0, H, x0, progress=False)
    assert capsys.readouterr().err == ""
    list(paths.iter_chunks(mdp, 1.0, H, x0, chunk_size=4, progress=True))
    assert "path" in capsys.readouterr().err


# ------------------------------------------------------------------------ bad input
def test_bad_input_names_the_argument():
    mdp, x0, _ = pb.case(0)
    for fn in (
        lambda: paths.enumerate(mdp, 1.0, -1, x0),
        lambda: paths.iter_chunks(mdp, 1.0, -1, x0),
        lambda: paths.top_k(mdp, 1.0, -1, 3, x0),
        lambda: paths.trajectory_stats(mdp, 1.0, -1, x0),
        lambda: paths.selected_policy(mdp, 1.0, -1),
        lambda: paths.state_marginals(mdp, 1.0, -1, x0),
        lambda: paths.num_paths(mdp, -1, x0),
    ):
        with pytest.raises(ValueError, match="^horizon"):
            fn()
    for k in (0, -3):
        with pytest.raises(ValueError, match="^k: must be >= 1"):
            paths.top_k(mdp, 1.0, 2, k, x0)
    with pytest.raises(ValueError, match="^k"):
        paths.top_k(mdp, 1.0, 2, 2.5, x0)
    with pytest.raises(ValueError, match="^T"):
        paths.enumerate(mdp, -0.1, 2, x0)
    with pytest.raises(ValueError, match="^x0"):
        paths.enumerate(mdp, 1.0, 2, np.ones(4) / 4)
    with pytest.raises(ValueError, match="^mdp"):
        paths.top_k(brute, 1.0, 2, 1)
    with pytest.raises(ValueError, match="^chunk_size"):
        paths.iter_chunks(mdp, 1.0, 2, x0, chunk_size=0)


def test_refuses_a_result_that_would_not_fit_in_memory():
    mdp = qs.random_mdp(4, 4, seed=0)
    # 4^20 ~ 1e12 paths: tens of TB as arrays; streaming is the way.
    with pytest.raises(ValueError, match=r"^horizon: .*iter_chunks"):
        paths.enumerate(mdp, 1.0, 20, 0)
    with pytest.raises(ValueError, match=r"^horizon: .*max_bytes"):
        paths.enumerate(mdp, 1.0, 5, 0, max_bytes=1000)
    assert paths.enumerate(mdp, 1.0, 5, 0, max_bytes=None).states.shape == (4**5, 6)
    # Beyond 2^62 paths not even a stream is attempted.
    with pytest.raises(ValueError, match="^horizon: .*cannot be enumerated"):
        paths.iter_chunks(mdp, 1.0, 40, 0)
