"""Strict numerics for every test: float64 on, implicit rank promotion is an error."""

import os

os.environ.setdefault("QUASISPECIES_X64", "1")

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(params=["jit", "nojit"])
def jit_mode(request):
    """Run a test body with JAX's jit on and off (chex-style variants)."""
    if request.param == "nojit":
        with jax.disable_jit():
            yield request.param
    else:
        yield request.param
