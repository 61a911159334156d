"""Paths: enumeration throughput vs a plain ``itertools`` loop; top-k DP vs enumeration.

    .venv/bin/python benchmarks/bench_paths.py [--quick]

MDPs: seeded random, ``S = 50`` states, uniform ``pi0``, rewards ``N(0, 1)``; deterministic
with ``A`` actions (``A^H`` paths from one start state) or stochastic with ``A = 3`` actions
of ``B = 2`` successors (``6^H`` paths). Start state 0, ``T = 0.5``.

* ``enum_*`` — ``qs.paths.enumerate(mdp, T, H, 0)`` (unranking, NumPy) vs a plain Python
  loop over ``itertools.product`` of the per-step choices that walks each path and sums
  ``log K + R / T`` (what a user writes first). Checked: the same paths in the same
  (lexicographic) order and ``max |log_weight - baseline| <= 1e-9``. Reported as time and
  paths/s.
* ``topk_*`` — ``qs.paths.top_k(mdp, T, H, k=10, 0)`` (the k-best semiring, jitted; never
  enumerates) vs enumerating every path with ``qs.paths.enumerate`` and keeping the ``k``
  largest log weights (``numpy.argpartition``). Checked: the same ``k`` log weights
  (1e-9). At ``H = 16`` (``4.3e9`` paths) enumeration is infeasible: ours only.

Writes ``benchmarks/results/paths.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C

NAME = "paths"
TOL = 1e-9
T = 0.5
K_BEST = 10


def case_keys(quick: bool) -> list[str]:
    if quick:
        return ["enum_det_3_8", "topk_det_4_8"]
    return [
        "enum_det_3_8",
        "enum_det_4_9",
        "enum_det_4_10",
        "enum_sto_3_7",
        "topk_det_4_8",
        "topk_det_4_10",
        "topk_det_4_16",
    ]


def make(kind: str, A: int, seed: int = 0):
    import numpy as np

    import quasispecies as qs

    rng = np.random.default_rng(seed)
    S = 50
    if kind == "det":
        return qs.MDP.from_transitions(rng.integers(0, S, (S, A)), rng.standard_normal((S, A)))
    B = 2
    ns = rng.integers(0, S, (S, A, B))
    ns[..., 1] = np.where(ns[..., 1] == ns[..., 0], (ns[..., 0] + 1) % S, ns[..., 1])
    return qs.MDP.from_successors(
        ns, rng.dirichlet(np.ones(B), (S, A)), rng.standard_normal((S, A, B))
    )


def itertools_paths(mdp, H: int):
    """Every path from state 0 by ``itertools.product`` over (action, successor) choices."""
    import itertools
    import math

    ns = mdp.next_state.tolist()
    lk = mdp.log_kernel.tolist()
    rw = mdp.reward.tolist()
    A, B = mdp.next_state.shape[1:]
    choices = [(a, b) for a in range(A) for b in range(B)]
    states, actions, lws = [], [], []
    for seq in itertools.product(choices, repeat=H):
        s, lw, path, acts = 0, 0.0, [0], []
        for a, b in seq:
            k = lk[s][a][b]
            if k == -math.inf:
                break
            lw += k + rw[s][a][b] / T
            s = ns[s][a][b]
            path.append(s)
            acts.append(a)
        else:
            states.append(path)
            actions.append(acts)
            lws.append(lw)
    return states, actions, lws


def enum_case(kind: str, A: int, H: int) -> dict:
    import numpy as np

    import quasispecies as qs

    mdp = make(kind, A)

    def ours():
        return qs.paths.enumerate(mdp, T, H, 0, max_bytes=None, progress=False)

    res, cold, warm, mem = C.measure(ours, repeats=2)
    (st, ac, lw), _, bwarm, bmem = C.measure(lambda: itertools_paths(mdp, H), cold=False)
    assert np.array_equal(res.states, np.asarray(st)), "paths differ"
    assert np.array_equal(res.actions, np.asarray(ac)), "actions differ"
    err = float(np.max(np.abs(res.log_weight - np.asarray(lw))))
    assert err <= TOL, err
    N = len(lw)
    return C.row(
        name="path enumeration",
        size=f"{kind}, S=50, A={A}{', B=2' if kind == 'sto' else ''}, H={H}, N={N:,} paths",
        ours="qs.paths.enumerate (unranking, NumPy)",
        ours_s=warm,
        baseline="Python loop over itertools.product",
        baseline_s=bwarm,
        compile_s=cold - warm,
        peak_mb=mem,
        baseline_peak_mb=bmem,
        device="cpu (NumPy)",
        max_error=err,
        error_metric="max |log_weight - baseline| (same paths, same order)",
        tolerance=TOL,
        paths=N,
        ours_paths_per_s=N / warm,
        baseline_paths_per_s=N / bwarm,
    )


def topk_case(A: int, H: int) -> dict:
    import numpy as np

    import quasispecies as qs

    mdp = make("det", A)

    def ours():
        return qs.paths.top_k(mdp, T, H, K_BEST, 0)

    res, cold, warm, mem = C.measure(ours, repeats=3)
    N = A**H
    common = dict(
        name=f"top-{K_BEST} paths",
        size=f"det, S=50, A={A}, H={H}, N={N:,} paths",
        ours="qs.paths.top_k (k-best semiring DP, jitted)",
        ours_s=warm,
        compile_s=cold - warm,
        peak_mb=mem,
        device=C.device_label(),
    )
    if N > 5_000_000:
        return C.row(
            **common,
            baseline="enumerate + argpartition (infeasible: not run)",
            notes=f"{N:,} paths would need ~{N * (8 * (2 * H + 4)) / 2**30:.0f} GiB to enumerate",
        )

    def baseline():
        p = qs.paths.enumerate(mdp, T, H, 0, max_bytes=None, progress=False)
        idx = np.argpartition(-p.log_weight, K_BEST)[:K_BEST]
        return np.sort(p.log_weight[idx])[::-1]

    want, _, bwarm, bmem = C.measure(baseline, cold=False)
    err = float(np.max(np.abs(res.log_weight - want)))
    assert err <= TOL, err
    return C.row(
        **common,
        baseline="qs.paths.enumerate + numpy.argpartition",
        baseline_s=bwarm,
        baseline_peak_mb=bmem,
        max_error=err,
        error_metric=f"max |log_weight| difference of the {K_BEST} best paths",
        tolerance=TOL,
    )


def run_case(key: str) -> dict:
    parts = key.split("_")
    if parts[0] == "enum":
        return enum_case(parts[1], int(parts[2]), int(parts[3]))
    if parts[0] == "topk":
        return topk_case(int(parts[2]), int(parts[3]))
    raise ValueError(f"--case: unknown case {key!r}")


def main(argv=None) -> int:
    p = C.parser(__doc__, quick_help="smallest sizes only (smoke run)", timeout=900.0)
    return C.main(p.parse_args(argv), __file__, NAME, __doc__, case_keys, run_case)


if __name__ == "__main__":
    raise SystemExit(main())
