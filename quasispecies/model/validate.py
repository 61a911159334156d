"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` whose message starts with the argument's name, so a
user sees *which* input is wrong and *how*.
"""

from __future__ import annotations

import jax
import numpy as np

#: Absolute tolerance for "sums to one" (rows of P, pi0, x0, distributions).
SUM_ATOL = 1e-8


def is_traced(*xs) -> bool:
    """True when any of ``xs`` is a JAX tracer (inside ``jax.grad``, ``jit`` or ``vmap``).

    Traced values have no concrete entries to check, so the public entry points validate
    their shapes only and leave the value checks to the concrete call (see
    :mod:`quasispecies.dynamics.implicit`).
    """
    return any(isinstance(x, jax.core.Tracer) for x in xs)


def traced_array(x, name: str, *, ndim: int | tuple[int, ...]):
    """A traced ``x`` as a float array of ``ndim`` dimensions (shape check only)."""
    import jax.numpy as jnp

    arr = jnp.asarray(x)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        raise ValueError(
            f"{name}: expected {' or '.join(map(str, allowed))}-D, got shape {arr.shape}"
        )
    return arr


def as_float_array(x, name: str, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` as a float64 array, optionally of ``ndim`` dimensions (an int or a tuple of
    allowed ones); ``ValueError`` naming ``name`` if it is not numbers or has the wrong rank."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected an array of numbers ({err})") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name}: expected {' or '.join(map(str, allowed))}-D, got shape {arr.shape}"
            )
    return arr


def check_probabilities(p: np.ndarray, name: str) -> None:
    """Entries of a probability array: no NaN, no infinity, nothing negative (``ValueError``
    naming ``name`` and, for a negative entry, its index)."""
    if np.isnan(p).any():
        raise ValueError(f"{name}: contains NaN")
    if np.isinf(p).any():
        raise ValueError(f"{name}: contains an infinite value")
    if (p < 0).any():
        idx = tuple(int(i) for i in np.argwhere(p < 0)[0])
        raise ValueError(f"{name}: negative probability {float(p[idx])!r} at index {idx}")


def check_distribution(p, name: str, size: int | None = None) -> np.ndarray:
    """A 1-D probability vector (non-negative, sums to 1), optionally of a given length."""
    arr = as_float_array(p, name, ndim=1)
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name}: expected length {size}, got {arr.shape[0]}")
    check_probabilities(arr, name)
    total = float(arr.sum())
    if abs(total - 1.0) > SUM_ATOL:
        raise ValueError(f"{name}: must sum to 1, sums to {total!r}")
    return arr


def check_temperature(T, name: str = "T", *, allow_inf: bool = False) -> tuple[np.ndarray, bool]:
    """Scalar or 1-D array of temperatures ``>= 0``, finite unless ``allow_inf`` (then
    ``+inf``, the neutral-selection limit, is accepted too). Returns (array, is_sweep)."""
    arr = as_float_array(T, name, ndim=(0, 1))
    if arr.ndim == 1 and arr.size == 0:
        raise ValueError(f"{name}: empty temperature array")
    if np.isnan(arr).any():
        raise ValueError(f"{name}: temperature is NaN")
    bad_inf = np.isneginf(arr) | (np.isposinf(arr) & (not allow_inf))
    if bad_inf.any():
        raise ValueError(
            f"{name}: temperature must be finite, got {float(arr[bad_inf].ravel()[0])!r}"
        )
    if (arr < 0).any():
        raise ValueError(
            f"{name}: temperature must be >= 0, got {float(arr[arr < 0].ravel()[0])!r}"
        )
    return arr, arr.ndim == 1


def check_nonneg_int(n, name: str, minimum: int = 0) -> int:
    """``n`` as an ``int >= minimum`` (bools and floats are rejected, NumPy integers accepted)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ValueError(f"{name}: expected an integer, got {n!r}")
    if n < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {n}")
    return int(n)


def check_rewards(R: np.ndarray, name: str = "R") -> None:
    """Finite rewards; ``-inf`` is allowed and means "transition not allowed"."""
    if np.isnan(R).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(R))[0])
        raise ValueError(f"{name}: NaN reward at index {idx}")
    if np.isposinf(R).any():
        idx = tuple(int(i) for i in np.argwhere(np.isposinf(R))[0])
        raise ValueError(
            f"{name}: +inf reward at index {idx} (only -inf, meaning 'not allowed', is accepted)"
        )
