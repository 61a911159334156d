"""GPU run: sweeps and steady states in float64 and float32, the Kronecker matvec, the LM forward.

    bash benchmarks/gpu.sh [--dry-run]          # installs the project, then runs this
    python benchmarks/bench_gpu.py [--dry-run] [--out PATH]

Parts, each in its own interpreter (``--part NAME``, one JSON line per row on stdout),
each with its own time limit so that the whole run stays under 8 minutes
(``PART_TIMEOUT``):

* ``mdp64`` / ``mdp32`` -- at ``S = 2e5`` and ``1e6`` (the seeded random deterministic MDPs
  of ``bench_scale.py``): ``qs.scaled_log_population(mdp, Ts, 200)`` for 32 temperatures
  (log-spaced 0.01..10) and ``qs.steady_state(mdp, 1)``. float64 is checked against the
  SciPy CSR loop of ``bench_scale.py`` at two temperatures (1e-9); float32 runs in a fresh
  interpreter with ``QUASISPECIES_X64=0`` and its largest deviation from the float64
  result is stated (and bounded by ``F32_TOL``).
* ``kron`` -- ``quasispecies.kernels.kronecker.mutate`` (``x Q``, binary, ``L = 24..28``,
  float64) as a fraction of the measured device-to-device copy bandwidth: a copy of the
  same ``2^L`` vector under ``jax.jit`` moves ``2 * 8 * 2^L`` bytes (read + write), and so
  does a matvec at least (read ``x``, write ``x Q``), so the fraction is ``t_copy /
  t_matvec``. Checked against a NumPy ``tensordot`` matvec at ``L <= 20`` (dry run).
* ``lm`` -- ``qs.bridge.default_lm()`` forward (``sequence_logprobs``), batch 8 x 64
  tokens, tokens/s. No baseline (the CPU comparison is ``bench_lm.py``).

Every time is warm, after ``block_until_ready`` (``_common.measure``); the first call's
extra time is ``compile_s``. ``--dry-run`` runs every part at tiny sizes on whatever
device is there into a temporary file, checks the schema (:func:`check_schema`) and
writes nothing under ``benchmarks/results``. Otherwise writes ``benchmarks/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C

NAME = "gpu"
TOL = 1e-9
#: float32 vs float64: max |u32 - u64| / max(1, |u64|) for the sweep (u = T log n_200;
#: where both are finite -- the values float32 loses to -inf are counted apart),
#: L1 distance of the Perron vectors and |T log rho| difference for the steady state.
F32_TOL = 1e-3
PART_TIMEOUT = {"mdp64": 170.0, "mdp32": 110.0, "kron": 90.0, "lm": 90.0}  # 460 s in all
FULL = {"sizes": (200_000, 1_000_000), "lengths": (24, 25, 26, 27, 28), "lm": (8, 64), "repeats": 3}
#: S = 5000: below a few thousand states these operators are reducible and steady_state
#: takes a minute in a dense eig on the CPU; 5000 takes seconds (power iteration).
DRY = {"sizes": (5_000,), "lengths": (10, 12), "lm": (1, 16), "repeats": 1}
PART_KEYS = {
    "mdp": ("part", "S", "dtype", "sweep_s", "sweep_compile_s"),  # + steady_s or steady_error
    "kron": ("part", "L", "matvec_s", "copy_s", "compile_s", "bandwidth_fraction", "copy_gbs"),
    "lm": ("part", "batch", "length", "forward_s", "compile_s", "tokens_per_second"),
}


def _sweep_temps():
    import numpy as np

    return np.geomspace(1e-2, 10.0, 32)


# ------------------------------------------------------------------------- parts
def part_mdp(dtype: str, sizes, scratch: Path, reps: int) -> list[dict]:
    import numpy as np
    from bench_scale import csr_parts, make_mdp

    import quasispecies as qs

    rows = []
    for S in sizes:
        mdp = make_mdp("det", S)
        Ts = _sweep_temps()

        def sweep(mdp=mdp, Ts=Ts):
            return qs.scaled_log_population(mdp, Ts, 200)

        u, cold, warm, _ = C.measure(sweep, repeats=reps)
        u = np.asarray(u, dtype=np.float64)
        row = {
            "part": "mdp",
            "S": S,
            "dtype": dtype,
            "sweep_s": warm,
            "sweep_compile_s": cold - warm,
        }
        try:  # float32 steady states can fail inside the library: stated, not hidden
            res, scold, swarm, _ = C.measure(
                lambda mdp=mdp: qs.steady_state(mdp, 1.0), repeats=reps
            )
        except Exception as e:
            res, row["steady_error"] = None, f"{type(e).__name__}: {e}"
        else:
            row.update(steady_s=swarm, steady_compile_s=scold - swarm, steady_method=res.method)
        ref = scratch / f"mdp64_{S}.npz"
        if dtype == "float64":
            row["reference_error"] = _scipy_check(csr_parts(mdp), Ts, u, S)
            assert res is not None, row["steady_error"]
            x, g = np.asarray(res.population, dtype=np.float64), float(res.scaled_log_growth)
            np.savez(ref, u=u, x=x, g=g)
        else:
            r64 = np.load(ref)
            # float32 can lose (underflow to -inf) state values float64 keeps: counted, and
            # the error is taken where both are finite
            mism = np.isfinite(u) != np.isfinite(r64["u"])
            row["f32_sweep_lost_values"] = int(mism.sum())
            row["f32_sweep_lost_temperatures"] = int(mism.any(axis=1).sum())
            fin = np.isfinite(r64["u"]) & np.isfinite(u)
            du = np.abs(u[fin] - r64["u"][fin]) / np.maximum(1.0, np.abs(r64["u"][fin]))
            row["f32_sweep_rel_error"] = float(du.max())
            if res is not None:
                x = np.asarray(res.population, dtype=np.float64)
                row["f32_steady_l1"] = float(np.abs(x - r64["x"]).sum())
                row["f32_growth_error"] = abs(float(res.scaled_log_growth) - float(r64["g"]))
            worst = max(
                row.get(k, 0.0)
                for k in ("f32_sweep_rel_error", "f32_steady_l1", "f32_growth_error")
            )
            assert worst <= F32_TOL, row
        rows.append(row)
    return rows


def _scipy_check(parts, Ts, u, S: int) -> float:
    """max |u - u_SciPy| at the two largest temperatures (the linear loop is exact there)."""
    import numpy as np

    M, lk, r = parts
    err = 0.0
    for i in (len(Ts) - 1, len(Ts) // 2):
        T = Ts[i]
        W = M.copy()
        W.data = np.exp(lk + r / T)
        n, logc = np.full(S, 1.0 / S), 0.0
        for _ in range(200):
            n = W @ n
            s = n.sum()
            n /= s
            logc += np.log(s)
        with np.errstate(divide="ignore"):
            ub = np.where(n > 0, T * (np.log(n) + logc), -np.inf)
        fin = np.isfinite(ub)
        assert (fin == np.isfinite(u[i])).all(), "reachable sets differ from SciPy"
        err = max(err, float(np.max(np.abs(u[i][fin] - ub[fin]))))
    assert err <= TOL, err
    return err


def part_kron(lengths, check: bool, reps: int) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from quasispecies.kernels.kronecker import mutate, site_weights

    copy = jax.jit(jnp.copy)
    rows = []
    for L in lengths:
        mu = np.random.default_rng(L).uniform(0.002, 0.02, L)
        w = jnp.asarray(site_weights(mu, 2))
        x = jax.random.uniform(jax.random.PRNGKey(L), (2**L,), dtype=jnp.float64)
        y, cold, warm, _ = C.measure(lambda x=x, w=w: mutate(x, w, 2), repeats=reps)
        _, _, tcopy, _ = C.measure(lambda x=x: copy(x), repeats=reps + 2)
        row = {"part": "kron", "L": L, "matvec_s": warm, "copy_s": tcopy, "compile_s": cold - warm}
        row.update(bandwidth_fraction=tcopy / warm, copy_gbs=2 * x.nbytes / tcopy / 1e9)
        row["bytes_per_matvec"] = 2 * x.nbytes
        if check:
            from bench_sequence import numpy_kron_matvec

            ref = numpy_kron_matvec(np.asarray(x), mu)
            row["reference_error"] = float(np.max(np.abs(np.asarray(y) - ref)))
            assert row["reference_error"] <= TOL, row
        del x, y
        rows.append(row)
    return rows


def part_lm(batch: int, length: int, reps: int) -> list[dict]:
    import jax.numpy as jnp
    import numpy as np

    from quasispecies.bridge import default_lm
    from quasispecies.bridge.llama import sequence_logprobs

    lm = default_lm()
    tokens = np.random.default_rng(0).integers(100, lm.vocab_size, size=(batch, length))
    jt = jnp.asarray(tokens.astype(np.int32))
    lp, cold, warm, _ = C.measure(
        lambda: sequence_logprobs(lm.params, lm.config, jt, 0)[0], repeats=reps
    )
    assert np.isfinite(np.asarray(lp)).all() and (np.asarray(lp) <= 1e-5).all()
    row = {"part": "lm", "batch": batch, "length": length, "forward_s": warm}
    row.update(compile_s=cold - warm, tokens_per_second=batch * length / warm, model=lm.name)
    return [row]


def run_part(name: str, cfg: dict, scratch: Path, dry: bool) -> list[dict]:
    if name in ("mdp64", "mdp32"):
        dtype = "float64" if name == "mdp64" else "float32"
        return part_mdp(dtype, cfg["sizes"], scratch, cfg["repeats"])
    if name == "kron":
        return part_kron(cfg["lengths"], dry, cfg["repeats"])
    if name == "lm":
        return part_lm(*cfg["lm"], cfg["repeats"])
    raise ValueError(f"--part: unknown part {name!r}")


# ------------------------------------------------------------------------ driver
def check_schema(doc: dict) -> None:
    """Raise ``ValueError`` unless ``doc`` has the layout ``run_all.py`` reads."""
    for key in ("schema", "benchmark", "dry_run", "machine", "rows", "errors"):
        if key not in doc:
            raise ValueError(f"doc: missing key {key!r}")
    if not isinstance(doc["machine"].get("device"), str):
        raise ValueError("doc: machine.device must name the device")
    for r in doc["rows"]:
        keys = PART_KEYS.get(r.get("part"))
        if keys is None:
            raise ValueError(f"doc: row with unknown part {r.get('part')!r}")
        missing = [k for k in keys if r.get(k) is None]
        if r["part"] == "mdp" and r.get("steady_s") is None and not r.get("steady_error"):
            missing.append("steady_s")
        if missing:
            raise ValueError(f"doc: {r['part']} row lacks {missing}")


def drive(out: Path, dry: bool) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(C.ROOT), env.get("PYTHONPATH")]))
    rows, errors = [], {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qs-gpu-") as scratch:
        for part, limit in PART_TIMEOUT.items():
            penv = dict(env, QUASISPECIES_X64="0" if part == "mdp32" else "1")
            cmd = [sys.executable, __file__, "--part", part, "--scratch", scratch]
            cmd += ["--dry-run"] if dry else []
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=limit, env=penv, cwd=C.ROOT
                )
                got = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
                if proc.returncode != 0 or not got:
                    errors[part] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"
                rows += got
            except subprocess.TimeoutExpired:
                errors[part] = f"timed out after {limit:.0f} s"
            msg = errors.get(part, "ok").splitlines()[0][:200] if errors.get(part) else "ok"
            print(f"[{time.perf_counter() - t0:5.0f}s] {part}: {msg}", flush=True)
    doc = {
        "schema": C.SCHEMA_VERSION,
        "benchmark": NAME,
        "dry_run": dry,
        "description": __doc__.splitlines()[0],
        "command": "bash benchmarks/gpu.sh" + (" --dry-run" if dry else ""),
        "machine": C.machine(),
        "f32_tolerance": F32_TOL,
        "tolerance": TOL,
        "total_s": time.perf_counter() - t0,
        "rows": rows,
        "errors": errors,
    }
    check_schema(doc)
    from quasispecies.model.io import atomic_write

    with atomic_write(out, "w") as fh:
        json.dump(doc, fh, indent=1, default=C._json_default)
        fh.write("\n")
    return doc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="tiny sizes, temp file, schema check")
    p.add_argument("--out", default=None, help="where to write (default results/gpu.json)")
    p.add_argument("--part", default=None, help=argparse.SUPPRESS)
    p.add_argument("--scratch", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.part:
        import quasispecies  # noqa: F401  (x64 as QUASISPECIES_X64 says)

        for r in run_part(
            args.part, DRY if args.dry_run else FULL, Path(args.scratch), args.dry_run
        ):
            r["device"] = C.device_label()
            C.emit(r)
        return 0
    if args.dry_run:
        out = Path(args.out or tempfile.mkstemp(prefix="gpu-dry-", suffix=".json")[1])
        if C.RESULTS in out.resolve().parents:
            raise ValueError(f"--out: a dry run writes nothing under {C.RESULTS}")
    else:
        out = Path(args.out) if args.out else C.RESULTS / f"{NAME}.json"
    doc = drive(out, args.dry_run)
    print(f"wrote {out} ({doc['machine']['device']}, {doc['total_s']:.0f} s)")
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
