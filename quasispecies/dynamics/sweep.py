"""Temperature sweeps: many ``T`` at once, with progress and resumable checkpoints.

Two kinds of sweep, both over a 1-D array of temperatures:

* **stationary** (no horizon): per ``T`` the quasispecies of ``W_T`` —
  ``T log rho(W_T)``, the population, its mass on the optimal (critical) cycles;
* **finite horizon** (``horizon=H``): per ``T`` the path sum from ``x0`` —
  ``u_H = T log n_H`` per state, the path-integral value ``T log sum n_H`` and the
  normalised population ``x_H``; a chunk of temperatures is one ``vmap``.

Work runs in chunks; after each chunk the finished rows are written (atomically) to
``checkpoint``. Rerunning with the same arguments and checkpoint skips the finished
chunks, so an interrupted sweep resumes to results identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from quasispecies.dynamics import steady
from quasispecies.dynamics.horizon import evolve, resolve_layout, scaled_log_population
from quasispecies.dynamics.steady import steady_state
from quasispecies.kernels.maxplus import (
    critical_nodes,
    howard_sparse,
    max_plus_eigenvalue,
    support_edges,
)
from quasispecies.model.files import atomic_write, dump_json, read_json, read_npz
from quasispecies.model.mdp import MDP, initial_population
from quasispecies.model.validate import check_nonneg_int, check_temperature
from quasispecies.semiring.core import scaled_lse

__all__ = ["load_result", "read_checkpoint", "save_result", "temperature_sweep"]


def _fingerprint(mdp: MDP, temperatures: np.ndarray, horizon, x0) -> str:
    h = hashlib.sha256()
    for a in (mdp.next_state, mdp.prob, mdp.reward, mdp.pi0, temperatures):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr((horizon, None if x0 is None else np.asarray(x0).tobytes())).encode())
    return h.hexdigest()


def _support_spectrum(mdp: MDP) -> tuple[float, np.ndarray]:
    """Maximum cycle mean and critical-state mask; from edge lists above the dense limit.

    Sparse case: :func:`~quasispecies.kernels.maxplus.howard_sparse` on the strong components
    that hold a cycle gives ``eta`` and a bias ``x`` with ``w + x[dst] <= eta + x[src]``;
    the critical states are those on cycles of the tight edges (equality, ``eta = mu``).
    """
    S = mdp.num_states
    if mdp.dense or S <= steady.DENSE_STEADY_LIMIT:
        A0 = mdp.max_plus_weights()
        mu = max_plus_eigenvalue(A0)
        return mu, critical_nodes(A0, mu)
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst, w, _, _ = support_edges(mdp)
    crit = np.zeros(S, dtype=bool)
    g = csr_matrix((np.ones(src.size), (src, dst)), shape=(S, S))
    _, lab = connected_components(g, directed=True, connection="strong")
    core = np.flatnonzero(lab[src] == lab[dst])
    nodes = np.unique(src[core])
    if nodes.size == 0:
        return -np.inf, crit
    where = np.full(S, -1, dtype=np.int64)
    where[nodes] = np.arange(nodes.size)
    cs, cd, cw = where[src[core]], where[dst[core]], w[core]
    eta, x, _ = howard_sparse(nodes.size, cs, cd, cw)
    mu = float(eta.max())
    tol = 1e-9 * max(1.0, abs(mu), float(np.max(np.abs(x))))
    tight = (eta[cs] >= mu - tol) & (eta[cd] >= mu - tol) & (np.abs(cw + x[cd] - mu - x[cs]) <= tol)
    n = nodes.size
    tg = csr_matrix((np.ones(int(tight.sum())), (cs[tight], cd[tight])), shape=(n, n))
    ncomp, tl = connected_components(tg, directed=True, connection="strong")
    size = np.bincount(tl, minlength=ncomp)
    loop = np.zeros(n, dtype=bool)
    loop[cs[tight & (cs == cd)]] = True
    on = (size[tl] > 1) | loop
    crit[nodes[on]] = True
    return mu, crit


def _rows_for(
    mdp: MDP, T: np.ndarray, horizon: int | None, x0, crit: np.ndarray
) -> dict[str, np.ndarray]:
    if horizon is None:
        res = steady_state(mdp, T, x0)
        pop = np.atleast_2d(res.population)
        return {
            "population": pop,
            "scaled_log_growth": np.atleast_1d(res.scaled_log_growth),
            "log_growth": np.atleast_1d(res.log_growth),
            "critical_mass": pop[:, crit].sum(axis=1),
            "irreducible": np.atleast_1d(res.irreducible),
        }
    if resolve_layout(mdp) == "pull":  # final step only, no history
        from quasispecies.kernels.pull import horizon as pull_horizon

        hres = pull_horizon(mdp, T, horizon, initial_population(mdp, x0))
        assert hres.x is not None  # population=True (the default)
        if not (hres.x.sum(axis=-1) > 0).all():
            raise ValueError(f"mdp: no lineage survives to step {horizon} from x0")
        u, xs = hres.u, hres.x
    else:
        u = scaled_log_population(mdp, T, horizon, x0)
        xs = evolve(mdp, T, horizon, x0)[:, -1, :]
    value = np.asarray(scaled_lse(jnp.asarray(u), jnp.asarray(T)[:, None], axis=-1))
    return {"scaled_log_population": u, "population": xs, "value": value}


def read_checkpoint(path, fingerprint: str, n_temperatures: int) -> tuple[int, dict[str, list]]:
    """``(n_done, {name: [rows]})`` from a sweep checkpoint; ``(0, {})`` when it belongs to
    another sweep (other fingerprint). ``ValueError`` naming the file (the ``--checkpoint``
    flag) when it is damaged or its rows do not match its ``n_done``."""
    where = f"checkpoint: {path}"
    try:
        z = read_npz(path, "sweep checkpoint; delete it to start the sweep over")
    except ValueError as err:
        raise ValueError(f"checkpoint: {err}") from None
    fp, n = z.get("fingerprint"), z.get("n_done")
    if fp is None or n is None or fp.shape != () or n.shape != () or n.dtype.kind not in "iu":
        raise ValueError(f"{where}: not a sweep checkpoint (no scalar fingerprint and n_done)")
    if str(fp) != fingerprint:
        return 0, {}
    n_done = int(n)
    if not 0 <= n_done <= n_temperatures:
        raise ValueError(f"{where}: n_done = {n_done} outside [0, {n_temperatures}]")
    done = {k[4:]: [v] for k, v in z.items() if k.startswith("row_")}
    for k, (v,) in done.items():
        if v.ndim == 0 or len(v) != n_done or v.dtype.kind not in "biuf":
            raise ValueError(
                f"{where}: row {k!r} has shape {v.shape} ({v.dtype}), not {n_done} rows"
            )
    return n_done, done


def temperature_sweep(
    mdp: MDP,
    temperatures,
    *,
    horizon: int | None = None,
    x0=None,
    checkpoint=None,
    chunk: int = 32,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run a stationary or finite-horizon sweep over ``temperatures`` (see module doc).

    Returns a dict of arrays with a leading temperature axis plus ``temperatures``,
    ``max_cycle_mean`` (stationary) and ``critical`` (mask of optimal-cycle states).
    """
    T, _ = check_temperature(np.atleast_1d(np.asarray(temperatures, dtype=float)), "temperatures")
    if horizon is not None:
        horizon = check_nonneg_int(horizon, "horizon")
    chunk = check_nonneg_int(chunk, "chunk", minimum=1)
    x0v = initial_population(mdp, x0) if x0 is not None else None
    mu, crit = _support_spectrum(mdp)
    fp = _fingerprint(mdp, T, horizon, x0v)
    done: dict[str, list] = {}
    n_done = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        n_done, done = read_checkpoint(ckpt, fp, len(T))
    from tqdm.auto import tqdm

    show = progress if progress is not None else len(T) > chunk
    bar = tqdm(total=len(T), initial=n_done, disable=not show, desc="temperatures", unit="T")
    for start in range(n_done, len(T), chunk):
        rows = _rows_for(mdp, T[start : start + chunk], horizon, x0v, crit)
        for k, v in rows.items():
            done.setdefault(k, []).append(np.asarray(v))
        n_done = min(start + chunk, len(T))
        if ckpt is not None:
            arrays: dict[str, Any] = {f"row_{k}": np.concatenate(v) for k, v in done.items()}
            with atomic_write(ckpt, "wb") as fh:
                np.savez(fh, fingerprint=np.asarray(fp), n_done=np.asarray(n_done), **arrays)
        bar.update(n_done - bar.n)
    bar.close()
    out: dict[str, Any] = {k: np.concatenate(v) for k, v in done.items()}
    out["temperatures"] = T
    out["critical"] = crit
    out["max_cycle_mean"] = mu
    if horizon is not None:
        out["horizon"] = horizon
    return out


