"""The protocol that models other than :class:`~quasispecies.model.MDP` implement.

:func:`quasispecies.evolve` and :func:`quasispecies.steady_state` take an MDP or any
object with these two methods (Eigen's sequence-space models of
:mod:`quasispecies.sequence` are the ones shipped). Each method handles one scalar
temperature; the public functions validate ``T``, loop or ``vmap`` over a sweep and
stack the results.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from quasispecies.model.results import SteadyState

__all__ = ["ReplicationModel"]


@runtime_checkable
class ReplicationModel(Protocol):
    """A replication operator ``W_T`` that knows how to apply itself.

    Row-vector convention, as everywhere: ``n_{t+1} = n_t W_T``.
    """

    def evolve_at(self, T: float, steps: int, x0) -> np.ndarray:
        """``(steps + 1, N)`` normalised populations ``x_0 .. x_steps`` at one ``T >= 0``."""
        ...

    def steady_state_at(self, T: float) -> SteadyState:
        """The Perron pair of ``W_T`` at one ``T >= 0``."""
        ...
