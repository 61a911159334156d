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

Files: ``.csv`` (header row), ``.jsonl`` (one JSON object per row; ``-inf`` may be
written as ``"-inf"``) and ``.parquet``. Labels keep their type: all-integer label
columns become integers, anything else stays a string; in a CSV an integer-looking
label column is read as integers.

Compiling (:func:`table_to_mdp`): states are numbered in order of first appearance in
the ``state`` column (numerically when all labels are integers); integer action labels
are used as action indices, string action labels are numbered per state in order of
first appearance. ``mdp.labels`` holds the state labels and ``mdp.action_labels``
(``[state][action]``) the action labels. Every write is atomic (a temporary file in
the target directory, then :func:`os.replace`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Table",
    "load_table_mdp",
    "mdp_to_table",
    "read_table",
    "table_to_mdp",
    "write_table",
]

REQUIRED = ("state", "action", "next_state", "reward")
OPTIONAL = ("prob", "pi0", "x0")
SUFFIXES = (".csv", ".jsonl", ".parquet")
#: Tolerance for "the probabilities of one (state, action) sum to 1".
SUM_ATOL = 1e-8


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


# ---------------------------------------------------------------------- parsing


def _label_column(values: list, name: str, path) -> list:
    """Normalise a label column: all ints (not bools) -> int, else all str."""
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


def _float_column(values: list, name: str, path) -> np.ndarray:
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
        out[i] = float(v)
    if np.isnan(out).any():
        raise ValueError(f"{path}: column {name!r} row {int(np.argmax(np.isnan(out)))} is NaN")
    return out


def _from_columns(cols: dict[str, list], path) -> Table:
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; a fitness table needs {list(REQUIRED)}"
        )
    n = len(cols["state"])
    if n == 0:
        raise ValueError(f"{path}: the table has no rows")
    return Table(
        state=_label_column(cols["state"], "state", path),
        action=_label_column(cols["action"], "action", path),
        next_state=_label_column(cols["next_state"], "next_state", path),
        reward=_float_column(cols["reward"], "reward", path),
        **{c: (_float_column(cols[c], c, path) if c in cols else None) for c in OPTIONAL},
    )


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
            for g in present:
                cols[g] = [int(v) for v in cols[g]]
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

    try:
        tab = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({err})") from None
    return {name: tab.column(name).to_pylist() for name in tab.column_names}


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
    return _from_columns(cols, path)


# ---------------------------------------------------------------------- writing


def _atomic_bytes(path: Path, data: bytes) -> None:
    from quasispecies.model.files import atomic_write

    with atomic_write(path, "wb") as fh:
        fh.write(data)


def _num(x: float):
    """A float for JSON: -inf as the string "-inf" (JSON has no infinity)."""
    if x == -math.inf:
        return "-inf"
    if x == math.inf:
        return "inf"
    return float(x)


def write_table(path, table, x0=None) -> Path:
    """Write a :class:`Table` (or an MDP, via :func:`mdp_to_table`) to ``path`` atomically.

    The format follows the suffix: ``.csv``, ``.jsonl`` or ``.parquet``. Floats are
    written with ``repr`` (CSV, JSONL) or as float64 (Parquet), so they read back exactly.
    """
    from quasispecies.model.mdp import MDP

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
                row[c] = v if c in ("state", "action", "next_state") else _num(v)
            lines.append(json.dumps(row, ensure_ascii=False))
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


# --------------------------------------------------------------------- compiling


def _order_labels(labels: list) -> list:
    uniq = list(dict.fromkeys(labels))
    if uniq and isinstance(uniq[0], int):
        uniq.sort()
    return uniq


