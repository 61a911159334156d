"""Sequence space (Eigen's model): genotype spaces, fitness landscapes, Perron solvers on
the Kronecker and Hamming-class operators, and the error threshold.

Modules: :mod:`.space` (``SequenceSpace`` and its memory budget), :mod:`.genotype`
(``GenotypeModel``: all ``k**L`` genotypes, Lanczos steady state, log-domain dynamics),
:mod:`.classes` (``ClassModel``: the exact ``L + 1`` Hamming-class lumping),
:mod:`.landscapes` (the builders), :mod:`.threshold` (``error_threshold``), :mod:`.common`
(the result both models build), :mod:`.gradients` (``log_growth`` /
``scaled_log_growth``: differentiable in the landscape and ``T``, implicit differentiation). Row vectors throughout: ``x' ∝ x diag(f^(1/T)) Q``,
``Q = ⊗_i ((1-mu_i) I + mu_i/(k-1) (J - I))``, genotypes in lexicographic order.
M. Eigen, *Naturwissenschaften* 58, 465 (1971).
"""

from __future__ import annotations

from quasispecies.sequence.classes import ClassModel as ClassModel
from quasispecies.sequence.genotype import GenotypeModel as GenotypeModel
from quasispecies.sequence.gradients import (
    log_growth as log_growth,
    scaled_log_growth as scaled_log_growth,
    selection_flux as selection_flux,
)
from quasispecies.sequence.landscapes import (
    additive as additive,
    class_landscape as class_landscape,
    fitness_landscape as fitness_landscape,
    multiplicative as multiplicative,
    nk_landscape as nk_landscape,
    single_peak as single_peak,
)
from quasispecies.sequence.space import (
    SequenceSpace as SequenceSpace,
    available_bytes as available_bytes,
)
from quasispecies.sequence.threshold import (
    ThresholdCurves as ThresholdCurves,
    error_threshold as error_threshold,
)

__all__ = [
    "ClassModel",
    "GenotypeModel",
    "SequenceSpace",
    "ThresholdCurves",
    "additive",
    "available_bytes",
    "class_landscape",
    "error_threshold",
    "fitness_landscape",
    "log_growth",
    "multiplicative",
    "nk_landscape",
    "scaled_log_growth",
    "selection_flux",
    "single_peak",
]
