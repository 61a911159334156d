"""The model layer: the validated :class:`MDP` pytree, its builders, input validation,
files (``.npz``/``.json`` and fitness tables) and the result types shared by the solvers.
"""

from __future__ import annotations

from quasispecies.model.builders import (
    GRID_ACTIONS as GRID_ACTIONS,
    chain as chain,
    from_networkx as from_networkx,
    grid_world as grid_world,
    random_mdp as random_mdp,
    to_networkx as to_networkx,
)
from quasispecies.model.files import (
    atomic_write as atomic_write,
    dump_json as dump_json,
    jsonable as jsonable,
    write_json as write_json,
)
from quasispecies.model.io import (
    load_mdp as load_mdp,
    save_mdp as save_mdp,
)
from quasispecies.model.mdp import (
    MDP as MDP,
    check_mdp as check_mdp,
    initial_population as initial_population,
)
from quasispecies.model.protocol import ReplicationModel as ReplicationModel
from quasispecies.model.results import (
    SteadyState as SteadyState,
    stack_results as stack_results,
)
from quasispecies.model.tables import (
    Table as Table,
    load_table_mdp as load_table_mdp,
    mdp_to_table as mdp_to_table,
    read_table as read_table,
    table_to_mdp as table_to_mdp,
    write_table as write_table,
)

__all__ = [
    "GRID_ACTIONS",
    "MDP",
    "ReplicationModel",
    "SteadyState",
    "Table",
    "atomic_write",
    "chain",
    "check_mdp",
    "dump_json",
    "from_networkx",
    "grid_world",
    "initial_population",
    "jsonable",
    "load_mdp",
    "load_table_mdp",
    "mdp_to_table",
    "random_mdp",
    "read_table",
    "save_mdp",
    "stack_results",
    "table_to_mdp",
    "to_networkx",
    "write_json",
    "write_table",
]
