"""Temperature sweeps and steady states over a ``jax.distributed`` job (several processes).

The temperature axis is cut into blocks of ``chunk`` temperatures, the same blocks as
:func:`quasispecies.dynamics.sweep.temperature_sweep`. One global
:class:`jax.sharding.Mesh` (axis ``"temperature"``) spans ``jax.devices()``, the devices of
all processes. Each round takes the next ``n`` pending blocks (``n`` processes) and lays
their temperatures evenly over the mesh
(:func:`quasispecies.kernels.sharding.rows_over_devices`): every process computes, for
each of its own local devices and on that device, the single-process rows of that
device's shard (per ``T`` a steady state, or the finite-horizon path sum), packed into
one float64 matrix; the global array of rows is gathered on every process
(:func:`jax.experimental.multihost_utils.process_allgather`, a pure copy). Every
temperature's numbers come from the same program on the same inputs whatever the
process and device counts, so the result is bitwise the one-process result.

Only process 0 reads and writes files. The checkpoint is keyed by **temperature**
(``temperatures`` = the finished ones, ``row_*`` their rows, plus a fingerprint of the
MDP, horizon and ``x0``), never by process: a sweep begun with 3 processes resumes with
2 (or 1), and a sweep over a different grid reuses every temperature already done.

Start-up (:func:`initialize`): ``coordinator`` ``HOST:PORT``, ``num_processes`` and
``process_id`` from arguments, else from ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, else ``SLURM_NTASKS`` / ``SLURM_PROCID``;
whatever is still missing is left to JAX's own cluster detection (SLURM node list,
Open MPI, Kubernetes indexed jobs, TPU pods). :func:`launch_local` starts ``n`` copies of
a command on ``127.0.0.1`` (for tests and for trying it on one machine).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from quasispecies.dynamics import sweep
from quasispecies.model.files import atomic_write, read_npz
from quasispecies.model.mdp import MDP, initial_population
from quasispecies.model.validate import check_nonneg_int, check_temperature

__all__ = [
    "Cluster",
    "cluster_from_env",
    "distributed_sweep",
    "free_port",
    "initialize",
    "launch_local",
]


class Cluster(NamedTuple):
    """Where a process sits in the job; ``None`` fields are left to JAX's detection."""

    coordinator: str | None
    num_processes: int | None
    process_id: int | None


def _env_int(env: Mapping[str, str], names: Sequence[str]) -> int | None:
    for name in names:
        text = env.get(name)
        if text not in (None, ""):
            try:
                return int(str(text))
            except ValueError:
                raise ValueError(f"{name}: expected an integer, got {text!r}") from None
    return None


def cluster_from_env(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Cluster:
    """Arguments first, then ``JAX_*`` then ``SLURM_*`` variables (see module doc); checked:
    ``coordinator`` is ``HOST:PORT``, ``num_processes >= 1``, ``0 <= process_id < n``."""
    env = os.environ if env is None else env
    coord = coordinator or env.get("JAX_COORDINATOR_ADDRESS") or None
    n = (
        num_processes
        if num_processes is not None
        else _env_int(env, ["JAX_NUM_PROCESSES", "SLURM_NTASKS"])
    )
    pid = (
        process_id if process_id is not None else _env_int(env, ["JAX_PROCESS_ID", "SLURM_PROCID"])
    )
    if coord is not None:
        host, sep, port = coord.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"coordinator: expected HOST:PORT, got {coord!r}")
    if n is not None:
        check_nonneg_int(n, "num_processes", minimum=1)
    if pid is not None:
        check_nonneg_int(pid, "process_id")
        if n is not None and pid >= n:
            raise ValueError(f"process_id: must be < num_processes = {n}, got {pid}")
    return Cluster(coord, n, pid)


def initialize(cluster: Cluster | None = None, *, timeout: int = 120) -> tuple[int, int]:
    """``jax.distributed.initialize`` for ``cluster`` (default :func:`cluster_from_env`);
    call before any JAX computation (a second call is a no-op). CPU cross-process
    collectives use gloo. Returns ``(process_index, process_count)``."""
    import jax

    c = cluster_from_env() if cluster is None else cluster
    timeout = check_nonneg_int(timeout, "timeout", minimum=1)
    if jax.distributed.is_initialized():
        return jax.process_index(), jax.process_count()
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=c.coordinator,
            num_processes=c.num_processes,
            process_id=c.process_id,
            initialization_timeout=timeout,
        )
    except ValueError as err:  # nothing given and no cluster detected
        raise ValueError(
            f"coordinator: {err} (give coordinator, num_processes and process_id, or set "
            "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)"
        ) from None
    return jax.process_index(), jax.process_count()


