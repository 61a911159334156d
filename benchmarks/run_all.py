"""Run every benchmark and regenerate ``benchmarks/README.md`` from ``benchmarks/results``.

    .venv/bin/python benchmarks/run_all.py               # what `make bench` runs
    .venv/bin/python benchmarks/run_all.py --table-only  # README from the existing JSON
    .venv/bin/python benchmarks/run_all.py --only scale,rl --quick

Each ``bench_*.py`` runs in its own interpreter (and splits its cases into further
subprocesses), so peak memory is per benchmark case. A benchmark that fails keeps its
previous JSON (the failure is reported, and the exit status is 1); the README is always
rebuilt from whatever JSON exists.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
README = HERE / "README.md"

#: (name, script, results file). ``bench_sequence.py`` is written separately; it runs
#: and is tabulated when present.
BENCHMARKS = [
    ("scale", "bench_scale.py", "scale.json"),
    ("sequence", "bench_sequence.py", "sequence.json"),
    ("rl", "bench_rl.py", "rl.json"),
    ("paths", "bench_paths.py", "paths.json"),
    ("lm", "bench_lm.py", "lm.json"),
    ("gradients", "bench_gradients.py", "gradients.json"),
    ("memory", "bench_memory.py", "memory.json"),
]

TITLES = {
    "scale": "Sparse MDPs at scale (steady state, temperature sweeps, dense/sparse crossover)",
    "sequence": "Sequence space (Eigen's model, Kronecker operator)",
    "rl": "Exact discounted optimum",
    "paths": "Paths: enumeration and top-k",
    "lm": "LM bridge: JAX forward vs transformers (PyTorch CPU)",
    "gradients": "Gradients: jax.grad of log_growth vs the forward solve and finite differences",
    "memory": "Memory at scale (L = 26 sequence space, 10^6-state sweep)",
}

#: Hand-written context per benchmark: why the numbers are what they are, where we are
#: behind. Row-level caveats come from each row's ``notes``.
COMMENTARY = {
    "scale": """\
Ours is the pull-form (sliced-ELL, by destination) operator of `quasispecies.kernels.pull`:
`D` fused gather-multiply-adds per in-degree bucket, no scatter, in the linear domain
while every weight is a normal float64 (exact there) and in the log domain otherwise.

* **Steady state**: power iteration on the pull operator converges in a few dozen
  matvecs on these well-mixing random operators; ARPACK (`eigs`, `k=1`) builds and
  orthogonalises a Krylov basis of 20+ vectors for the same answer. On slowly mixing or
  (near-)periodic operators ours measures the contraction factor and switches to
  Krylov-Schur (`quasispecies.kernels.krylov`), which is ARPACK's algorithm, so the advantage
  shrinks there.
* **Sweeps**: per temperature and step both do one sparse matvec and a
  renormalisation, so the comparison is XLA's CPU gather loop against SciPy's CSR
  kernel. From `S = 2e5` on both are bound by random memory access: the pull form reads
  each destination's predecessors from a dense `(D, n)` table and writes each output
  once. At `S = 2e4` the whole operator sits in cache and a step takes ~0.1 ms, so fixed
  per-step costs weigh. The linear kernel runs up to 8 temperatures side by side
  (`quasispecies.kernels.pull.chunk_size`: an `(S, c)` state, one gathered predecessor
  row serves the chunk, the step's fixed costs are paid once; each column is bitwise the
  lone run, `tests/kernels/test_pull_chunks.py`). Measured on the quiet 2 cores
  (2026-12-03, one jitted 50- or 200-step scan, best of 3-10): a temperature-step at `S = 2e3`
  22 us alone vs 9 us in a chunk of 8 (the sweep went from 0.91x to 1.47x SciPy there);
  at `S = 2e4` 110-114 us either way (the gathers themselves dominate); at `S = 1e6`
  stochastic 19.2 ms alone, 17.1 in a chunk of 4 (what the 256 MiB weight budget allows
  there), 15.1 in a chunk of 8.
