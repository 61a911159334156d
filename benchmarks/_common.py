"""Shared helpers for ``benchmarks/bench_*.py``: timing, peak memory, machine, result files.

Every benchmark script follows one pattern (see ``benchmarks/README.md`` for the schema):

* ``python benchmarks/bench_X.py`` runs each case in its own subprocess
  (``--case KEY``), so peak memory is per case and one case's allocations (XLA keeps its
  buffers) do not leak into the next; it collects the rows and writes
  ``benchmarks/results/X.json`` atomically;
* inside a case, ours and the baseline run in the same process on the same inputs; ours is
  timed cold (first call: jit compile and one-time set-up) and warm, the baseline warm;
  each timing is taken after ``block_until_ready()``; and the fast path's result is
  checked against the baseline's numbers (``max_error <= tolerance``, 1e-9 unless a row
  says why not).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

SCHEMA_VERSION = 1
RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent

ROW_KEYS = (
    "name",  # what is measured (same for every size of one series)
    "size",  # the problem size, human readable ("S=200000, A=4, B=1")
    "ours",  # what of ours ran (function / path)
    "ours_s",  # warm wall time of ours, seconds
    "baseline",  # what it is compared with (library and call)
    "baseline_s",  # warm wall time of the baseline, seconds (None: no baseline)
    "ratio",  # baseline_s / ours_s: > 1 means we are faster
    "compile_s",  # ours cold minus warm: jit compile and one-time set-up
    "peak_mb",  # peak resident memory added by ours (MiB, VmHWM delta)
    "baseline_peak_mb",  # the same for the baseline
    "device",  # where ours ran (jax device kind; the baseline runs on the host CPU)
    "dtype",  # float64 unless stated
    "max_error",  # largest deviation from the baseline's result (see "error_metric")
    "error_metric",  # how max_error is measured
    "tolerance",  # the bound asserted inside the benchmark
    "notes",  # where we are behind and why; caveats
)


# ------------------------------------------------------------------ measurement
def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_mb() -> float:
    """Peak resident set size of this process since the last :func:`reset_peak` (MiB)."""
    return _status_kb("VmHWM") / 1024


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux ``/proc/self/clear_refs``, value 5)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _status_kb(key: str) -> int:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: fall back to getrusage (peak since start, KiB)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m = re.search(rf"{key}:\s+(\d+)", text)
    return int(m.group(1)) if m else 0


def block(x):
    """``jax.block_until_ready`` on any pytree (NumPy leaves pass through)."""
    import jax

    return jax.block_until_ready(x)


def measure(fn, *, repeats: int = 1, cold: bool = True):
    """Run ``fn`` (which must return only when done) and time it.

    Returns ``(result, cold_s, warm_s, peak_added_mb)``: ``cold_s`` is the first call
    (``None`` when ``cold=False``), ``warm_s`` the best of ``repeats`` further calls, and
    the memory figure is the VmHWM increase over the RSS before the first call.
    """
    before = rss_mb()
    reset_peak()
    cold_s = None
    if cold:
        t = time.perf_counter()
        out = block(fn())
        cold_s = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = block(fn())
        best = min(best, time.perf_counter() - t)
    return out, cold_s, best, max(0.0, peak_mb() - before)


# ---------------------------------------------------------------------- machine
def device_label() -> str:
    """``cpu: AMD EPYC (2 cores)`` or the accelerator's device kind."""
    import jax

    d = jax.devices()[0]
    if d.platform == "cpu":
        model = platform.processor() or ""
        with contextlib.suppress(OSError):
            m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
            model = m.group(1).strip() if m else model
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return f"cpu: {model} ({n} cores)"
    return f"{d.platform}: {d.device_kind}"


def has_gpu() -> bool:
    import jax

    return any(d.platform == "gpu" for d in jax.devices())