# ------------------------------------------------------------------- row packing
def _schema(horizon: int | None, S: int) -> list[tuple[str, int, Any]]:
    """(key, width, dtype) of the rows :func:`quasispecies.dynamics.sweep._rows_for` makes."""
    if horizon is None:
        f = np.float64
        return [
            ("population", S, f),
            ("scaled_log_growth", 1, f),
            ("log_growth", 1, f),
            ("critical_mass", 1, f),
            ("irreducible", 1, np.bool_),
        ]
    return [
        ("scaled_log_population", S, np.float64),
        ("population", S, np.float64),
        ("value", 1, np.float64),
    ]


def _pack(rows: dict[str, np.ndarray], schema) -> np.ndarray:
    if set(rows) != {k for k, _, _ in schema}:  # a change in _rows_for must change _schema
        raise RuntimeError(f"sweep rows {sorted(rows)} do not match the packing schema")
    cols = [np.asarray(rows[k], dtype=np.float64).reshape(-1, w) for k, w, _ in schema]
    return np.concatenate(cols, axis=1)


def _unpack(packed: np.ndarray, schema) -> dict[str, np.ndarray]:
    out, at = {}, 0
    for k, w, dt in schema:
        block = packed[:, at : at + w]
        out[k] = (block if w > 1 else block[:, 0]).astype(dt)
        at += w
    return out


# ------------------------------------------------------------------- checkpoint
def _read_checkpoint(ckpt: Path | None, fp: str, T: np.ndarray, schema, done, packed) -> None:
    """Fill ``packed`` / ``done`` from the rows of ``ckpt`` whose temperature is in ``T``."""
    if ckpt is None or not ckpt.exists():
        return
    try:
        z = read_npz(ckpt, "sweep checkpoint; delete it to start the sweep over")
    except ValueError as err:
        raise ValueError(f"checkpoint: {err}") from None
    if "temperatures" not in z or "fingerprint" not in z or str(z["fingerprint"]) != fp:
        return  # another sweep's checkpoint (or the one-process format): start afresh
    temps = np.asarray(z["temperatures"], dtype=float).reshape(-1)
    try:
        rows = _pack({k: z[f"row_{k}"] for k, _, _ in schema}, schema)
    except (KeyError, ValueError, RuntimeError) as err:
        raise ValueError(f"checkpoint: {ckpt}: damaged rows ({err!r})") from None
    if rows.shape[0] != temps.size:
        raise ValueError(f"checkpoint: {ckpt}: {rows.shape[0]} rows for {temps.size} temperatures")
    have = {float(t): i for i, t in enumerate(temps)}
    for i, t in enumerate(T):
        j = have.get(float(t))
        if j is not None:
            packed[i], done[i] = rows[j], True


def _write_checkpoint(ckpt: Path, fp: str, T: np.ndarray, schema, done, packed) -> None:
    idx = np.flatnonzero(done)
    _, first = np.unique(T[idx], return_index=True)  # one row per distinct temperature
    idx = idx[np.sort(first)]
    rows: dict[str, Any] = {f"row_{k}": v for k, v in _unpack(packed[idx], schema).items()}
    with atomic_write(ckpt, "wb") as fh:
        np.savez(fh, fingerprint=np.asarray(fp), temperatures=T[idx], **rows)


