"""Memory at scale: an L = 26 sequence-space steady state, and a 10^6-state sweep's peak RSS.

    .venv/bin/python benchmarks/bench_memory.py [--quick] [--only PREFIX]

Each case runs in its own process; peak memory is the process's ``VmHWM`` (read from
``/proc/self/status``, reset through ``/proc/self/clear_refs`` before each call; on a
system without them ``resource.getrusage`` gives the peak since start).

* ``sequence_26`` — ``qs.steady_state(model, 1.0)`` on binary sequence space at
  ``L = 26`` (``2^26`` genotypes, one float64 vector = 512 MiB; NK landscape ``K = 3``,
  per-site error rates ``U[0.002, 0.02)``, the model of ``bench_sequence.py``). The solver
  holds three ``2^L`` working vectors besides the landscape's ``log f``; the row records
  the warm solve's time, its matvecs, and the peak RSS it adds in units of one vector
  (budget: 3). No ARPACK baseline (its Krylov basis of 20+ vectors would need 10+ GiB);
  checked by the residual ``||W x - rho x|| / rho`` (1e-8).
* ``sweep_rss_1000000`` — ``qs.scaled_log_population(mdp, Ts, 200)`` with 32
  temperatures on the random deterministic MDP of ``bench_scale.py`` with ``S = 10^6``
  (``A = 4``): the peak RSS of the process (absolute, and added by the warm sweep) as a
  multiple of the bytes of its inputs (the MDP's ``next_state``, ``log_kernel`` and
  ``reward`` arrays and ``x0``) and of its output (``u``, ``32 x S``). Checked against the
  SciPy CSR loop of ``bench_scale.py`` at 2 of the temperatures (1e-9).

``--quick`` runs ``L = 16`` and ``S = 2 * 10^4`` instead. Writes
``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C

NAME = "memory"
TOL = 1e-9
#: From this L on the sequence case runs one solve (time and peak include its compile).
SINGLE_SOLVE_L = 26


def case_keys(quick: bool) -> list[str]:
    return ["sequence_16", "sweep_rss_20000"] if quick else ["sequence_26", "sweep_rss_1000000"]


#: Persistent compilation cache shared by the precompiling process and the measured one.
CACHE_DIR = Path(tempfile.gettempdir()) / "quasispecies-bench-memory-jax-cache"


def _model(L: int):
    import numpy as np

    import quasispecies as qs

    rng = np.random.default_rng(L)
    mus = rng.uniform(0.002, 0.02, L)
    space = qs.SequenceSpace(L, mus)
    return mus, qs.nk_landscape(space, 3, seed=L)


def _use_cache() -> None:
    import jax

    jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _precompile(L: int) -> float:
    """Compile the L-site kernels in a separate process (two Lanczos steps, the Clenshaw
    Ritz vector as the full solve) into :data:`CACHE_DIR`; returns its wall time."""
    import subprocess

    shutil.rmtree(CACHE_DIR, ignore_errors=True)
    here = Path(__file__).resolve().parent
    path = [str(here), str(here.parent)]
    code = (
        f"import sys; sys.path[:0] = {path!r}\n"
        f"import bench_memory as M; M._use_cache(); _, m = M._model({L})\n"
        "import _common as C; C.block(m.steady_state(1.0, max_steps=2, ritz='clenshaw'))\n"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    _use_cache()
    return time.perf_counter() - t


def _kernel_temp_mb(model) -> float:
    """The XLA scratch (``memory_analysis().temp_size_in_bytes``, MiB) of the model's matvec
    kernel at ``T = 1``: what a step needs besides the three vectors (compiled, not run)."""
    import jax

    from quasispecies.kernels import symmetrised as K

    op = model.operator(1.0)  # holds no k^L buffer of its own

    def spec(a):
        return jax.ShapeDtypeStruct(a.shape, a.dtype)

    vec, coef = spec(op.diag), jax.ShapeDtypeStruct((10,), op.dtype)
    lowered = K._step.lower(vec, vec, vec, vec, spec(op.weights), coef, plan=op.plan)
    return lowered.compile().memory_analysis().temp_size_in_bytes / 2**20


def sequence(L: int) -> dict:
    import numpy as np

    import quasispecies as qs

    mus, model = _model(L)
    N = 2**L
    vec_mb = 8 * N / 2**20
    # from L = SINGLE_SOLVE_L one full solve only (minutes on the 2 cores). Its kernels are
    # compiled beforehand by a two-step Lanczos run at the same L in another process, into a
    # persistent compilation cache that this process then reads: the measured solve loads
    # them instead of compiling (a second solve in this process would not do: the
    # allocator keeps the first one's freed vectors, so RSS would not show the second's).
    # An L = 12 solve loads the JAX runtime first.
    single = L >= SINGLE_SOLVE_L
    warmup_s = 0.0
    if single:
        warmup_s = _precompile(L)
        small = qs.nk_landscape(qs.SequenceSpace(12, mus[:12]), 3, seed=12)
        C.block(qs.steady_state(small, 1.0))
    before = C.rss_mb()
    C.reset_peak()
    t = time.perf_counter()
    ss = C.block(qs.steady_state(model, 1.0))
    cold = time.perf_counter() - t
    cold_mb = max(0.0, C.peak_mb() - before)
    held_mb = C.rss_mb()
    if single:
        warm, mem = cold, cold_mb
    else:
        ss, _, warm, mem = C.measure(lambda: qs.steady_state(model, 1.0), repeats=1, cold=False)
    temp_mb = _kernel_temp_mb(model)
    if single:
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
    if not ss.residual < 1e-8:
        raise AssertionError(f"L={L}: residual {ss.residual} too large")
    x = np.asarray(ss.population)
    if not (np.all(x >= 0) and abs(x.sum() - 1.0) < 1e-9):
        raise AssertionError(f"L={L}: population is not a probability vector")
    return C.row(
        name="memory: steady state on binary sequence space (NK, K=3)",
        size=f"L={L}, 2^L={N:,}, one vector {vec_mb:,.4g} MiB",
        ours=f"qs.steady_state (Lanczos on G^1/2 Q G^1/2, {ss.iterations} matvecs)",
        ours_s=warm,
        baseline=None,
        baseline_s=None,
        compile_s=None if single else cold - warm,  # single: compiled by the warm-up
        peak_mb=mem,
        device=C.device_label(),
        dtype="float64",
        max_error=ss.residual,
        error_metric="residual ||W x - rho x|| / rho (no baseline: ARPACK's basis does not fit)",
        tolerance=1e-8,
        notes=(
            f"{ss.iterations} matvecs; one solve, its kernels read from a compilation cache "
            f"filled by a 2-step run at this L in another process ({warmup_s:.0f} s), adds "
            f"{mem / vec_mb:.2f} vectors of peak RSS (budget 3; XLA scratch of the matvec "
            f"kernel {temp_mb:.0f} MiB); the process held {before / 1024:.1f} GiB before it "
            "(model with log f, runtime)"
            if single
            else f"{ss.iterations} matvecs; warm solve adds {mem / vec_mb:.2f} vectors of "
            f"peak RSS (budget 3; the first solve {cold_mb / vec_mb:.2f}, JAX runtime and "
            f"compile included); the process held {held_mb / 1024:.1f} GiB before the warm "
            "solve (model with log f, runtime)"
        ),
        matvecs=ss.iterations,
        vector_mb=vec_mb,
        peak_vectors=mem / vec_mb,
        total_peak_vectors=cold_mb / vec_mb,
        rss_before_warm_mb=held_mb,
        residual=ss.residual,
        kernel_temp_mb=temp_mb,
        precompile_s=warmup_s if single else None,
    )


def sweep_rss(S: int) -> dict:
    import bench_scale as B
    import numpy as np

    import quasispecies as qs

    steps, Ts = 200, np.geomspace(1e-2, 10.0, 32)
    start_mb = C.rss_mb()
    mdp = B.make_mdp("det", S)
    x0 = np.full(S, 1.0 / S)
    inputs = mdp.next_state.nbytes + mdp.log_kernel.nbytes + mdp.reward.nbytes + x0.nbytes
    in_mb = inputs / 2**20
    out_mb = len(Ts) * S * 8 / 2**20
    before = C.rss_mb()
    C.reset_peak()
    t = time.perf_counter()
    C.block(qs.scaled_log_population(mdp, Ts, steps, x0))
    cold = time.perf_counter() - t
    cold_mb = max(0.0, C.peak_mb() - before)
    u, _, warm, mem = C.measure(
        lambda: qs.scaled_log_population(mdp, Ts, steps, x0), repeats=1, cold=False
    )
    peak_abs = C.peak_mb()
    # check two temperatures against the SciPy CSR loop (linear domain, valid here)
    M, lk, r = B.csr_parts(mdp)
    rmax = float(r.max())
    err = 0.0
    for i in (0, len(Ts) - 1):
        T = Ts[i]
        W = M.copy()
        W.data = np.exp(lk + (r - rmax) / T)
        n, logc = x0.copy(), 0.0
        for _ in range(steps):
            n = W @ n
            s = n.sum()
            n /= s
            logc += np.log(s)
        with np.errstate(divide="ignore"):
            ub = np.where(n > 0, T * (np.log(n) + logc) + steps * rmax, -np.inf)
        ui = np.asarray(u)[i]
        if not (np.isfinite(ui) == np.isfinite(ub)).all():
            raise AssertionError("reachable sets differ")
        fin = np.isfinite(ub)
        err = max(err, float(np.max(np.abs(ui[fin] - ub[fin]))))
    if not err <= TOL:
        raise AssertionError(f"error {err} > {TOL}")
    return C.row(
        name="memory: sweep 32 T x 200 steps, random deterministic MDP",
        size=f"S={S:,}, E={4 * S:,}, inputs {in_mb:,.0f} MiB, output {out_mb:,.0f} MiB",
        ours="qs.scaled_log_population(mdp, Ts, 200) (pull form)",
        ours_s=warm,
        baseline=None,
        baseline_s=None,
        compile_s=cold - warm,
        peak_mb=mem,
        device=C.device_label(),
        dtype="float64",
        max_error=err,
        error_metric="max |u - u_SciPy| at T = 0.01 and 10",
        tolerance=TOL,
        notes=(
            f"warm sweep adds {mem:.0f} MiB = {mem / in_mb:.2f}x its inputs ({in_mb:.0f} MiB: "
            f"next_state, log_kernel, reward, x0; output u {out_mb:.0f} MiB); the first "
            f"call adds {cold_mb:.0f} MiB = {cold_mb / in_mb:.2f}x (pull operator built and "
            f"cached, compile); process peak {peak_abs:.0f} MiB = {peak_abs / in_mb:.2f}x the "
            f"inputs ({start_mb:.0f} MiB at start: interpreter, JAX)"
        ),
        input_mb=in_mb,
        output_mb=out_mb,
        warm_peak_over_inputs=mem / in_mb,
        cold_peak_over_inputs=cold_mb / in_mb,
        process_peak_mb=peak_abs,
        process_peak_over_inputs=peak_abs / in_mb,
        start_rss_mb=start_mb,
    )


def run_case(key: str) -> dict:
    n = int(key.split("_")[-1])
    if key.startswith("sequence_"):
        return sequence(n)
    if key.startswith("sweep_rss_"):
        return sweep_rss(n)
    raise ValueError(f"--case: unknown case {key!r}")


def main(argv=None) -> int:
    p = C.parser(__doc__, quick_help="L = 16 and S = 2e4 only (smoke run)", timeout=2400.0)
    args = p.parse_args(argv)
    return C.main(args, __file__, NAME, __doc__, case_keys, run_case)


if __name__ == "__main__":
    raise SystemExit(main())
