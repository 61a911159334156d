"""Sequence space (Eigen's model): genotype spaces, fitness landscapes, Perron solvers on
the Kronecker and Hamming-class operators, and the error threshold.
"""

from __future__ import annotations

from quasispecies.sequence.core import (
    ClassModel as ClassModel,
    GenotypeModel as GenotypeModel,
    SequenceSpace as SequenceSpace,
    ThresholdCurves as ThresholdCurves,
    additive as additive,
    class_landscape as class_landscape,
    error_threshold as error_threshold,
    fitness_landscape as fitness_landscape,
    multiplicative as multiplicative,
    nk_landscape as nk_landscape,
    single_peak as single_peak,
)

__all__ = [
    "ClassModel",
    "GenotypeModel",
    "SequenceSpace",
    "ThresholdCurves",
    "additive",
    "class_landscape",
    "error_threshold",
    "fitness_landscape",
    "multiplicative",
    "nk_landscape",
    "single_peak",
]