# ------------------------------------------------------------------------ sweep
def distributed_sweep(
    mdp: MDP,
    temperatures,
    *,
    horizon: int | None = None,
    x0=None,
    checkpoint=None,
    chunk: int = 32,
    progress: bool | None = None,
) -> dict[str, Any]:
    """:func:`quasispecies.dynamics.sweep.temperature_sweep` split over the processes of a
    ``jax.distributed`` job (see module doc); every process calls it with the same
    arguments and every process gets the whole result (bitwise the one-process one).
    Without :func:`initialize` it runs as a job of one process."""
    import jax
    from jax.experimental import multihost_utils as mhu

    T, _ = check_temperature(np.atleast_1d(np.asarray(temperatures, dtype=float)), "temperatures")
    if horizon is not None:
        horizon = check_nonneg_int(horizon, "horizon")
    chunk = check_nonneg_int(chunk, "chunk", minimum=1)
    x0v = initial_population(mdp, x0) if x0 is not None else None
    me, n = jax.process_index(), jax.process_count()
    mu, crit = sweep._support_spectrum(mdp)
    fp = sweep._fingerprint(mdp, np.empty(0), horizon, x0v)
    schema = _schema(horizon, mdp.num_states)
    width = sum(w for _, w, _ in schema)
    K = len(T)
    packed = np.full((K, width), np.nan)
    done = np.zeros(K, dtype=bool)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    err: ValueError | None = None
    if me == 0:
        try:
            _read_checkpoint(ckpt, fp, T, schema, done, packed)
        except ValueError as e:
            err = e
    failed = err is not None
    if n > 1:  # every process learns what is done, and whether process 0 could read it
        flags = np.append(done, failed).astype(np.int32)
        flags = np.asarray(mhu.broadcast_one_to_all(flags))
        done, failed = flags[:-1].astype(bool), bool(flags[-1])
    if err is not None:
        raise err
    if failed:
        raise ValueError(f"checkpoint: process 0 could not read {ckpt}")
    blocks = [
        b
        for b in (np.arange(s, min(s + chunk, K)) for s in range(0, K, chunk))
        if not done[b].all()
    ]
    from tqdm.auto import tqdm

    show = (progress if progress is not None else K > chunk) and me == 0
    bar = tqdm(total=K, initial=int(done.sum()), disable=not show, desc="temperatures", unit="T")
    from quasispecies.kernels import sharding

    grid = sharding.mesh(jax.devices(), axis="temperature")  # every process's devices

    def rows(temps: np.ndarray) -> np.ndarray:
        return _pack(sweep._rows_for(mdp, temps, horizon, x0v, crit), schema)

    for r in range(0, len(blocks), n):  # a round: one block per process, over the mesh
        todo = np.concatenate(blocks[r : r + n])
        todo = todo[~done[todo]]
        got = sharding.fetch(sharding.rows_over_devices(rows, T[todo], width, mesh=grid))
        at = sharding.rows_order(todo.size, grid)
        packed[todo[at[at >= 0]]], done[todo] = got[at >= 0], True
        if me == 0 and ckpt is not None:
            _write_checkpoint(ckpt, fp, T, schema, done, packed)
        bar.update(int(done.sum()) - bar.n)
    bar.close()
    if n > 1:  # rows restored from process 0's checkpoint reach the others too
        packed = np.asarray(mhu.broadcast_one_to_all(packed))
    out: dict[str, Any] = _unpack(packed, schema)
    out["temperatures"] = T
    out["critical"] = crit
    out["max_cycle_mean"] = mu
    if horizon is not None:
        out["horizon"] = horizon
    return out


# ------------------------------------------------------------------ local launch
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a local coordinator)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_local(
    argv: Sequence[str],
    num_processes: int,
    *,
    port: int | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    quiet_others: bool = True,
) -> int:
    """Run ``n`` copies of ``argv`` as one job on ``127.0.0.1``; returns the worst exit code.

    Copy ``i`` gets ``JAX_COORDINATOR_ADDRESS=127.0.0.1:PORT``, ``JAX_NUM_PROCESSES=n``,
    ``JAX_PROCESS_ID=i`` (so :func:`cluster_from_env` finds them). When one copy fails, or
    ``timeout`` seconds pass, the others are killed. With ``quiet_others`` only copy 0
    writes to stdout (all write to stderr)."""
    n = check_nonneg_int(num_processes, "num_processes", minimum=1)
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout: must be > 0 seconds, got {timeout}")
    port = free_port() if port is None else port
    base = dict(os.environ if env is None else env)
    procs = []
    for i in range(n):
        e = dict(base)
        e.update(
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES=str(n),
            JAX_PROCESS_ID=str(i),
        )
        out = subprocess.DEVNULL if quiet_others and i else None
        procs.append(subprocess.Popen(list(argv), env=e, stdout=out))
    deadline = None if timeout is None else time.monotonic() + timeout
    expired = False
    codes: list[int | None] = [None] * n
    try:
        while None in (codes := [p.poll() for p in procs]):
            if any(c not in (None, 0) for c in codes):
                break
            if deadline is not None and time.monotonic() > deadline:
                print(f"launch_local: killed after {timeout} s", file=sys.stderr)
                expired = True
                break
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    if expired:
        return 124
    # the processes that failed by themselves, before the others were killed
    bad = [c for c in codes if c not in (None, 0)] or [p.returncode for p in procs if p.returncode]
    return 0 if not bad else (bad[0] if bad[0] > 0 else 1)
