"""Argument checks shared by the selection modules (:mod:`.tilt`, :mod:`.best_of_n`,
:mod:`.chaining`, :mod:`.collapse`, :mod:`.tree`).

Each check returns the argument as a float64 NumPy array (and, for the sweepable ones,
whether it is a 1-D sweep) or raises ``ValueError`` whose message starts with the
argument's name (DESIGN §3).
"""

from __future__ import annotations

import numpy as np

from quasispecies.model.validate import as_float_array, check_distribution, check_rewards

__all__ = [
    "check_beta",
    "check_chain_rates",
    "check_dist_reward",
    "check_n",
    "check_rate",
    "check_strength",
]


def check_dist_reward(p, r, p_name: str, r_name: str) -> tuple[np.ndarray, np.ndarray]:
    """A distribution ``p`` (1-D, non-negative, sums to 1) and a reward ``r`` of the same
    shape (``-inf`` allowed, NaN and ``+inf`` not)."""
    p = check_distribution(p, p_name)
    r = as_float_array(r, r_name, ndim=1)
    if r.shape != p.shape:
        raise ValueError(f"{r_name}: expected shape {p.shape} to match {p_name}, got {r.shape}")
    check_rewards(r, r_name)
    return p, r


def check_beta(beta, name: str = "beta") -> tuple[np.ndarray, bool]:
    """A strictly positive, finite scalar or non-empty 1-D sweep (a KL coefficient, a
    temperature ``T > 0`` or a re-heating ``tau``); returns ``(array, is_sweep)``."""
    b = as_float_array(beta, name, ndim=(0, 1))
    if b.ndim == 1 and b.size == 0:
        raise ValueError(f"{name}: empty array")
    if np.isnan(b).any():
        raise ValueError(f"{name}: contains NaN")
    if (b <= 0).any():
        raise ValueError(f"{name}: must be > 0, got {b[b <= 0].ravel()[0]!r}")
    if np.isinf(b).any():
        raise ValueError(f"{name}: must be finite, got {b[np.isinf(b)].ravel()[0]!r}")
    return b, b.ndim == 1


def check_strength(strength, name: str = "strength") -> tuple[np.ndarray, bool]:
    """A tilt strength ``lambda = 1 / beta >= 0`` (0 is no tilt): finite scalar or 1-D sweep."""
    s = as_float_array(strength, name, ndim=(0, 1))
    if s.ndim == 1 and s.size == 0:
        raise ValueError(f"{name}: empty array")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name}: must be finite")
    if (s < 0).any():
        raise ValueError(f"{name}: must be >= 0 (it is 1/beta), got {s[s < 0].ravel()[0]!r}")
    return s, s.ndim == 1


def check_rate(x, name: str) -> np.ndarray:
    """Probabilities in ``[0, 1]`` (any shape), no NaN."""
    a = as_float_array(x, name)
    if np.isnan(a).any():
        raise ValueError(f"{name}: contains NaN")
    if ((a < 0) | (a > 1)).any():
        raise ValueError(f"{name}: must lie in [0, 1], got {a[(a < 0) | (a > 1)].ravel()[0]!r}")
    return a


def check_n(n) -> tuple[np.ndarray, bool]:
    """A number of draws ``n >= 1`` (integer, or integral float), scalar or 1-D sweep;
    returned as float64 for the kernels."""
    arr = np.asarray(n)
    if arr.ndim > 1:
        raise ValueError(
            f"n: expected an integer or a 1-D array of integers, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError("n: empty array")
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"n: expected integers, got {n!r}")
    if np.issubdtype(arr.dtype, np.floating) and (
        not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))
    ):
        raise ValueError(f"n: expected integers, got {n!r}")
    if (arr < 1).any():
        raise ValueError(f"n: must be >= 1, got {arr[arr < 1].ravel()[0]!r}")
    return arr.astype(np.float64), arr.ndim == 1


def check_chain_rates(eps0, tpr, fpr, eps_name: str = "eps0"):
    """Error rate, true- and false-positive rates of an evaluator, broadcast together.

    Raises when nothing can pass (``eps fpr + (1 - eps) tpr = 0`` somewhere): the error
    rate of the survivors is then undefined.
    """
    e = check_rate(eps0, eps_name)
    t = check_rate(tpr, "tpr")
    f = check_rate(fpr, "fpr")
    try:
        e, t, f = np.broadcast_arrays(e, t, f)
    except ValueError:
        raise ValueError(
            f"{eps_name}, tpr, fpr: shapes {np.shape(eps0)}, {np.shape(tpr)}, {np.shape(fpr)} do not broadcast"
        ) from None
    none_pass = e * f + (1.0 - e) * t == 0
    if none_pass.any():
        i = np.unravel_index(int(np.argmax(none_pass)), none_pass.shape) if none_pass.ndim else ()
        raise ValueError(
            f"tpr, fpr: nothing ever passes the evaluator ({eps_name}={float(e[i])!r}, "
            f"tpr={float(t[i])!r}, fpr={float(f[i])!r}); the error rate of the survivors is undefined"
        )
    return e, t, f