* **Machines and load**: every row of this table is from one run on an Intel Xeon with 2
  cores and nothing else running (load average ~1.5: the benchmark itself). Earlier
  tables mixed that machine under heavy load (other sessions' test suites: load 4-15)
  with an AMD EPYC at load ~5.5, and showed the `2e4` sweeps at 0.64 / 0.95 and the
  stochastic `1e6` one at 0.94: ours uses both cores (XLA splits each gather loop),
  SciPy's loop one, so ours loses most when the other core is busy. Pinned to one core
  (`taskset -c 0`, load ~12) a `2e4` step took 67.5 us ours vs 191 us SciPy
  (deterministic) and 120 vs 207 us (stochastic); the quieter AMD run had SciPy at 78 us
  a step and ours at 121 before the change below (~97 with it): on that machine the
  `2e4` deterministic sweep may still be below 1x; it was not available to rerun.
* **Where a step's time goes at `S = 2e4`** (deterministic, 12 in-degree buckets, one
  jitted 200-step scan per variant, per-step minimum over 15-25 repeats alternated in
  one process; measured 2026-12-03 with the load average at 9-15 on the 2 cores, so
  only the differences mean something): the whole guarded linear step 102-104 us; the
  bucket gathers and multiply-adds alone 66-73 us; plus the max renormalisation 69 us;
  so the guard's smallest-positive pass and the power-of-two scaling of every gathered
  entry cost ~30 us (~30 %). Scaling each output row instead (one multiply per row,
  fused with the max/min pass; the guard now also covers the unscaled products, see
  `quasispecies.kernels.pull._run_linear`) brings the step to 79-84 us (-20 %), and is
  what ours runs now. Tried, no gain: `lax.scan` unrolling by 2 or 4 (81 / 86 us);
  gathers without index clamping (`mode="promise_in_bounds"`: 71 vs 73 us, within the
  noise: clamping is not the cost); one `(D, n)` gather and a sum over `D` per bucket
  instead of `D` unrolled gather-multiply-adds (stochastic, quiet: 281 vs 110 us a step,
  and 632 us in a chunk of 8); `XLA_FLAGS=--xla_backend_optimization_level=0` (compile
  1.27 vs 1.9 s, the step twice as slow); batching the temperatures with `vmap` (the
  chunk axis leading, so each gather reads `c` scattered values: 2.5 s vs 1.6 s; the
  chunks above put it last). The compile column (~2 s for the linear kernel at `2e4`,
  once per operator) is what a one-off small sweep pays on top: a first call at `2e4`
  (32 T x 200 steps) took 2.6 s against SciPy's 1.2 s.
* **Low-T sweep**: the linear-domain SciPy loop is *wrong* at most of these
  temperatures (states underflow to 0, or subnormal intermediates cost digits; the row
  says at how many), so the baseline is a NumPy log-domain loop
  (`bench_scale.log_domain_sweep`: edges sorted by destination, `np.logaddexp.reduceat`
  after a `np.maximum.reduceat` shift, exact at every T), checked against ours at all 32
  temperatures at `S = 2e4`; at larger sizes it runs on every 4th (`2e5`) or 8th (`1e6`)
  temperature (`bench_scale.LOG_BASELINE_TEMPS`) and its time is scaled to 32 (its cost
  per temperature does not depend on T), checked at those. Ours detects the underflow
  (the guard) and redoes those temperatures in the log domain (one `exp` per edge per
  step, ~6x the cost of a linear step), still 4-6x ahead of the NumPy log-domain loop.
  Not tried: switching to the log domain at the step where the guard trips instead of
  redoing the whole run (it would save the wasted linear part, ~15 % of a redone
  temperature).
* **Crossover**: the dense path (`S x A x S` reductions) never wins, not even at
  `S = 64`; the pull form beats the scatter-based segment reductions 1.7-22x at every
  size, so sparse MDPs use it from `quasispecies.dynamics.horizon.PULL_MIN_STATES` states on.""",
    "memory": """\