def table_to_mdp(table: Table, *, name="table"):
    """Compile a :class:`Table` into ``(MDP, x0 or None)``.

    Checks, each a ``ValueError`` naming the row or the ``(state, action)``: a
    ``next_state`` that never appears as a ``state`` (unknown state); negative
    probabilities; probabilities of one ``(state, action)`` not summing to 1; several
    rows for one ``(state, action)`` without a ``prob`` column; a repeated
    ``(state, action, next_state)``; ``pi0``/``x0`` that differ between rows they must
    agree on or do not sum to 1; ``+inf`` rewards.
    """
    from quasispecies.model.mdp import MDP

    if not isinstance(table, Table):
        raise ValueError(f"table: expected a Table, got {type(table).__name__}")
    where = f"{name}:"
    states = _order_labels(table.state)
    index = {lab: i for i, lab in enumerate(states)}
    # a state label and a next_state label must be of one kind
    if table.next_state and table.state and type(table.next_state[0]) is not type(table.state[0]):
        raise ValueError(
            f"{where} state labels are {type(table.state[0]).__name__} but next_state labels are "
            f"{type(table.next_state[0]).__name__}"
        )
    for i, lab in enumerate(table.next_state):
        if lab not in index:
            raise ValueError(
                f"{where} unknown state {lab!r} in column 'next_state' (row {i}); every next_state "
                "must also appear in the 'state' column"
            )
    if np.isposinf(table.reward).any():
        i = int(np.argmax(np.isposinf(table.reward)))
        raise ValueError(f"{where} reward is +inf in row {i}")
    S = len(states)
    int_actions = bool(table.action) and isinstance(table.action[0], int)
    act_labels: list[list] = [[] for _ in range(S)]
    act_index: list[dict] = [{} for _ in range(S)]
    if int_actions:
        if min(table.action) < 0:
            raise ValueError(f"{where} integer action labels must be >= 0, got {min(table.action)}")
        A = max(table.action) + 1
        for s in range(S):
            act_labels[s] = list(range(A))
            act_index[s] = {a: a for a in range(A)}
    rows_sa: dict[tuple[int, int], list[int]] = {}
    for i in range(len(table)):
        s = index[table.state[i]]
        a_lab = table.action[i]
        if a_lab not in act_index[s]:
            act_index[s][a_lab] = len(act_labels[s])
            act_labels[s].append(a_lab)
        rows_sa.setdefault((s, act_index[s][a_lab]), []).append(i)
    A = max(len(x) for x in act_labels)
    B = max(len(r) for r in rows_sa.values())
    ns = np.zeros((S, A, B), dtype=np.int64)
    prob = np.zeros((S, A, B))
    R = np.zeros((S, A, B))
    pi0 = None if table.pi0 is None else np.zeros((S, A))
    for (s, a), rows in rows_sa.items():
        lab = f"(state {states[s]!r}, action {act_labels[s][a]!r})"
        targets = [index[table.next_state[i]] for i in rows]
        if len(set(targets)) != len(targets):
            raise ValueError(f"{where} {lab} lists the same next_state twice")
        if table.prob is None:
            if len(rows) > 1:
                raise ValueError(
                    f"{where} {lab} has {len(rows)} rows but the table has no 'prob' column "
                    "(without it each (state, action) must have exactly one row)"
                )
            p = np.ones(1)
        else:
            p = table.prob[rows]
            if (p < 0).any():
                raise ValueError(f"{where} negative probability {float(p[p < 0][0])!r} for {lab}")
            if not np.isfinite(p).all():
                raise ValueError(f"{where} non-finite probability for {lab}")
            if abs(float(p.sum()) - 1.0) > SUM_ATOL:
                raise ValueError(f"{where} probabilities of {lab} sum to {float(p.sum())!r}, not 1")
        ns[s, a, : len(rows)] = targets
        prob[s, a, : len(rows)] = p
        R[s, a, : len(rows)] = table.reward[rows]
        if pi0 is not None and table.pi0 is not None:
            vals = table.pi0[rows]
            if not (vals == vals[0]).all():
                raise ValueError(f"{where} pi0 differs between the rows of {lab}")
            pi0[s, a] = vals[0]
    x0 = None
    if table.x0 is not None:
        x0 = np.zeros(S)
        seen = np.zeros(S, dtype=bool)
        for i in range(len(table)):
            s = index[table.state[i]]
            if seen[s] and x0[s] != table.x0[i]:
                raise ValueError(f"{where} x0 differs between rows of state {states[s]!r}")
            x0[s], seen[s] = table.x0[i], True
        if (x0 < 0).any():
            raise ValueError(f"{where} x0 is negative for state {states[int(np.argmax(x0 < 0))]!r}")
        if abs(float(x0.sum()) - 1.0) > SUM_ATOL:
            raise ValueError(f"{where} x0 sums to {float(x0.sum())!r} over the states, not 1")
    try:
        mdp = MDP.from_successors(ns, prob, R, pi0)
    except ValueError as err:
        raise ValueError(f"{where} {err}") from None
    mdp.labels = list(states)
    mdp.action_labels = act_labels
    return mdp, x0


