"""The semiring engine: every reduction of the toolkit (log-sum-exp at ``T``, max-plus at
``T = 0`` with tie multiplicities, normalisation, forward and backward scans).

Modules: :mod:`.core` (the log-at-``T`` / max-plus pair arithmetic over dense axes and
segments), :mod:`.ell` (the same sums over the pull / sliced-ELL layout at a known
``T > 0``, and the max-rescalings of the horizon loops), :mod:`.host` (``T = 1`` and the
``T = 0`` population rule in NumPy, for ragged host-side data), :mod:`.ext` (semiring
objects ``Log``, ``KBest``, ``Entropy`` and the scans every path DP is written against).
Reference: J. Goodman, "Semiring parsing", *Computational Linguistics* 25 (1999);
V. P. Maslov, *Idempotent Analysis* (1992).
"""

from __future__ import annotations

from quasispecies.semiring import ell as ell, host as host
from quasispecies.semiring.core import (
    TIE_RTOL as TIE_RTOL,
    LogPair as LogPair,
    boltzmann_exponent as boltzmann_exponent,
    init_log_pair as init_log_pair,
    init_pair as init_pair,
    log_normalise as log_normalise,
    log_probabilities as log_probabilities,
    lse as lse,
    normalise_pair as normalise_pair,
    plus as plus,
    probabilities as probabilities,
    reduce as reduce,
    reduce_pair as reduce_pair,
    scaled_lse as scaled_lse,
    segment_lse as segment_lse,
    segment_reduce_pair as segment_reduce_pair,
    segment_softmax_pair as segment_softmax_pair,
    softmax_pair as softmax_pair,
)
from quasispecies.semiring.ext import (
    Entropy as Entropy,
    EntropyElement as EntropyElement,
    KBest as KBest,
    Log as Log,
    backward_scan as backward_scan,
    count_paths_table as count_paths_table,
    forward_scan as forward_scan,
)

__all__ = [
    "TIE_RTOL",
    "Entropy",
    "EntropyElement",
    "KBest",
    "Log",
    "LogPair",
    "backward_scan",
    "boltzmann_exponent",
    "count_paths_table",
    "ell",
    "forward_scan",
    "host",
    "init_log_pair",
    "init_pair",
    "log_normalise",
    "log_probabilities",
    "lse",
    "normalise_pair",
    "plus",
    "probabilities",
    "reduce",
    "reduce_pair",
    "scaled_lse",
    "segment_lse",
    "segment_reduce_pair",
    "segment_softmax_pair",
    "softmax_pair",
]