def save_result(path, result: dict[str, Any]) -> Path:
    """Write a sweep result to ``.npz`` or ``.json`` atomically (JSON: ``inf`` as the
    ``Infinity`` token, NaN as ``null``; :mod:`quasispecies.model.files`)."""
    path = Path(path)
    if path.suffix == ".npz":
        with atomic_write(path, "wb") as fh:
            arrays: dict[str, Any] = {k: np.asarray(v) for k, v in result.items()}
            np.savez_compressed(fh, **arrays)
    elif path.suffix == ".json":
        with atomic_write(path, "w") as fh:
            fh.write(dump_json(dict(result)))
    else:
        raise ValueError(f"out: unknown result file type {path.suffix!r} (use .npz or .json)")
    return path


def _json_array(v) -> np.ndarray:
    arr = np.asarray(v)
    if arr.dtype == object:  # numbers with null (NaN) entries
        arr = np.asarray(v, dtype=np.float64)
    return arr


def load_result(path) -> dict[str, np.ndarray]:
    """Read a sweep result written by :func:`save_result` (``.npz`` or ``.json``; in JSON
    both ``Infinity`` tokens and the older ``"inf"`` strings read back as floats, ``null``
    as NaN). ``ValueError`` naming ``path`` for a file that is not a sweep result."""
    path = Path(path)
    if path.suffix == ".json":
        doc = read_json(path)
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a JSON object of result arrays")
        try:
            return {k: _json_array(v) for k, v in doc.items()}
        except (TypeError, ValueError, OverflowError) as err:
            raise ValueError(f"{path}: not a sweep result ({err})") from None
    return read_npz(path, "sweep result .npz file")
