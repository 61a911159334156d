"""Exact discounted optimum: ``quasispecies.rl.policy_iteration`` vs pymdptoolbox.

    .venv/bin/python benchmarks/bench_rl.py [--quick]

Seeded random stochastic MDPs with ``A = 4`` actions and ``B = 3`` successors per action
(Dirichlet probabilities, rewards ``U[0, 1)`` per ``(s, a)``), discount 0.95, ``S = 500``
and ``5000``. Ours: ``qs.rl.policy_iteration(mdp, 0.95)`` (Howard policy iteration, each
evaluation an exact linear solve: dense LAPACK up to 2000 states, sparse LU beyond).
Baseline: ``mdptoolbox.mdp.PolicyIteration(P, R, 0.95)`` with ``P`` a list of ``A``
sparse ``S x S`` CSR matrices, ``R`` the ``(S, A)`` expected rewards, and its default exact
(matrix) policy evaluation; constructor (input check, first greedy policy) and ``run()``
timed together, as a user calls it. Checked: identical policies and
``max |V - V_mdptoolbox| <= 1e-9 max(1, max |V|)``.

Writes ``benchmarks/results/rl.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C

NAME = "rl"
SIZES = (500, 5000)
TOL = 1e-9
DISCOUNT = 0.95


def make(S: int, seed: int = 0):
    import numpy as np
    import scipy.sparse as sp

    import quasispecies as qs

    rng = np.random.default_rng(seed)
    A, B = 4, 3
    ns = rng.integers(0, S, (S, A, B))
    prob = rng.dirichlet(np.ones(B), size=(S, A))
    R = rng.random((S, A))
    mdp = qs.MDP.from_successors(ns, prob, R)
    rows = np.repeat(np.arange(S), B)
    P = [
        sp.csr_matrix((prob[:, a].ravel(), (rows, ns[:, a].ravel())), shape=(S, S))
        for a in range(A)
    ]
    return mdp, P, R


def case(S: int) -> dict:
    import mdptoolbox.mdp
    import numpy as np

    import quasispecies as qs

    mdp, P, R = make(S)

    def ours():
        return qs.rl.policy_iteration(mdp, DISCOUNT)

    sol, cold, warm, mem = C.measure(ours, repeats=3 if S <= 1000 else 1)

    def baseline():
        pi = mdptoolbox.mdp.PolicyIteration(P, R, DISCOUNT)
        pi.run()
        return pi

    tb, _, bwarm, bmem = C.measure(baseline, repeats=2 if S <= 1000 else 1, cold=False)
    V_tb = np.asarray(tb.V, dtype=float)
    scale = max(1.0, float(np.max(np.abs(V_tb))))
    err = float(np.max(np.abs(sol.values - V_tb))) / scale
    assert err <= TOL, err
    assert np.array_equal(sol.policy, np.asarray(tb.policy)), "optimal policies differ"
    return C.row(
        name="exact discounted optimum (policy iteration), random stochastic MDP",
        size=f"S={S:,}, A=4, B=3, gamma={DISCOUNT}",
        ours=f"qs.rl.policy_iteration ({sol.iterations} improvement steps)",
        ours_s=warm,
        baseline=f"mdptoolbox.mdp.PolicyIteration ({tb.iter} iterations, dense solve)",
        baseline_s=bwarm,
        compile_s=cold - warm,
        peak_mb=mem,
        baseline_peak_mb=bmem,
        device="cpu (NumPy/SciPy: no jit)",
        max_error=err,
        error_metric="max |V - V_baseline| / max(1, max |V|); policies equal",
        tolerance=TOL,
        notes=(
            "ours is NumPy/SciPy (sparse LU beyond 2000 states); pymdptoolbox densifies "
            "P_pi and calls numpy.linalg.solve, O(S^3) per iteration"
        ),
    )


def case_keys(quick: bool) -> list[str]:
    return [str(S) for S in (SIZES[:1] if quick else SIZES)]


def main(argv=None) -> int:
    p = C.parser(__doc__, quick_help="smallest size only (smoke run)", timeout=1800.0)
    args = p.parse_args(argv)
    return C.main(args, __file__, NAME, __doc__, case_keys, lambda key: case(int(key)))


if __name__ == "__main__":
    raise SystemExit(main())