def load_table_mdp(path):
    """Read a fitness-table file and compile it: ``(MDP, x0 or None)`` (used by ``load_mdp``)."""
    return table_to_mdp(read_table(path), name=str(path))


def mdp_to_table(
    mdp, x0=None, labels: Sequence | None = None, action_labels: Sequence | None = None
) -> Table:
    """One row per allowed transition ``(s, a, s')`` of ``mdp`` (``K > 0``).

    ``labels`` (default ``mdp.labels`` or the indices) name the states and must be
    unique; ``action_labels[s][a]`` (default the indices) name the actions. A ``prob``
    column is written when some action has more than one successor, ``pi0`` when it is
    not uniform over each state's allowed actions, ``x0`` when given.
    """
    from quasispecies.model.mdp import MDP
    from quasispecies.model.validate import check_distribution

    if not isinstance(mdp, MDP):
        raise ValueError(f"mdp: expected a quasispecies.MDP, got {type(mdp).__name__}")
    S, A = mdp.num_states, mdp.num_actions
    if labels is None:
        labels = mdp.labels if mdp.labels is not None else list(range(S))
    labels = [int(x) if isinstance(x, np.integer) else x for x in labels]
    if len(labels) != S:
        raise ValueError(f"labels: {len(labels)} labels for {S} states")
    if len(set(labels)) != S:
        raise ValueError("labels: state labels must be unique")
    _label_column(labels, "labels", "labels")
    if x0 is not None:
        x0 = check_distribution(x0, "x0", size=S)
    live = np.isfinite(mdp.log_kernel)  # (S, A, B)
    allowed = live.any(axis=2)
    stochastic = bool((live.sum(axis=2) > 1).any())
    if not allowed.any(axis=1).all():
        s = int(np.argmin(allowed.any(axis=1)))
        raise ValueError(
            f"mdp: state {labels[s]!r} has no allowed action; a fitness table cannot represent it"
        )
    uniform = np.where(allowed, 1.0 / np.maximum(allowed.sum(axis=1, keepdims=True), 1), 0.0)
    write_pi0 = not np.allclose(mdp.pi0, uniform, rtol=0, atol=1e-15)
    cols: dict[str, list] = {c: [] for c in (*REQUIRED, "prob", "pi0", "x0")}
    for s in range(S):
        for a in range(A):
            if action_labels is not None and len(action_labels[s]) > a:
                a_lab = action_labels[s][a]
            elif action_labels is not None and allowed[s, a]:
                raise ValueError(f"action_labels: state {s} has no label for its action {a}")
            else:
                a_lab = a
            for b in np.flatnonzero(live[s, a]):
                cols["state"].append(labels[s])
                cols["action"].append(a_lab)
                cols["next_state"].append(labels[int(mdp.next_state[s, a, b])])
                cols["reward"].append(float(mdp.reward[s, a, b]))
                cols["prob"].append(float(mdp.prob[s, a, b]))
                cols["pi0"].append(float(mdp.pi0[s, a]))
                cols["x0"].append(0.0 if x0 is None else float(x0[s]))
    return Table(
        state=cols["state"],
        action=_label_column(cols["action"], "action", "action_labels"),
        next_state=cols["next_state"],
        reward=np.asarray(cols["reward"]),
        prob=np.asarray(cols["prob"]) if stochastic else None,
        pi0=np.asarray(cols["pi0"]) if write_pi0 else None,
        x0=np.asarray(cols["x0"]) if x0 is not None else None,
    )