Written and measured with `benchmarks/bench_memory.py` (see its docstring); each case in
its own process, peak RSS from `/proc/self/status` (`VmHWM`, reset before each call).
No baseline: these rows record what fits, not a speed ratio. The sequence-space solve
holds three `2^L` working vectors besides the model's `log f` (XLA's own scratch for the
matvec kernel, from `memory_analysis()`, is a few MiB, shown in the row). Its kernels
are compiled beforehand in another process into a persistent compilation cache, so the
measured solve's peak holds no compiler memory; measured the earlier way (compiling
during the solve) it was 3.18 vectors at `L = 26` and 3.50 at `L = 24`, with the cache
3.33 at `L = 24`: what is left above 3 is the runtime's own allocations (loaded
executables, thread stacks, Python objects), not a fourth vector. A second solve in the
same process is no measure at all (the allocator keeps the first solve's freed vectors:
it shows ~0 added). The sweep's row gives its peak as a multiple of its inputs (the
MDP's arrays and `x0`): `scaled_log_population` now asks the pull kernel for `u` only
(`population=False`) and each temperature chunk's outputs are stored as soon as they
come back, so the host holds one `32 x S` result (244 MiB at `S = 10^6`) where it held
two, plus all the device outputs at once (11.6x the inputs before, 6.7x now); the first
call also builds and caches the pull operator (about the inputs' size again) and
compiles.""",
    "rl": """\
Both are exact policy iteration (Howard) with the same improvement rule, so both stop
after the same few improvement steps; the difference is the policy-evaluation solve.
pymdptoolbox builds a dense `S x S` `P_pi` and calls `numpy.linalg.solve` (`O(S^3)`);
ours solves densely below 2000 states and with a sparse LU (`scipy.sparse.linalg.spsolve`)
beyond, so the gap grows with `S`.""",
    "paths": """\
Enumeration unranks paths in NumPy blocks (exact path counts per state, then binary
searches) instead of walking a Python loop per path. `top_k` never enumerates: the
k-best semiring keeps the `k` best partial paths into each state, `O(H S A B k)` work,
so it answers `H = 16` (4.3e9 paths) in milliseconds.""",
    "sequence": """\
Written and measured with `benchmarks/bench_sequence.py` (see its docstring). Ours runs
Lanczos on the symmetrised operator `G^1/2 Q G^1/2` (`Q = q^{(x)L}` is symmetric, so
`W = G Q` is similar to it) without storing a basis (the Ritz vector by a second,
Clenshaw pass: hence about twice the Lanczos steps in matvecs) and applies `Q` in two
cache-blocked passes of dense `16 x 16` Kronecker factors (`O(L k^(L+1))`), forming
`g^1/2` from `log f` inside the kernel: three `2^L` working vectors in all.
`steady_state(..., store_sqrt_g=True)` keeps `g^1/2` as a fourth vector instead, about
5-10 % faster (two `exp` per element per matvec saved; within the noise of this shared
machine at `L = 24`: 38.9 / 53.2 s stored vs 44.5 / 51.8 s formed, alternating runs).
The baseline drives ARPACK with the same Kronecker matvec in NumPy.""",
    "gradients": """\
The gradient of `log rho(W_T)` by implicit differentiation
(`quasispecies/dynamics/implicit.py`) is the stationary flux `l_i W_e r_j / (rho l.r)`: it
needs the left Perron vector (the public forward solve itself), the right one (the same
solver on the transposed operator, assembled as a deterministic MDP at the same `T`) and
one pass over the edges, never a backward pass through the iterations, so memory stays
`O(S)`. The baseline is the public untraced `qs.steady_state` a user runs (pull form,
linear domain); the target is a gradient `<= 3x` it, i.e. a `ratio` (forward / gradient)
`>= 0.33`: measured 1.98x at `1e5` and 2.5x at `1e6` (the second solve plus assembling
the transposed operator, ~4 s at `1e6`: a stable sort of the edges by destination and the
padded arrays). Under `jit`/`vmap` the iterative path cannot call the host solver (a JAX
call inside an XLA callback can deadlock the CPU executor), so it runs log-domain power
iterations in JAX instead, slower; the rows measure eager `jax.grad`. The
finite-difference row: `2 S A` untraced dense solves against one implicit gradient.""",
    "lm": """\
Same model (SmolLM2-135M-Instruct, the embedded Q4_1 GGUF dequantised to float32), same
token batches. Scoring rows: one full forward pass with log-softmax over the vocabulary
(compile time of the jitted forward reported apart). Token-tree row: warm wall time of
`token_tree(lm, prompt, 3, 5)` (156 nodes). Peak memory was not recorded by this
benchmark.""",
}

MULTI_DEVICE = """\
## Multi-device

`quasispecies.kernels.sharding` spreads the finite-horizon path sum over the devices of a
`jax.sharding.Mesh` (`shard_map`), with results bitwise equal to one device
(`tests/test_sharding.py` checks this on 4 forced CPU devices):

* `sweep_over_devices(mdp, temperatures, steps, x0, mesh=...)`: temperatures split over
  the devices, the operator replicated; no communication.
* `horizon_over_devices(mdp, T, steps, x0, mesh=...)`: the rows of the pull operator (and
  the state vector) split over the devices; each step all-gathers the state vector. For
  operators larger than one device's memory.

```python
# on one machine: XLA_FLAGS=--xla_force_host_platform_device_count=4 for 4 CPU devices
import numpy as np
import quasispecies as qs
from quasispecies.kernels import sharding

rng = np.random.default_rng(0)
S = 1_000_000
mdp = qs.MDP.from_transitions(rng.integers(0, S, (S, 4)), rng.random((S, 4)))
temps = np.geomspace(1e-2, 10, 32)
u, x = sharding.sweep_over_devices(mdp, temps, 200, mesh=sharding.mesh())  # (32, S) each
u1, x1 = sharding.horizon_over_devices(mdp, 0.5, 200, 0)  # (S,) each
```

**Multi-host.** Start one process per host with the same program and inputs (same seed
or file), and initialise the distributed runtime before anything else touches JAX; the
mesh then spans every device of every host and results come back to each process in
full:

```python
import jax

jax.distributed.initialize()  # SLURM / TPU pods / Kubernetes fill these in; otherwise
# jax.distributed.initialize(coordinator_address="10.0.0.1:1234",
#                            num_processes=4, process_id=RANK)
import numpy as np
from quasispecies.kernels import sharding

# ... build `mdp` and `temps` exactly as above, identically on every process ...
mesh = sharding.mesh(jax.devices())  # all devices of all processes
u, x = sharding.sweep_over_devices(mdp, temps, 200, mesh=mesh)
if jax.process_index() == 0:  # write files from one process only
    np.savez("sweep.npz", u=u, x=x)
```
"""


def run_benchmarks(names: list[str], quick: bool, timeout: float) -> dict[str, str]:
    """Run the selected scripts one after another; return ``{name: status}``."""
    status: dict[str, str] = {}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name, script, _ in BENCHMARKS:
        if name not in names:
            continue
        path = HERE / script
        if not path.exists():
            status[name] = f"skipped ({script} not present)"
            print(f"== {name}: {status[name]}", flush=True)
            continue
        cmd = [sys.executable, str(path)] + (["--quick"] if quick else [])
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, timeout=timeout)
            ok = proc.returncode == 0
            status[name] = "ok" if ok else f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            status[name] = f"timed out after {timeout:.0f} s"
        print(f"== {name}: {status[name]} in {time.perf_counter() - t0:.0f} s", flush=True)
    return status


# ------------------------------------------------------------------------- README
def _fmt_s(v) -> str:
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _fmt_compile(v) -> str:
    # cold minus warm; for code without jit (NumPy) it is timing noise and can be < 0
    return "~0" if v is not None and v < 0.01 else _fmt_s(v)


def _fmt_ratio(v) -> str:
    if v is None:
        return "—"
    return f"**{v:.2f}**" if v < 1 else f"{v:.2f}"


def _fmt_mb(ours, base) -> str:
    if ours is None and base is None:
        return "—"
    a = "—" if ours is None else f"{ours:.0f}"
    b = "—" if base is None else f"{base:.0f}"
    return f"{a} / {b}"


def lm_rows(doc: dict) -> list[dict]:
    """``lm.json`` (its own layout) as table rows."""
    rows = []
    for r in doc.get("scoring", []):
        rows.append(
            {
                "name": "scoring: forward + log-softmax",
                "size": f"batch {r['batch']} x {r['length']} tokens",
                "ours_s": r["jax_seconds"],
                "baseline_s": r["transformers_seconds"],
                "ratio": r.get("speedup_jax_over_transformers"),
                "compile_s": r.get("jax_compile_seconds"),
                "baseline": "transformers (PyTorch CPU) forward",
                "notes": f"max |log-prob difference| {r['max_abs_logprob_difference']:.1e} "
                "(float32)",
            }
        )
    tree = doc.get("tree_depth3_top5")
    if tree:
        j, h = tree["jax"], tree["transformers"]
        rows.append(
            {
                "name": "token tree (depth 3, top 5)",
                "size": f"{tree['states']} states",
                "ours_s": j["warm_seconds"],
                "baseline_s": h["warm_seconds"],
                "ratio": h["warm_seconds"] / j["warm_seconds"],
                "compile_s": j["cold_seconds"] - j["warm_seconds"],
                "baseline": "token_tree on the transformers backend",
            }
        )
    return rows


def load_results() -> list[tuple[str, dict, list[dict]]]:
    out = []
    for name, _, fname in BENCHMARKS:
        path = RESULTS / fname
        if not path.exists():
            continue
        doc = json.loads(path.read_text())
        rows = lm_rows(doc) if name == "lm" else list(doc.get("rows", []))
        out.append((name, doc, rows))
    return out


def _file_date(path: Path) -> str:
    """The last commit date of ``path`` (fallback: its modification time)."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs", "--", str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if out:
        return out
    return _dt.date.fromtimestamp(path.stat().st_mtime).isoformat()


def _machine_line(doc: dict, path: Path) -> str:
    m = doc.get("machine", {})
    device = m.get("device") or (f"cpu ({m['cpus']} cores)" if "cpus" in m else "unknown")
    when = doc.get("generated") or f"{_file_date(path)} (file date; not recorded)"
    line = f"Machine: {device}, no GPU; measured {when}"
    load = m.get("load_average")
    found = re.search(r"\((\d+) cores\)", device)
    cores = int(found.group(1)) if found else (m.get("cpus") or os.cpu_count() or 1)
    if load and load[0] > 0.75 * cores:
        line += (
            f", with other processes sharing the cores (load average {load[0]:.1f} on "
            f"{cores} cores when the file was written): absolute times are inflated and "
            "noisy; ours and the baseline ran in the same process one after the other, so "
            "the ratios are fairer than the times"
        )
    cmd = doc.get("command")
    return line + "." + (f" Command: `make bench` (this file: `{cmd}`)." if cmd else "")


def render_table(rows: list[dict]) -> list[str]:
    lines = [
        "| benchmark | size | ours (s) | baseline (s) | ratio | compile (s) | peak MiB ours / baseline |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r.get('case', '?')} | — | — | — | — | — | — |")
            continue
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {} |".format(
                r.get("name", ""),
                r.get("size", ""),
                _fmt_s(r.get("ours_s")),
                _fmt_s(r.get("baseline_s")),
                _fmt_ratio(r.get("ratio")),
                _fmt_compile(r.get("compile_s")),
                _fmt_mb(r.get("peak_mb"), r.get("baseline_peak_mb")),
            )
        )
    return lines