def machine() -> dict:
    import jax
    import numpy
    import scipy

    return {
        "device": device_label(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def stream_bandwidth_gbs(n: int = 1 << 25, dtype: str = "float64") -> float:
    """Measured device memory bandwidth (GB/s) of ``y = x * 2`` (read + write), best of 5.

    The reference for "fraction of the bandwidth bound": a kernel that moves ``b`` bytes
    in ``t`` seconds runs at ``b / t / stream_bandwidth_gbs()`` of what this device can
    stream.
    """
    import jax
    import jax.numpy as jnp

    x = jnp.ones(n, dtype=dtype)
    f = jax.jit(lambda v: v * 2.0)
    block(f(x))
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        block(f(x))
        best = min(best, time.perf_counter() - t)
    return 2 * x.nbytes / best / 1e9


# ---------------------------------------------------------------------- results
def row(**kw) -> dict:
    """A result row with every schema key present (missing ones ``None``) and the ratio."""
    out = {k: kw.pop(k, None) for k in ROW_KEYS}
    if out["ratio"] is None and out["ours_s"] and out["baseline_s"]:
        out["ratio"] = out["baseline_s"] / out["ours_s"]
    out["dtype"] = out["dtype"] or "float64"
    out.update(kw)  # extra, benchmark-specific keys are allowed
    return out


def merge_partial(name: str, rows: list[dict], order: list[str]) -> list[dict]:
    """A partial rerun's ``rows`` with the other cases' rows of the existing results file
    ``results/<name>.json`` (``name`` may be a ``<benchmark>.quick`` file).

    Rows of the rerun replace those with the same ``case``; the result is sorted by the
    position of each ``case`` in ``order``.
    """
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return rows
    done = {r.get("case") for r in rows}
    old = [r for r in json.loads(path.read_text())["rows"] if r.get("case") not in done]
    rank = {k: i for i, k in enumerate(order)}
    return sorted(old + rows, key=lambda r: rank.get(str(r.get("case")), len(rank)))


def write_results(
    name: str, rows: list[dict], *, description: str, command: str, file: str | None = None
) -> Path:
    """Write ``benchmarks/results/<file or name>.json`` atomically (the schema in the README)."""
    sys.path.insert(0, str(ROOT))
    from quasispecies.model.io import atomic_write

    doc = {
        "schema": SCHEMA_VERSION,
        "benchmark": name,
        "description": description,
        "command": command,
        "generated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rows": rows,
    }
    path = RESULTS / f"{file or name}.json"
    with atomic_write(path, "w") as fh:
        json.dump(doc, fh, indent=1, default=_json_default)
        fh.write("\n")
    return path


def _json_default(v):
    import numpy as np

    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def run_case(script: str, key: str, timeout: float, extra: list[str] | None = None) -> list[dict]:
    """Run ``script --case key`` in a fresh interpreter; return the JSON rows it printed.

    A case prints each row as one stdout line starting with ``{``. A failure or timeout
    becomes one row with ``error`` set (and the benchmark file still gets written).
    """
    cmd = [sys.executable, script, "--case", key, *(extra or [])]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return [{"case": key, "error": f"timed out after {timeout:.0f} s"}]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return [{"case": key, "error": f"exit {proc.returncode}: {tail}"}]
    rows = [json.loads(ln) for ln in lines]
    for r in rows:
        r["case"] = key
    return rows


def emit(r: dict) -> None:
    """Print a case's row as one JSON line (what :func:`run_case` reads)."""
    print(json.dumps(r, default=_json_default), flush=True)


def _summary(r: dict) -> str:
    base = r.get("baseline_s")
    text = f"ours {r['ours_s']:.3g}s  baseline " + ("-" if base is None else f"{base:.3g}s")
    if r.get("ratio") is not None:
        text += f"  ratio {r['ratio']:.2f}"
    if r.get("max_error") is not None:
        text += f"  err {r['max_error']:.1e}"
    return text


def drive(
    script: str,
    name: str,
    doc: str,
    keys: list[str],
    *,
    all_keys: list[str],
    timeout: float,
    quick: bool = False,
    only: str | None = None,
    extra: list[str] | None = None,
    describe=_summary,
) -> int:
    """Run each case of ``keys`` in its own process and write ``results/<name>.json``.

    ``only`` keeps the cases whose key starts with it, and the other cases' rows of the
    existing results file (``all_keys`` gives their order). Prints one progress line per
    row (``describe(row)``); returns the exit code (1 if any case failed).
    """
    rows = []
    t0 = time.perf_counter()
    for key in keys:
        if only and not key.startswith(only):
            continue
        for r in run_case(script, key, timeout, extra):
            r.setdefault("case", key)
            rows.append(r)
            msg = r.get("error") or describe(r)
            print(f"[{time.perf_counter() - t0:6.0f}s] {key}: {msg}", flush=True)
    # a --quick (smoke) run writes results/<name>.quick.json, which the tables ignore, so it
    # never replaces or mixes into the full run's rows
    file = f"{name}.quick" if quick else name
    if only:  # a partial rerun replaces its cases' rows and keeps the others
        rows = merge_partial(file, rows, keys if quick else all_keys)
    write_results(
        name,
        rows,
        file=file,
        description=doc.split("\n\n")[0],
        command=f"python benchmarks/{Path(script).name}" + (" --quick" if quick else ""),
    )
    return 0 if all("error" not in r for r in rows) else 1


def parser(doc: str, *, quick_help: str, timeout: float) -> argparse.ArgumentParser:
    """The command line every ``bench_*.py`` shares: ``--quick``, ``--only``, ``--timeout``
    (and the hidden ``--case KEY`` its subprocesses are started with)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--only", default=None, help="run only cases whose key starts with this")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=float, default=timeout, help="per-case limit, seconds")
    return p


def main(
    args: argparse.Namespace,
    script: str,
    name: str,
    doc: str,
    case_keys,
    run,
    *,
    extra: list[str] | None = None,
    describe=_summary,
) -> int:
    """``--case KEY``: run ``run(KEY)`` here and emit its row (or list of rows); otherwise
    :func:`drive` every case of ``case_keys(quick)`` in its own process."""
    if args.case:
        import quasispecies  # noqa: F401  (x64 on)

        out = run(args.case)
        for r in out if isinstance(out, list) else [out]:
            emit(r)
        return 0
    return drive(
        script,
        name,
        doc,
        case_keys(args.quick),
        all_keys=case_keys(False),
        timeout=args.timeout,
        quick=args.quick,
        only=args.only,
        extra=extra,
        describe=describe,
    )
