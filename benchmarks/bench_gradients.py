"""Gradients: ``jax.grad`` of ``steady_state(...).log_growth`` vs the forward solve, and vs
finite differences.

    .venv/bin/python benchmarks/bench_gradients.py [--quick]

MDP: seeded random deterministic, ``A = 4`` actions (action 0 walks the cycle
``s -> s + 1``, so ``W_T`` is irreducible; the others go to uniform random states),
rewards ``N(0, 1)`` per ``(s, a)``, uniform ``pi0``, ``T = 1``.

* ``grad_<S>`` -- ours: ``jax.grad(R -> qs.steady_state(MDP.from_transitions(ns,
  R), T).log_growth)`` (eager), implicit differentiation (:mod:`quasispecies.dynamics.implicit`:
  the left Perron vector by the public solver, the right one by the same solver on the
  transposed operator, then the flux ``l_i W_e r_j / (rho l.r)``; no backpropagation
  through iterations). Baseline: the public untraced ``qs.steady_state`` (pull form), the
  forward solve a user runs (``ratio = forward / gradient``; the target is a gradient cost
  ``<= 3x`` the forward, i.e. ratio ``>= 0.33``). Also reported: the forward through the
  differentiable entry (a JAX ``R``, left vector only). Checked: the gradient is a flux (sums
  to ``1 / T``, non-negative) and its directional derivative along a random direction
  matches a central difference of the untraced solve (``eps = 1e-4``).
* ``fd_<S>`` -- small case: ours (the dense implicit path, host callbacks) vs the full
  central finite-difference gradient (``2 S A`` untraced dense solves, ``eps = 1e-5``).
  Checked: ``max |grad - FD| / max |FD| <= 1e-6``.

Warm times after ``block_until_ready``; compile apart. Writes ``benchmarks/results/gradients.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C

NAME = "gradients"
T = 1.0
A = 4


def case_keys(quick: bool) -> list[str]:
    return ["fd_40", "grad_100000"] if quick else ["fd_40", "grad_100000", "grad_1000000"]


def make(S: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    ns = rng.integers(0, S, (S, A))
    ns[:, 0] = (np.arange(S) + 1) % S
    return ns, rng.standard_normal((S, A))


def large(S: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import quasispecies as qs

    ns, R = make(S)

    def growth(r):
        return qs.steady_state(qs.MDP.from_transitions(ns, r), T).log_growth

    grad = jax.grad(growth)  # eager: the host solvers run directly (no XLA callback)
    Rj = jnp.asarray(R)
    value, fcold, fwarm, fmem = C.measure(lambda: growth(Rj))
    g, gcold, gwarm, gmem = C.measure(lambda: grad(Rj))
    g = np.asarray(g)
    st, pub_cold, pub, _ = C.measure(lambda: qs.steady_state(qs.MDP.from_transitions(ns, R), T))
    value_error = abs(float(value) - st.log_growth)
    assert value_error <= 1e-9, value_error
    flux_error = abs(float(g.sum()) * T - 1.0)
    assert flux_error <= 1e-9 and g.min() >= 0, (flux_error, g.min())
    rng = np.random.default_rng(1)
    d = rng.standard_normal(R.shape)
    eps = 1e-4
    lp = qs.steady_state(qs.MDP.from_transitions(ns, R + eps * d), T).log_growth
    lm = qs.steady_state(qs.MDP.from_transitions(ns, R - eps * d), T).log_growth
    fd = (lp - lm) / (2 * eps)
    err = abs(float(np.sum(g * d)) - fd) / abs(fd)
    assert err <= 1e-5, err  # eps^2 truncation ~1e-8, solver tol 1e-13 / eps ~1e-9
    return C.row(
        name="gradient of log_growth (implicit) vs the forward solve",
        size=f"S={S:,}, A={A}, deterministic",
        ours="grad(steady_state(...).log_growth): left + right Perron vectors + flux",
        ours_s=gwarm,
        baseline="qs.steady_state(...).log_growth: the public forward solve (pull form)",
        baseline_s=pub,
        compile_s=gcold - gwarm,
        peak_mb=gmem,
        baseline_peak_mb=fmem,
        device=C.device_label(),
        max_error=err,
        error_metric="|grad . d - central FD| / |FD| along a random d (eps 1e-4), untraced solves",
        tolerance=1e-5,
        cost_vs_forward=gwarm / pub,
        traced_forward_s=fwarm,
        public_untraced_cold_s=pub_cold,
        forward_compile_s=fcold - fwarm,
        notes=(
            f"gradient = {gwarm / pub:.2f}x the public forward solve (target <= 3x): one more "
            "solve of the same kind (the transposed operator) and an O(edges) flux; the flux "
            f"sums to 1/T to {flux_error:.0e}; log_growth agrees with the public solve to "
            f"{value_error:.0e}; the forward through the differentiable entry (left vector "
            f"only) takes {fwarm:.2f} s"
        ),
    )


def small(S: int) -> dict:
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    import quasispecies as qs

    ns, R = make(S)

    def growth(r):
        return qs.steady_state(qs.MDP.from_transitions(ns, r), T).log_growth

    grad = jax.grad(growth)
    Rj = jnp.asarray(R)
    g, gcold, gwarm, gmem = C.measure(lambda: grad(Rj), repeats=3)
    g = np.asarray(g)
    eps = 1e-5
    t = time.perf_counter()
    fd = np.zeros_like(R)
    for idx in np.ndindex(R.shape):
        e = np.zeros_like(R)
        e[idx] = eps
        up = qs.steady_state(qs.MDP.from_transitions(ns, R + e), T).log_growth
        down = qs.steady_state(qs.MDP.from_transitions(ns, R - e), T).log_growth
        fd[idx] = (up - down) / (2 * eps)
    fd_s = time.perf_counter() - t
    err = float(np.max(np.abs(g - fd)) / np.max(np.abs(fd)))
    assert err <= 1e-6, err
    return C.row(
        name="gradient of log_growth (implicit) vs central finite differences",
        size=f"S={S}, A={A}, deterministic ({S * A} rewards)",
        ours="grad(steady_state(...).log_growth), dense implicit path",
        ours_s=gwarm,
        baseline=f"central differences, {2 * S * A} untraced dense solves",
        baseline_s=fd_s,
        compile_s=gcold - gwarm,
        peak_mb=gmem,
        device=C.device_label(),
        max_error=err,
        error_metric="max |grad - FD| / max |FD| (eps 1e-5)",
        tolerance=1e-6,
        notes="FD needs 2 solves per reward entry; the implicit gradient one solve and one flux",
    )


def run(key: str) -> dict:
    kind, S = key.split("_")
    return small(int(S)) if kind == "fd" else large(int(S))


def main(argv=None) -> int:
    p = C.parser(__doc__, quick_help="S = 1e5 only (smoke run)", timeout=3600.0)
    args = p.parse_args(argv)
    return C.main(args, __file__, NAME, __doc__, case_keys, run)


if __name__ == "__main__":
    raise SystemExit(main())