def _sequence_memory(rows: list[dict]) -> str:
    """One line: the solver's memory in units of one ``2^L`` float64 vector, per size."""
    parts = [
        f"{r['size'].split(',')[0]}: {r['peak_vectors']:.2f} ({r['total_peak_vectors']:.2f} cold)"
        for r in rows
        if "error" not in r and r.get("peak_vectors") is not None
    ]
    return (
        "Memory, as multiples of one `2^L` float64 vector (peak RSS added by a warm solve; in "
        "brackets, by the first solve, which also loads the JAX runtime and compiles): "
        + "; ".join(parts)
        + ". The landscape (`log f`, one more vector) is held by the model before the solve. "
        "Below `L = 22` the warm figure is distorted by the allocator (freed blocks of the "
        "cold solve are reused, or not returned to the OS); from `L = 22` on the vectors "
        "dominate (what is left over is a few MiB of other allocations)."
    )


def gpu_section(path: Path) -> list[str]:
    """The GPU section from ``gpu.json`` (``bash benchmarks/gpu.sh``), or "not measured"."""
    out = ["## GPU", ""]
    doc = json.loads(path.read_text()) if path.exists() else None
    if doc is None or doc.get("dry_run"):
        return [
            *out,
            "**Not measured**: no GPU run has been recorded (`benchmarks/results/gpu.json` is",
            "absent). `bash benchmarks/gpu.sh` on a GPU machine writes it (CI runs its",
            "`--dry-run` on the CPU); every number below is from the CPU.",
            "",
        ]
    m = doc.get("machine", {})
    out += [
        f"`benchmarks/results/gpu.json`, device **{m.get('device', 'unknown')}** (JAX "
        f"{m.get('jax', '?')}); measured {doc.get('generated', '?')} in {doc.get('total_s', 0):.0f} s "
        f"by `{doc.get('command', 'bash benchmarks/gpu.sh')}`. Warm times after "
        "`block_until_ready`; compile apart. float64 sweeps checked against the SciPy CSR loop "
        f"at two temperatures ({doc.get('tolerance', 1e-9):g}); float32 against float64 "
        f"(bound {doc.get('f32_tolerance', 1e-3):g}).",
        "",
        "| part | size | dtype | sweep 32 T x 200 (s) | compile (s) | steady state (s) | "
        "compile (s) | float32 vs float64 |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    rows = doc.get("rows", [])
    for r in (r for r in rows if r.get("part") == "mdp"):
        f32 = "—"
        if r.get("dtype") == "float32":
            f32 = f"sweep rel {r['f32_sweep_rel_error']:.1e}"
            if r.get("f32_sweep_lost_values"):
                f32 += (
                    f" ({r['f32_sweep_lost_values']:,} values lost to -inf at "
                    f"{r['f32_sweep_lost_temperatures']} temperatures)"
                )
            if r.get("f32_steady_l1") is not None:
                f32 += (
                    f", Perron L1 {r['f32_steady_l1']:.1e}, T log rho {r['f32_growth_error']:.1e}"
                )
        steady = _fmt_s(r.get("steady_s")) if r.get("steady_s") is not None else "failed"
        out.append(
            f"| MDP | S={r['S']:,} | {r['dtype']} | {_fmt_s(r['sweep_s'])} | "
            f"{_fmt_compile(r['sweep_compile_s'])} | {steady} | "
            f"{_fmt_compile(r.get('steady_compile_s'))} | {f32} |"
        )
    out.append("")
    out += [
        f"* S={r['S']:,} {r['dtype']} steady state failed: {r['steady_error'][:200]}"
        for r in rows
        if r.get("steady_error")
    ]
    kron = [r for r in rows if r.get("part") == "kron"]
    if kron:
        out += [
            "Kronecker matvec `x Q` (binary, float64), as a fraction of the measured "
            "device-to-device copy bandwidth (both move at least `2 * 8 * 2^L` bytes):",
            "",
            "| L | matvec (s) | copy (s) | copy GB/s | fraction |",
            "|---:|---:|---:|---:|---:|",
        ]
        out += [
            f"| {r['L']} | {r['matvec_s']:.3g} | {r['copy_s']:.3g} | {r['copy_gbs']:.0f} | "
            f"{r['bandwidth_fraction']:.2f} |"
            for r in kron
        ]
        out.append("")
    for r in (r for r in rows if r.get("part") == "lm"):
        out += [
            f"LM forward ({r.get('model', 'default_lm')}), batch {r['batch']} x {r['length']} "
            f"tokens: **{r['tokens_per_second']:,.0f} tokens/s** ({r['forward_s']:.3g} s, "
            f"compile {_fmt_s(r['compile_s'])} s).",
            "",
        ]
    for part, err in doc.get("errors", {}).items():
        out.append(f"* part `{part}` failed: {str(err).splitlines()[0][:200]}")
    return out + ([""] if doc.get("errors") else [])


def render_readme() -> str:
    results = load_results()
    today = _dt.date.today().isoformat()
    out = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/run_all.py` from `benchmarks/results/*.json`; rerun all with",
        "`make bench` (or `python benchmarks/run_all.py --table-only` to rebuild this file).",
        "",
        "Every row: ours and the baseline on the same inputs in the same run; times are warm",
        "wall-clock seconds after `block_until_ready()` (best of the repeats), the first call's",
        "extra time (jit compile, one-time set-up) is the **compile** column; **ratio** is",
        "baseline / ours (> 1: we are faster; **bold**: we are behind); peak memory is the",
        "increase of the process's peak RSS during the call (each case runs in its own",
        "process). Inside each benchmark the fast path's numbers are asserted against the",
        "baseline's (1e-9 unless the row says otherwise) before anything is written.",
        "",
    ]
    out += gpu_section(RESULTS / "gpu.json")
    behind: list[str] = []
    for name, doc, rows in results:
        out += [f"## {TITLES.get(name, name)}", ""]
        path = RESULTS / f"{name}.json"
        out.append(f"`benchmarks/results/{name}.json`. " + _machine_line(doc, path))
        baselines = sorted({r["baseline"] for r in rows if r.get("baseline")})
        if baselines:
            out.append("Baselines: " + "; ".join(f"{b}" for b in baselines) + ".")
        out.append("")
        out += render_table(rows)
        out.append("")
        notes = [(r, r.get("notes")) for r in rows if r.get("notes") and "error" not in r]
        for r, note in notes:
            out.append(f"* {r.get('name')}, {r.get('size')}: {note}")
        errors = [r for r in rows if "error" in r]
        for r in errors:
            out.append(f"* case `{r.get('case')}` failed: {str(r['error']).splitlines()[0][:200]}")
        if notes or errors:
            out.append("")
        if name == "sequence":
            out += [_sequence_memory(rows), ""]
        if name in COMMENTARY:
            out += [COMMENTARY[name], ""]
        for r in rows:
            if r.get("ratio") is not None and r["ratio"] < 1:
                behind.append(f"`{name}`: {r['name']}, {r['size']} (ratio {r['ratio']:.2f})")
    out += ["## Where we are behind", ""]
    if behind:
        out.append("Rows with ratio < 1 (the reasons are in each section's notes and commentary):")
        out.append("")
        out += [f"* {b}" for b in behind]
    else:
        out.append("Nowhere in the measured rows.")
    out += ["", MULTI_DEVICE, f"_README regenerated {today}._", ""]
    return "\n".join(out)


def write_readme() -> Path:
    sys.path.insert(0, str(ROOT))
    from quasispecies.model.io import atomic_write

    with atomic_write(README, "w") as fh:
        fh.write(render_readme())
    return README


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table-only", action="store_true", help="only rebuild README.md")
    p.add_argument("--only", default=None, help="comma list of benchmark names to run")
    p.add_argument("--skip", default="", help="comma list of benchmark names to skip")
    p.add_argument(
        "--quick",
        action="store_true",
        help="pass --quick to every script (smoke run: results/<name>.quick.json, not tabulated)",
    )
    p.add_argument("--timeout", type=float, default=4 * 3600, help="per-script limit, s")
    args = p.parse_args(argv)
    names = [n for n, _, _ in BENCHMARKS]
    if args.only:
        names = [n for n in args.only.split(",") if n]
        unknown = set(names) - {n for n, _, _ in BENCHMARKS}
        if unknown:
            raise SystemExit(f"--only: unknown benchmark(s) {sorted(unknown)}")
    names = [n for n in names if n not in set(args.skip.split(","))]
    status: dict[str, str] = {}
    if not args.table_only:
        status = run_benchmarks(names, args.quick, args.timeout)
    path = write_readme()
    print(f"wrote {path.relative_to(ROOT)}")
    bad = {k: v for k, v in status.items() if v != "ok" and not v.startswith("skipped")}
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
