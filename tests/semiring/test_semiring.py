"""The log-at-T / max-plus reduction: references, bounds, -inf handling, gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import logsumexp

from quasispecies import semiring


def test_maslov_reference_values():
    # ../shared/reference/rl.json, "maslov": x = [1, 2, 3], T * logsumexp(x / T).
    x = jnp.array([[1.0, 2.0, 3.0]])
    got = semiring.scaled_lse(x, jnp.array([1.0, 0.1, 0.01, 0.0])[:, None], axis=-1)
    np.testing.assert_allclose(got, [3.407606, 3.0000045, 3.0, 3.0], atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=1, max_size=8),
    st.sampled_from([10.0, 1.0, 0.3, 0.05, 1e-8, 0.0]),
)
def test_scaled_lse_matches_scipy_and_bound(xs, T):
    x = np.array(xs)
    got = float(semiring.scaled_lse(jnp.asarray(x), T))
    want = x.max() if T == 0 else T * logsumexp(x / T)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert x.max() - 1e-12 <= got <= x.max() + T * np.log(len(x)) + 1e-12


def test_minus_inf_is_the_zero():
    T = jnp.array([1.0, 0.0])[:, None]
    x = jnp.array([[-jnp.inf, -jnp.inf]])
    out = semiring.scaled_lse(x, T, axis=-1)
    assert np.all(np.isneginf(out))
    out = semiring.scaled_lse(jnp.array([[-jnp.inf, 2.0]]), T, axis=-1)
    np.testing.assert_allclose(out, [2.0, 2.0])
    pair = semiring.reduce_pair(
        jnp.array([1.0, 1.0, 0.5]), jnp.log(jnp.array([0.2, 0.3, 0.5])), 0.0
    )
    assert float(pair.u) == 1.0 and float(pair.c) == pytest.approx(np.log(0.5))
    w = semiring.softmax_pair(
        jnp.array([1.0, 1.0, -jnp.inf]), jnp.log(jnp.array([0.25, 0.75, 1.0])), 0.0
    )
    np.testing.assert_allclose(w, [0.25, 0.75, 0.0])


def test_weighted_reduce_against_numpy():
    rng = np.random.default_rng(0)
    for _ in range(50):
        u = rng.normal(size=6)
        w = rng.random(6) * (rng.random(6) > 0.3)
        for T in (2.0, 0.4, 0.0):
            got = float(semiring.reduce(jnp.asarray(u), T, logw=jnp.log(jnp.asarray(w))))
            live = w > 0
            if not live.any():
                assert got == -np.inf
            elif T == 0:
                assert got == u[live].max()
            else:
                assert got == pytest.approx(
                    T * np.log(np.sum(w[live] * np.exp(u[live] / T))), rel=1e-12
                )


def test_gradients_finite_where_defined():
    u = jnp.array([1.0, -jnp.inf, 0.5])
    for T in (1.0, 1e-3):
        g = jax.grad(lambda v, t=T: semiring.scaled_lse(v, t))(u)
        assert np.isfinite(np.asarray(g)).all()
        np.testing.assert_allclose(float(jnp.sum(g)), 1.0)  # softmax weights
    gT = jax.grad(lambda t: semiring.scaled_lse(jnp.array([1.0, 0.0, -jnp.inf]), t))(0.5)
    assert np.isfinite(float(gT))


def test_segment_reduce_matches_dense():
    rng = np.random.default_rng(1)
    u = rng.normal(size=20)
    c = np.log(rng.random(20))
    seg = rng.integers(0, 5, 20)
    for T in (1.0, 0.0):
        got = semiring.segment_reduce_pair(jnp.asarray(u), jnp.asarray(c), jnp.asarray(seg), 6, T)
        for k in range(6):
            sel = seg == k
            ref = semiring.reduce_pair(jnp.asarray(np.where(sel, u, -np.inf)), jnp.asarray(c), T)
            np.testing.assert_allclose(got.u[k], ref.u, rtol=1e-13)
            np.testing.assert_allclose(got.c[k], ref.c, rtol=1e-13)
