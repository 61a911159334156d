"""Figures (matplotlib, imported lazily): population vs temperature (:mod:`.temperature`),
the ``T -> 0`` limit (:mod:`.limit`), the error threshold (:mod:`.threshold`), selection
and collapse (:mod:`.selection`), the LM bridge (:mod:`.lm`); :mod:`.style` holds the
shared palette and the atomic save."""

from __future__ import annotations

from quasispecies.plot.temperature import (
    grid_populations as grid_populations,
    population_vs_temperature as population_vs_temperature,
)

__all__ = ["grid_populations", "population_vs_temperature"]
