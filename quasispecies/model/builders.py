"""Ready-made environments: chain, grid world, seeded random MDPs, networkx graphs, forest."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from quasispecies.model.mdp import MDP
from quasispecies.model.validate import check_nonneg_int

__all__ = [
    "GRID_ACTIONS",
    "chain",
    "forest",
    "from_networkx",
    "grid_world",
    "random_mdp",
    "to_networkx",
]

#: Actions of :func:`grid_world`, as (name, row step, column step).
GRID_ACTIONS = (("up", -1, 0), ("down", 1, 0), ("left", 0, -1), ("right", 0, 1), ("stay", 0, 0))


def chain(n: int, goal_reward: float = 1.0, step_reward: float = 0.0) -> MDP:
    """A line of ``n`` states; action 0 steps left, 1 steps right (walls hold at the ends).

    Every transition into the right end ``n - 1`` earns ``goal_reward`` (so staying there
    is the optimal cycle, mean ``goal_reward``); all others earn ``step_reward``.
    """
    n = check_nonneg_int(n, "n", minimum=1)
    s = np.arange(n)
    ns = np.stack([np.maximum(s - 1, 0), np.minimum(s + 1, n - 1)], axis=1)
    R = np.where(ns == n - 1, goal_reward, step_reward).astype(float)
    return MDP.from_transitions(ns, R)


def grid_world(
    height: int,
    width: int,
    *,
    walls: Iterable[tuple[int, int]] = (),
    goal: tuple[int, int] | None = None,
    goal_reward: float = 1.0,
    cell_rewards: dict[tuple[int, int], float] | None = None,
    step_cost: float = 0.1,
    slip: float = 0.0,
    seed: int | None = None,
) -> MDP:
    """A ``height x width`` grid; actions up, down, left, right, stay (:data:`GRID_ACTIONS`).

    Moving into a wall or off the grid leaves the agent in place. Each move earns
    ``-step_cost``; arriving at (or staying on) ``goal`` earns ``goal_reward`` instead,
    and arriving at a cell of ``cell_rewards`` earns its value.
    Wall cells are unreachable states with no allowed action (kept so that state
    ``r * width + c`` is cell ``(r, c)``).

    ``slip > 0`` makes it stochastic: with probability ``slip`` the agent moves in a
    uniformly random direction instead (dense ``P``). ``seed`` is unused by the
    deterministic grid and accepted for a uniform builder signature.
    """
    height = check_nonneg_int(height, "height", minimum=1)
    width = check_nonneg_int(width, "width", minimum=1)
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip: must lie in [0, 1], got {slip!r}")
    if not (np.isfinite(goal_reward) and np.isfinite(step_cost)):
        raise ValueError("goal_reward, step_cost: must be finite")
    wall = np.zeros((height, width), dtype=bool)
    for r, c in walls:
        if not (0 <= r < height and 0 <= c < width):
            raise ValueError(f"walls: cell {(r, c)} is outside the {height}x{width} grid")
        wall[r, c] = True
    if goal is not None:
        gr, gc = goal
        if not (0 <= gr < height and 0 <= gc < width) or wall[gr, gc]:
            raise ValueError(f"goal: {goal} must be a free cell of the {height}x{width} grid")
    arrival = {} if goal is None else {tuple(goal): float(goal_reward)}
    for cell, value in (cell_rewards or {}).items():
        r, c = cell
        if not (0 <= r < height and 0 <= c < width) or wall[r, c]:
            raise ValueError(
                f"cell_rewards: {cell} must be a free cell of the {height}x{width} grid"
            )
        if not np.isfinite(value):
            raise ValueError(f"cell_rewards: reward of {cell} must be finite, got {value!r}")
        arrival[(int(r), int(c))] = float(value)
    S, A = height * width, len(GRID_ACTIONS)
    rows, cols = np.divmod(np.arange(S), width)
    ns = np.empty((S, A), dtype=np.int64)
    for a, (_, dr, dc) in enumerate(GRID_ACTIONS):
        r2, c2 = rows + dr, cols + dc
        ok = (r2 >= 0) & (r2 < height) & (c2 >= 0) & (c2 < width)
        r2, c2 = np.where(ok, r2, rows), np.where(ok, c2, cols)
        blocked = wall[r2, c2]
        ns[:, a] = np.where(blocked, np.arange(S), r2 * width + c2)
    reward_to = np.full(S, -float(step_cost))
    for (r, c), value in arrival.items():
        reward_to[r * width + c] = value
    R = reward_to[ns]
    is_wall = wall.ravel()
    R[is_wall] = -np.inf
    ns[is_wall] = np.arange(S)[is_wall, None]
    pi0 = np.where(is_wall[:, None], 0.0, np.full((S, A), 1.0 / A))
    if slip == 0.0:
        mdp = MDP.from_transitions(ns, R, pi0)
    else:
        P = np.zeros((S, A, S))
        Rfull = np.zeros((S, A, S))
        for a in range(A):
            P[np.arange(S), a, ns[:, a]] += 1.0 - slip
            for b in range(A):
                P[np.arange(S), a, ns[:, b]] += slip / A
        Rfull[:] = reward_to[None, None, :]
        Rfull[is_wall] = -np.inf
        mdp = MDP(P, Rfull, pi0)
    mdp.labels = [f"({r},{c})" for r, c in zip(rows, cols, strict=True)]
    mdp.grid_shape = (height, width)
    return mdp


def random_mdp(
    num_states: int,
    num_actions: int,
    *,
    seed: int = 0,
    stochastic: bool = False,
    density: float = 1.0,
    reward_scale: float = 1.0,
    per_transition_reward: bool = False,
) -> MDP:
    """A seeded random MDP.

    Deterministic (default): each ``(s, a)`` leads to a uniformly random state. With
    ``stochastic=True`` each row of ``P`` is a Dirichlet(1) draw on a random subset of
    successors holding a fraction ``density`` of the states (at least one). In both
    cases ``density < 1`` also disallows each action with probability ``1 - density``
    (at least one action per state stays allowed). Rewards are standard normal times
    ``reward_scale``, per ``(s, a)`` or, with ``per_transition_reward``, per ``(s, a, s')``.
    """
    S = check_nonneg_int(num_states, "num_states", minimum=1)
    A = check_nonneg_int(num_actions, "num_actions", minimum=1)
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density: must lie in (0, 1], got {density!r}")
    rng = np.random.default_rng(seed)
    allowed = rng.random((S, A)) < density
    allowed[np.arange(S), rng.integers(0, A, S)] = True
    pi0 = allowed / allowed.sum(axis=1, keepdims=True)
    if not stochastic:
        ns = rng.integers(0, S, size=(S, A))
        R = reward_scale * rng.standard_normal((S, A))
        return MDP.from_transitions(ns, R, pi0)
    k = max(1, round(density * S))
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            succ = rng.choice(S, size=k, replace=False)
            P[s, a, succ] = rng.dirichlet(np.ones(k))
    P[~allowed] = 0.0
    shape = (S, A, S) if per_transition_reward else (S, A)
    R = reward_scale * rng.standard_normal(shape)
    return MDP(P, R, pi0)


def from_networkx(graph) -> MDP:
    """An MDP from a networkx ``DiGraph``/``MultiDiGraph``.

    Each edge ``u -> v`` is a transition with attributes ``action`` (int; default: the
    edge's position among ``u``'s out-edges), ``prob`` (default 1) and ``reward``
    (default 0). States are the nodes in ``graph.nodes`` order; ``mdp.labels`` keeps them.
    """
    import networkx as nx

    if not isinstance(graph, nx.DiGraph):
        raise ValueError("graph: expected a networkx DiGraph or MultiDiGraph")
    nodes = list(graph.nodes)
    if not nodes:
        raise ValueError("graph: has no nodes")
    index = {n: i for i, n in enumerate(nodes)}
    S = len(nodes)
    triples = []
    for u in nodes:
        edges = graph.out_edges(u, data=True)
        for pos, (_, v, data) in enumerate(edges):
            a = data.get("action", pos)
            if isinstance(a, bool) or not isinstance(a, int | np.integer) or a < 0:
                raise ValueError(f"graph: edge {u!r}->{v!r} has action {a!r}; expected an int >= 0")
            triples.append(
                (
                    index[u],
                    int(a),
                    index[v],
                    float(data.get("prob", 1.0)),
                    float(data.get("reward", 0.0)),
                )
            )
    A = 1 + max((t[1] for t in triples), default=0)
    P = np.zeros((S, A, S))
    R = np.zeros((S, A, S))
    for s, a, s2, p, r in triples:
        if P[s, a, s2] > 0:
            raise ValueError(
                f"graph: two edges for state {nodes[s]!r}, action {a}, successor {nodes[s2]!r}"
            )
        P[s, a, s2] = p
        R[s, a, s2] = r
    mdp = MDP(P, R)
    mdp.labels = nodes
    return mdp


def to_networkx(mdp: MDP):
    """The MDP as a networkx ``MultiDiGraph``: one edge per transition with positive
    kernel weight, attributes ``action``, ``prob``, ``reward`` (round-trips through
    :func:`from_networkx`). Node ``i`` is state ``i`` (``label`` attribute if known)."""
    import networkx as nx

    G = nx.MultiDiGraph()
    labels = mdp.labels
    for s in range(mdp.num_states):
        G.add_node(s, **({"label": labels[s]} if labels is not None else {}))
    live = np.isfinite(mdp.log_kernel)
    for s, a, b in zip(*np.nonzero(live), strict=True):
        G.add_edge(
            int(s),
            int(mdp.next_state[s, a, b]),
            action=int(a),
            prob=float(mdp.prob[s, a, b]),
            reward=float(mdp.reward[s, a, b]),
        )
    return G


def forest(num_states: int = 3, r1: float = 4.0, r2: float = 2.0, p: float = 0.1) -> MDP:
    """pymdptoolbox's forest-management problem (``mdptoolbox.example.forest``) as an MDP.

    States are forest ages ``0 .. S-1``; action 0 *waits* (with probability ``p`` a fire
    resets the age to 0, otherwise it grows by one, capped at ``S-1``; reward ``r1`` in the
    oldest state), action 1 *cuts* (back to age 0; reward 1, ``r2`` in the oldest state, 0
    in the youngest). The textbook case where risk matters: waiting in the oldest state
    pays ``r1`` every step only while no fire comes, so the optimistic value of a
    replicator population (``V+ = r1 / (1 - gamma)`` there) overstates the Bellman optimum.
    """
    S = check_nonneg_int(num_states, "num_states", minimum=2)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: must lie in [0, 1], got {p!r}")
    P = np.zeros((S, 2, S))
    P[:, 0, 0] = p
    s = np.arange(S)
    P[s, 0, np.minimum(s + 1, S - 1)] += 1.0 - p
    P[:, 1, 0] = 1.0
    R = np.zeros((S, 2))
    R[S - 1, 0] = r1
    R[:, 1] = 1.0
    R[0, 1] = 0.0
    R[S - 1, 1] = r2
    return MDP(P, R)
