"""Eigen's model on full sequence space: Lanczos steady state vs ARPACK on a NumPy Kronecker matvec.

    .venv/bin/python benchmarks/bench_sequence.py [--quick] [--only PREFIX]

Cases ``steady_L`` for L = 16, 20, 22, 24 (binary, ``k^L`` genotypes): a seeded NK landscape
(``K = 3``, adjacent neighbourhoods) with per-site error rates ``U[0.002, 0.02)``, at
``T = 1``. Ours: ``qs.steady_state(model, 1.0)`` (basis-free Lanczos on ``G^1/2 Q G^1/2``
through the blocked Kronecker kernel: three ``k^L`` buffers besides the landscape's ``log f``,
from which ``g^(1/2)`` is formed inside the kernel). Baseline:
``scipy.sparse.linalg.eigs`` (ARPACK, ``k=1, which="LR", tol=1e-13``, start vector ones) on a
``LinearOperator`` whose matvec ``v -> Q (f v)`` is written below in plain NumPy (reshape to
``(2,)*L`` and ``tensordot`` with each 2x2 site matrix). Checked: ``|lambda - lambda_ARPACK|
/ lambda <= 1e-9`` and the L1 distance of the Perron vectors. ARPACK runs up to
``BASELINE_MAX_L`` (all four sizes by default; about 4 minutes at ``L = 24`` on 2 cores) and
is skipped beyond it, with a note in the row. Memory:
``solver_peak_mb`` / ``peak_vectors`` is the peak RSS added by a warm solve (after the cold
one, so the JAX runtime and compiled code are already resident), also as a multiple of one
``2^L`` float64 vector; ``peak_mb`` / ``total_peak_vectors`` is the peak added by the cold
solve, which includes the JAX runtime's and compiler's own memory (~100 MB, not the
solver's). At small ``L`` the warm figure is a lower bound: the allocator may keep the cold
solve's freed blocks resident, so they count in the RSS before the warm solve (from
``L = 22`` on, where vectors are ``mmap``-ed and returned to the OS, the vectors dominate it).
Writes ``benchmarks/results/sequence.json``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C

NAME = "sequence"
LENGTHS = (16, 20, 22, 24)
#: ARPACK runs up to this L (``--baseline-max-l`` raises it; passed to the per-case
#: subprocesses through the environment).
BASELINE_MAX_L = int(os.environ.get("QS_BENCH_BASELINE_MAX_L", "24"))
TOL = 1e-9


def case_keys(quick: bool) -> list[str]:
    return [f"steady_{L}" for L in ((16,) if quick else LENGTHS)]


def numpy_kron_matvec(x, mus):
    """``x Q = Q x`` site by site: reshape to ``(2,)*L``, ``tensordot`` with each ``q_i``."""
    import numpy as np

    L = len(mus)
    y = x.reshape((2,) * L)
    for i, mu in enumerate(mus):
        q = np.array([[1.0 - mu, mu], [mu, 1.0 - mu]])
        y = np.moveaxis(np.tensordot(q, y, axes=([1], [i])), 0, i)
    return y.reshape(-1)


def steady(L: int) -> dict:
    import numpy as np
    import scipy.sparse.linalg

    import quasispecies as qs

    rng = np.random.default_rng(L)
    mus = rng.uniform(0.002, 0.02, L)
    space = qs.SequenceSpace(L, mus)
    model = qs.nk_landscape(space, 3, seed=L)
    N = 2**L
    vec_mb = 8 * N / 2**20

    def ours():
        return qs.steady_state(model, 1.0)

    # cold solve: total peak (JAX runtime + compilation + solver) over the RSS before it
    before = C.rss_mb()
    C.reset_peak()
    t = time.perf_counter()
    ss = C.block(ours())
    cold = time.perf_counter() - t
    total = max(0.0, C.peak_mb() - before)
    # warm solve: the solver's own peak, over the RSS before it
    ss, _, warm, mem = C.measure(ours, repeats=1, cold=False)
    lam = float(np.exp(ss.log_growth))
    row = dict(
        name="steady state, NK landscape (K=3) on binary sequence space",
        size=f"L={L}, 2^L={N:,}",
        ours=f"qs.steady_state (Lanczos on G^1/2 Q G^1/2, {ss.iterations} matvecs)",
        ours_s=warm,
        compile_s=cold - warm,
        peak_mb=total,
        solver_peak_mb=mem,
        device=C.device_label(),
        residual=ss.residual,
        matvecs=ss.iterations,
        vector_mb=vec_mb,
        peak_vectors=mem / vec_mb,
        total_peak_vectors=total / vec_mb,
        error_metric="max(|lambda - lambda_ARPACK| / lambda, L1 of Perron vectors)",
        tolerance=TOL,
    )
    if L > BASELINE_MAX_L:
        row.update(
            baseline="scipy.sparse.linalg.eigs (ARPACK) on a NumPy Kronecker matvec",
            notes=f"baseline skipped beyond L={BASELINE_MAX_L} (ARPACK takes many minutes "
            "on 2 cores); correctness checked by the residual only",
        )
        if not ss.residual < 1e-8:
            raise AssertionError(f"residual {ss.residual} too large")
        return C.row(**row)
    f = np.exp(np.asarray(model.log_fitness))
    op = scipy.sparse.linalg.LinearOperator(
        (N, N), matvec=lambda v: numpy_kron_matvec(f * v.ravel(), mus), dtype=np.float64
    )
    count = [0]

    def baseline():
        count[0] = 0
        vals, vecs = scipy.sparse.linalg.eigs(op, k=1, which="LR", tol=1e-13, v0=np.ones(N))
        return vals, vecs

    (vals, vecs), _, bwarm, bmem = C.measure(baseline, repeats=1, cold=False)
    lam_ref = float(vals[0].real)
    x = vecs[:, 0].real
    x = x / x.sum()
    err = max(abs(lam - lam_ref) / lam_ref, float(np.abs(ss.population - x).sum()))
    if not err <= TOL:
        raise AssertionError(f"L={L}: error {err} > {TOL}")
    row.update(
        baseline="scipy.sparse.linalg.eigs (ARPACK, tol 1e-13) on a NumPy Kronecker matvec",
        baseline_s=bwarm,
        baseline_peak_mb=bmem,
        max_error=err,
    )
    return C.row(**row)


def _progress(r: dict) -> str:
    base = r["baseline_s"]
    return (
        f"ours {r['ours_s']:.3g}s (compile {r['compile_s']:.3g}s, {r['matvecs']} matvecs, "
        f"solver peak {r['peak_vectors']:.2f} vectors, total {r['total_peak_vectors']:.2f})  "
        f"baseline {base if base is None else round(base, 3)}s  ratio {r['ratio']}"
    )


def main(argv=None) -> int:
    p = C.parser(__doc__, quick_help="L = 16 only (smoke run)", timeout=900.0)
    p.add_argument(
        "--baseline-max-l",
        type=int,
        default=None,
        help=f"run ARPACK up to this L (default {BASELINE_MAX_L})",
    )
    args = p.parse_args(argv)
    if args.baseline_max_l is not None:
        os.environ["QS_BENCH_BASELINE_MAX_L"] = str(args.baseline_max_l)
    return C.main(
        args,
        __file__,
        NAME,
        __doc__,
        case_keys,
        lambda key: steady(int(key.split("_")[-1])),
        describe=_progress,
    )


if __name__ == "__main__":
    raise SystemExit(main())
