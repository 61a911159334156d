r"""Fitness table <-> :class:`~quasispecies.model.mdp.MDP`.

Compiling (:func:`table_to_mdp`): states are numbered in order of first appearance in
the ``state`` column (numerically when all labels are integers); integer action labels
are used as action indices, string action labels are numbered per state in order of
first appearance. Each ``(state, action)`` becomes one row of successor lists
``next_state[s, a, b]``, ``prob[s, a, b]`` (``P[s, a, s']``), ``reward[s, a, b]``
(``R[s, a, s']``), with ``pi0[s, a]`` from the ``pi0`` column or uniform over the
state's actions. ``mdp.labels`` holds the state labels and ``mdp.action_labels``
(``[state][action]``) the action labels. :func:`mdp_to_table` writes one row per
transition of positive kernel weight ``K = pi0 P`` back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quasispecies.model.mdp import MDP
from quasispecies.model.table import REQUIRED, Table, label_column
from quasispecies.model.validate import SUM_ATOL, check_distribution

__all__ = ["mdp_to_table", "table_to_mdp"]

#: Most (state, action) slots integer action labels may span (the compiled arrays are
#: dense in the action axis).
_MAX_STATE_ACTIONS = 1 << 26


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
        if S * A > _MAX_STATE_ACTIONS:
            raise ValueError(
                f"{where} integer action labels are indices, and the largest, {A - 1}, would "
                f"make {S} x {A} (state, action) slots (at most {_MAX_STATE_ACTIONS}); "
                "use string labels"
            )
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


def mdp_to_table(
    mdp, x0=None, labels: Sequence | None = None, action_labels: Sequence | None = None
) -> Table:
    """One row per allowed transition ``(s, a, s')`` of ``mdp`` (``K > 0``).

    ``labels`` (default ``mdp.labels`` or the indices) name the states and must be
    unique; ``action_labels[s][a]`` (default the indices) name the actions. A ``prob``
    column is written when some action has more than one successor, ``pi0`` when it is
    not uniform over each state's allowed actions, ``x0`` when given.
    """
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
    label_column(labels, "labels", "labels")
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
        action=label_column(cols["action"], "action", "action_labels"),
        next_state=cols["next_state"],
        reward=np.asarray(cols["reward"]),
        prob=np.asarray(cols["prob"]) if stochastic else None,
        pi0=np.asarray(cols["pi0"]) if write_pi0 else None,
        x0=np.asarray(cols["x0"]) if x0 is not None else None,
    )
