r"""Fitness tables: an MDP written as one row per transition.

Columns (DESIGN §4):

=============  ==========================================================
``state``      label of the state ``s`` (string or integer)
``action``     label of the action ``a`` within ``s`` (string or integer)
``next_state`` label of ``s'``; must also appear in the ``state`` column
``reward``     ``R(s, a, s')`` (a float; ``-inf`` disallows the row)
``prob``       optional: ``P(s' | s, a)``; rows of one ``(s, a)`` sum to 1.
               Without it each ``(s, a)`` has exactly one row (deterministic).
``pi0``        optional: exploration policy ``pi0(a | s)`` (same on every row of
               one ``(s, a)``); default uniform over the state's actions
``x0``         optional: initial population of the row's ``state`` (same on every
               row of one state); sums to 1 over states
=============  ==========================================================

Files: ``.csv`` (header row), ``.jsonl`` (one JSON object per row; ``-inf`` is
written as JSON's ``-Infinity``, the string ``"-inf"`` is read too) and ``.parquet``. Labels keep their type: all-integer label
columns become integers, anything else stays a string; in a CSV an integer-looking
label column is read as integers.

This module reads and writes the files (:func:`read_table`, :func:`write_table`,
:func:`load_table_mdp`) and re-exports the rest of the table API, so that
``quasispecies.tables`` is the one place to import it from: the :class:`Table` type
lives in :mod:`quasispecies.model.table`, the compiler to and from an MDP
(:func:`table_to_mdp`, :func:`mdp_to_table`; numbering of states and actions) in
:mod:`quasispecies.model.table_mdp`. Every write is atomic (a temporary file in the
target directory, then :func:`os.replace`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from quasispecies.model.files import atomic_write, dump_json
from quasispecies.model.mdp import MDP
from quasispecies.model.table import (
    OPTIONAL as OPTIONAL,
    REQUIRED as REQUIRED,
    SUFFIXES as SUFFIXES,
    Table as Table,
    from_columns,
)
from quasispecies.model.table_mdp import mdp_to_table as mdp_to_table, table_to_mdp as table_to_mdp
from quasispecies.model.validate import SUM_ATOL as SUM_ATOL

__all__ = [
    "OPTIONAL",
    "REQUIRED",
    "SUFFIXES",
    "SUM_ATOL",
    "Table",
    "load_table_mdp",
    "mdp_to_table",
    "read_table",
    "table_to_mdp",
    "write_table",
]


def _int_like(s: str) -> bool:
    t = s.strip()
    return bool(t) and (t.isdigit() or (t[0] in "+-" and t[1:].isdigit()))


def _read_csv(path: Path) -> dict[str, list]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path}: empty file (no header row)") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: duplicate column names in the header {header}")
    cols: dict[str, list] = {h: [] for h in header}
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(
                f"{path}: line {lineno} has {len(row)} fields, the header has {len(header)}"
            )
        for h, v in zip(header, row, strict=True):
            cols[h].append(v)
    # Integer-looking label columns are integers (state and next_state decide together).
    pairs = [("state", "next_state"), ("action",)]
    for group in pairs:
        present = [g for g in group if g in cols]
        if present and all(_int_like(v) for g in present for v in cols[g]):
            try:
                for g in present:
                    cols[g] = [int(v) for v in cols[g]]
            except ValueError as err:  # more than 4300 digits
                raise ValueError(f"{path}: column {g!r}: {err}") from None
    for c in OPTIONAL:
        if c in cols and all(v.strip() == "" for v in cols[c]):
            del cols[c]
    return cols


def _read_jsonl(path: Path) -> dict[str, list]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {lineno} is not valid JSON ({err.msg})") from None
        except (ValueError, RecursionError) as err:  # a >4300-digit integer, deep nesting
            raise ValueError(f"{path}: line {lineno} is not valid JSON ({err})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: line {lineno} is not a JSON object")
        rows.append(obj)
    if not rows:
        raise ValueError(f"{path}: the table has no rows")
    names = list(dict.fromkeys(k for r in rows for k in r))
    cols: dict[str, list] = {}
    for name in names:
        vals = []
        for i, r in enumerate(rows):
            if name not in r:
                if name in OPTIONAL:
                    raise ValueError(f"{path}: row {i} lacks column {name!r} that other rows have")
                raise ValueError(f"{path}: row {i} lacks column {name!r}")
            vals.append(r[name])
        cols[name] = vals
    return cols


def _read_parquet(path: Path) -> dict[str, list]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:  # a damaged file raises any of pyarrow's errors (ArrowInvalid, ...NotImplemented)
        tab = pq.read_table(path)
        names = tab.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names {names}")
        return {name: tab.column(name).to_pylist() for name in names}
    except (pa.ArrowException, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({err})") from None


def read_table(path) -> Table:
    """Read a fitness table from ``.csv``, ``.jsonl`` or ``.parquet``.

    Raises ``ValueError`` naming the file and the problem (missing columns, a
    non-numeric reward, mixed label types, malformed lines, an empty table).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        cols = _read_csv(path)
    elif suffix == ".jsonl":
        cols = _read_jsonl(path)
    elif suffix == ".parquet":
        cols = _read_parquet(path)
    else:
        raise ValueError(f"path: unknown table type {path.suffix!r} (use {', '.join(SUFFIXES)})")
    return from_columns(cols, path)


def load_table_mdp(path):
    """Read a fitness-table file and compile it: ``(MDP, x0 or None)`` (used by ``load_mdp``)."""
    return table_to_mdp(read_table(path), name=str(path))


# ---------------------------------------------------------------------- writing


def _atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def write_table(path, table, x0=None) -> Path:
    """Write a :class:`Table` (or an MDP, via :func:`mdp_to_table`) to ``path`` atomically.

    The format follows the suffix: ``.csv``, ``.jsonl`` or ``.parquet``. Floats are
    written with ``repr`` (CSV, JSONL) or as float64 (Parquet), so they read back exactly.
    """
    path = Path(path)
    if isinstance(table, MDP):
        table = mdp_to_table(
            table, x0=x0, labels=table.labels, action_labels=getattr(table, "action_labels", None)
        )
    elif not isinstance(table, Table):
        raise ValueError(f"table: expected a Table or an MDP, got {type(table).__name__}")
    elif x0 is not None:
        raise ValueError("x0: pass x0 only with an MDP (a Table carries its own x0 column)")
    suffix = path.suffix.lower()
    cols = table.columns
    if suffix == ".csv":
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for i in range(len(table)):
            w.writerow(
                [
                    getattr(table, c)[i]
                    if c in ("state", "action", "next_state")
                    else repr(float(getattr(table, c)[i]))
                    for c in cols
                ]
            )
        _atomic_bytes(path, buf.getvalue().encode("utf-8"))
    elif suffix == ".jsonl":
        lines = []
        for i in range(len(table)):
            row = {}
            for c in cols:
                v = getattr(table, c)[i]
                row[c] = v if c in ("state", "action", "next_state") else float(v)
            lines.append(dump_json(row, ensure_ascii=False))
        _atomic_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = {}
        for c in cols:
            v = getattr(table, c)
            if c in ("state", "action", "next_state"):
                arrays[c] = pa.array(
                    v, type=pa.int64() if v and isinstance(v[0], int) else pa.string()
                )
            else:
                arrays[c] = pa.array(np.asarray(v, dtype=np.float64), type=pa.float64())
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table(arrays), sink)
        _atomic_bytes(path, sink.getvalue().to_pybytes())
    else:
        raise ValueError(f"path: unknown table type {path.suffix!r} (use {', '.join(SUFFIXES)})")
    return path
