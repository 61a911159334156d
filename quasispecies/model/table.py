"""The fitness-table type: an MDP written as one row per transition, held column-wise.

:class:`Table` and the checks that turn raw columns (from a CSV, JSONL or Parquet file,
see :mod:`quasispecies.model.tables`) into typed ones. Label columns hold ``str`` or
``int`` labels (never a mix); number columns are float64 and never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OPTIONAL",
    "REQUIRED",
    "SUFFIXES",
    "Table",
    "float_column",
    "from_columns",
    "label_column",
]

#: Columns every fitness table has, in this order.
REQUIRED = ("state", "action", "next_state", "reward")
#: Columns a table may have (see :mod:`quasispecies.model.tables`).
OPTIONAL = ("prob", "pi0", "x0")
#: File types a table is read from and written to.
SUFFIXES = (".csv", ".jsonl", ".parquet")


@dataclass(frozen=True)
class Table:
    """A fitness table held column-wise.

    ``state``, ``action``, ``next_state`` are lists of labels (``str`` or ``int``);
    ``reward`` is float64 (N,); ``prob``, ``pi0``, ``x0`` are float64 (N,) or ``None``.
    """

    state: list
    action: list
    next_state: list
    reward: np.ndarray
    prob: np.ndarray | None = None
    pi0: np.ndarray | None = None
    x0: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.state)
        for name in ("action", "next_state", "reward", "prob", "pi0", "x0"):
            col = getattr(self, name)
            if col is not None and len(col) != n:
                raise ValueError(f"{name}: column has {len(col)} rows, state has {n}")

    def __len__(self) -> int:
        return len(self.state)

    @property
    def columns(self) -> list[str]:
        """The columns present: the required four, then those optional ones that are set."""
        return list(REQUIRED) + [c for c in OPTIONAL if getattr(self, c) is not None]

    def rows(self) -> list[dict]:
        """The table as a list of dicts, one per row."""
        cols = self.columns
        data = [getattr(self, c) for c in cols]
        floats = ("reward", *OPTIONAL)
        return [
            {c: (float(d[i]) if c in floats else d[i]) for c, d in zip(cols, data, strict=True)}
            for i in range(len(self))
        ]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        if self.columns != other.columns:
            return False
        for c in self.columns:
            a, b = getattr(self, c), getattr(other, c)
            if c in ("state", "action", "next_state"):
                if list(a) != list(b) or [type(x) for x in a] != [type(x) for x in b]:
                    return False
            elif not np.array_equal(a, b):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]


def label_column(values: list, name: str, path) -> list:
    """Normalise a label column: all ints (not bools) -> ``int``, all strings -> ``str``.

    ``ValueError`` naming ``path``, the column and the row for an empty cell, a label
    that is neither, or a column that mixes the two.
    """
    out = []
    kinds = set()
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise ValueError(f"{path}: column {name!r} is empty in row {i}")
        if isinstance(v, bool) or not isinstance(v, int | str | np.integer):
            raise ValueError(
                f"{path}: column {name!r} row {i}: label {v!r} is neither a string nor an integer"
            )
        kinds.add(str if isinstance(v, str) else int)
        out.append(v if isinstance(v, str) else int(v))
    if len(kinds) > 1:
        raise ValueError(f"{path}: column {name!r} mixes string and integer labels")
    return out


def float_column(values: list, name: str, path) -> np.ndarray:
    """A number column as float64 (numeric strings such as ``"-inf"`` accepted; NaN is not)."""
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if isinstance(v, str):
            try:
                v = float(v.strip())
            except ValueError:
                raise ValueError(
                    f"{path}: column {name!r} row {i}: {v!r} is not a number"
                ) from None
        elif isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise ValueError(f"{path}: column {name!r} row {i}: {v!r} is not a number")
        try:
            out[i] = float(v)
        except OverflowError:  # an integer beyond float range
            raise ValueError(
                f"{path}: column {name!r} row {i}: the number is out of range"
            ) from None
    if np.isnan(out).any():
        raise ValueError(f"{path}: column {name!r} row {int(np.argmax(np.isnan(out)))} is NaN")
    return out


def from_columns(cols: dict[str, list], path) -> Table:
    """A :class:`Table` from raw columns ``{name: values}``; the required ones must be there."""
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; a fitness table needs {list(REQUIRED)}"
        )
    n = len(cols["state"])
    if n == 0:
        raise ValueError(f"{path}: the table has no rows")
    return Table(
        state=label_column(cols["state"], "state", path),
        action=label_column(cols["action"], "action", path),
        next_state=label_column(cols["next_state"], "next_state", path),
        reward=float_column(cols["reward"], "reward", path),
        **{c: (float_column(cols[c], c, path) if c in cols else None) for c in OPTIONAL},
    )
