"""Saving and loading MDPs (``.npz``, ``.json`` and fitness tables).

File formats (DESIGN §4):

* ``.npz`` — arrays ``P`` (S, A, S) and ``R`` (S, A) or (S, A, S), optional ``pi0``
  (S, A) and ``x0`` (S,). A deterministic MDP may instead store ``next_state`` (S, A)
  with ``R`` (S, A), which keeps a 10^6-state MDP small.
* ``.json`` — the same keys as nested lists (``-inf`` rewards as the string ``"-inf"``).
* ``.csv``, ``.jsonl``, ``.parquet`` — fitness tables with columns
  ``state, action, next_state, reward`` and optional ``prob``
  (see :mod:`quasispecies.model.tables`).

Every write goes to a temporary file in the target directory first and is renamed
into place, so an interrupted or failed write never leaves a partial file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from quasispecies.model.files import atomic_write, read_npz
from quasispecies.model.mdp import MDP
from quasispecies.model.tables import SUFFIXES as TABLE_SUFFIXES, load_table_mdp, write_table
from quasispecies.model.validate import check_distribution

__all__ = ["atomic_write", "load_mdp", "save_mdp"]


def _encode(a: np.ndarray):
    a = np.asarray(a, dtype=np.float64)
    if np.isneginf(a).any():
        return np.where(np.isneginf(a), "-inf", a.astype(object)).tolist()
    return a.tolist()


def _decode(x, name: str, path) -> np.ndarray:
    def conv(v):
        if isinstance(v, list):
            return [conv(w) for w in v]
        if v == "-inf":
            return -np.inf
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"{path}: key {name!r} holds a non-number {v!r}")
        try:
            return float(v)
        except OverflowError:
            raise ValueError(f"{path}: key {name!r} holds a number too large for a float") from None

    try:
        return np.asarray(conv(x), dtype=np.float64)
    except (ValueError, RecursionError) as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path}: key {name!r} is not a rectangular array of numbers") from None


def _numbers(a: np.ndarray, name: str, path) -> np.ndarray:
    """``a`` if it holds numbers (bool, int or float), else ``ValueError`` naming ``path``."""
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{path}: key {name!r} holds {a.dtype} data, expected numbers")
    return a


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The numeric arrays of an ``.npz`` archive; ``ValueError`` naming the file if it is
    damaged, not an ``.npz`` archive, or holds non-numeric (or pickled) arrays."""
    data = read_npz(path)
    return {k: _numbers(v, k, path) for k, v in data.items()}


def save_mdp(path, mdp: MDP, x0=None) -> Path:
    """Write ``mdp`` (and optionally ``x0``) to ``.npz`` or ``.json``, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    arrays: dict[str, Any] = {}
    if mdp.num_successors == 1 and not mdp.dense:
        arrays["next_state"] = mdp.next_state[:, :, 0].astype(np.int64)
        arrays["R"] = mdp.reward[:, :, 0]
    else:
        arrays["P"] = mdp.P
        arrays["R"] = mdp.R
    arrays["pi0"] = mdp.pi0
    if x0 is not None:
        arrays["x0"] = np.asarray(x0, dtype=np.float64)
    if suffix == ".npz":
        with atomic_write(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    elif suffix == ".json":
        doc = {k: (v.tolist() if k == "next_state" else _encode(v)) for k, v in arrays.items()}
        with atomic_write(path, "w") as fh:
            json.dump(doc, fh)
    elif suffix in TABLE_SUFFIXES:
        write_table(path, mdp, x0=x0)
    else:
        raise ValueError(
            f"path: unknown MDP file type {path.suffix!r} (use .npz, .json, .csv, .jsonl, .parquet)"
        )
    return path


def load_mdp(path) -> tuple[MDP, np.ndarray | None]:
    """Read an MDP file; returns ``(mdp, x0)`` with ``x0`` ``None`` when the file has none.

    A corrupt, truncated or incomplete file raises ``ValueError`` naming the file and
    what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"MDP_FILE: {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return load_table_mdp(path)
    if suffix == ".npz":
        data = _read_npz(path)
    elif suffix == ".json":
        try:
            doc = json.loads(path.read_text())
        except (ValueError, RecursionError) as err:  # also a >4300-digit integer
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a JSON object with keys P, R (or next_state, R)")
        data = {}
        for k, v in doc.items():
            if k == "next_state":
                try:
                    arr = np.asarray(v)
                except (ValueError, TypeError, OverflowError):
                    arr = np.asarray(None)  # ragged: refused just below as non-numbers
                data[k] = _numbers(arr, k, path)
            elif k in ("P", "R", "pi0", "x0"):
                data[k] = _decode(v, k, path)
    else:
        raise ValueError(
            f"MDP_FILE: unknown file type {path.suffix!r} (use .npz, .json, .csv, .jsonl, .parquet)"
        )
    if "R" not in data or ("P" not in data and "next_state" not in data):
        missing = [k for k in ("P", "R") if k not in data]
        raise ValueError(
            f"{path}: incomplete MDP file, missing key(s) {missing} (need P and R, or next_state and R)"
        )
    ns = data.get("next_state")
    if ns is not None and ns.dtype.kind not in "iu":
        ns = ns.astype(np.float64) if ns.dtype.kind == "f" else ns
        whole = ns.dtype.kind == "f" and bool(np.all(np.isfinite(ns) & (ns == np.round(ns))))
        if not whole or np.abs(ns).max(initial=0) >= 2.0**62:
            raise ValueError(
                f"{path}: key 'next_state' holds {ns.dtype} data, expected state indices"
            )
        data["next_state"] = ns.astype(np.int64)
    try:
        if "P" in data:
            mdp = MDP(data["P"], data["R"], data.get("pi0"))
        else:
            mdp = MDP.from_transitions(data["next_state"], data["R"], data.get("pi0"))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    x0 = data.get("x0")
    if x0 is not None:
        try:
            x0 = check_distribution(x0, "x0", size=mdp.num_states)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return mdp, x0
