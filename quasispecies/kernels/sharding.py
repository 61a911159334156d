r"""Temperature sweeps and large state vectors across devices (``jax.sharding``, ``shard_map``).

Two ways to spread the finite-horizon path sum ``u_H = T log n_H`` of
:mod:`quasispecies.kernels.pull` over the devices of a :class:`jax.sharding.Mesh`:

* :func:`sweep_over_devices` — **temperatures sharded**: each device runs the pull kernels
  for its share of the temperatures (the operator is replicated). No communication; the
  per-temperature program is the single-device one, so results are *bitwise* equal to
  :func:`quasispecies.kernels.pull.horizon`.
* :func:`horizon_over_devices` — **state sharded**: the rows of the pull operator (the
  destinations, with their predecessor tables) are split evenly over the devices
  (:func:`quasispecies.kernels.pull.build` with ``parts = n``); every step all-gathers the state
  vector and each device computes its rows. For operators too large for one device's
  memory. Every reduction across devices is a ``max`` (order independent) and each row is
  summed in the same order as on one device, so ``u`` is bitwise equal to the
  single-device result; the normalised population is formed on the host from ``u``.

On one machine, CPU "devices" come from
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before JAX is imported);
on a 2-core CPU, ``N = 2`` runs two temperatures at a time.

**Multi-host.** Both functions take any mesh, including one that spans processes. On each
host, before anything else touches JAX::

    import jax
    jax.distributed.initialize()      # coordinator address, process count and id from the
                                      # cluster environment (SLURM, TPU pods, Kubernetes),
                                      # or pass coordinator_address=, num_processes=,
                                      # process_id= explicitly
    import quasispecies as qs
    from quasispecies.kernels import sharding
    mesh = sharding.mesh(jax.devices())           # all devices of all hosts
    u, x = sharding.sweep_over_devices(mdp, temps, 200, x0, mesh=mesh)

Every process runs the same program on the same inputs (build the MDP from the same seed
or file on every host); inputs are placed with ``jax.device_put`` onto the global
:class:`~jax.sharding.NamedSharding`, and results are fetched with
``jax.experimental.multihost_utils.process_allgather`` so each process gets the full arrays.
Checkpointed sweeps and steady states over the processes of such a job, with a checkpoint
keyed by temperature that only process 0 writes, are
:func:`quasispecies.dynamics.distributed.distributed_sweep` (``quasispecies sweep --distributed``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from quasispecies.kernels import pull
from quasispecies.model.mdp import check_mdp, initial_population
from quasispecies.model.validate import check_nonneg_int, check_temperature
from quasispecies.semiring import host

__all__ = [
    "fetch",
    "horizon_over_devices",
    "mesh",
    "rows_order",
    "rows_over_devices",
    "sweep_over_devices",
]


def mesh(devices=None, axis: str = "d") -> Mesh:
    """A 1-D mesh over ``devices`` (default: all of ``jax.devices()``)."""
    devs = np.asarray(jax.devices() if devices is None else list(devices))
    return Mesh(devs, (axis,))


def _or_default(m: Mesh | None) -> Mesh:
    """``m``, or the mesh over all devices (the keyword ``mesh=`` shadows :func:`mesh`)."""
    return m if m is not None else mesh()


def _gather(axis):
    return lambda v: jax.lax.all_gather(v, axis, tiled=True)


def _gmax(axis):
    return lambda v: jax.lax.pmax(v, axis)


def fetch(a) -> np.ndarray:
    """``a`` as one host array on every process (``process_allgather`` when ``a`` spans
    processes, a plain copy otherwise)."""
    if getattr(a, "is_fully_addressable", True):
        return np.asarray(a)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(a, tiled=True))


def _prepare(mdp, temperatures, steps, x0):
    mdp = check_mdp(mdp)
    steps = check_nonneg_int(steps, "steps")
    Ts, _ = check_temperature(np.atleast_1d(np.asarray(temperatures, dtype=float)), "temperatures")
    return mdp, Ts, steps, initial_population(mdp, x0)


# ------------------------------------------------------------------- temperatures
@partial(jax.jit, static_argnames=("kernel", "steps", "static", "mesh", "chunk"))
def _sweep_sharded(arrs, Ts, x0, rmax, kernel, steps, static, mesh, chunk=1):
    ax = mesh.axis_names[0]
    if kernel == "linear":

        def body(arrs, Ts, x0, rmax):
            # this device's temperatures in chunks side by side (pull.chunk_size)
            Tc = Ts if chunk == 1 else Ts.reshape(-1, chunk)
            _, u, x, ok = pull.linear_batch(arrs, Tc, x0, rmax, steps, static, False)
            return u, x, ok
    elif kernel == "log":

        def body(arrs, Ts, x0, rmax):
            _, u, x = pull.log_batch(arrs, Ts, x0, steps, static, False)
            return u, x, jnp.ones(Ts.shape, bool)
    else:

        def body(arrs, Ts, x0, rmax):
            _, u, x, _ = pull.pair_batch(arrs, Ts, x0, steps, static, False)
            return u, x, jnp.ones(Ts.shape, bool)

    f = jax.shard_map(
        body,
        mesh=mesh,
        in_specs=(P(), P(ax), P(), P()),
        out_specs=(P(ax), P(ax), P(ax)),
        check_vma=False,
    )
    return f(arrs, Ts, x0, rmax)


def sweep_over_devices(mdp, temperatures, steps: int, x0=None, *, mesh: Mesh | None = None):
    """``(u, x)``, each ``(K, S)``: ``u = T log n_steps`` and the normalised ``x_steps``
    for every temperature, the temperatures split over the devices of ``mesh``.

    Same kernels and choices as :func:`quasispecies.kernels.pull.horizon` (guarded linear domain
    for ``T > 0`` with a log-domain redo, max-plus pairs at ``T = 0``) and bitwise the
    same numbers.
    """
    mdp, Ts, steps, x0v = _prepare(mdp, temperatures, steps, x0)
    mesh = _or_default(mesh)
    n = mesh.devices.size
    op = pull.pull_operator(mdp)
    arrs, static = op.device_arrays(), op.static()
    x0i = jnp.asarray(pull.to_internal(op, x0v))
    K, S = len(Ts), mdp.num_states
    u, x = np.empty((K, S)), np.empty((K, S))

    def run(idx, kernel):
        # pad to n devices x a power of two per device (repeat the last temperature)
        per = 1 << max(0, int(np.ceil(np.log2(-(-len(idx) // n)))))
        sub = np.concatenate([Ts[idx], np.full(per * n - len(idx), Ts[idx][-1])])
        Tsh = jax.device_put(jnp.asarray(sub), NamedSharding(mesh, P(mesh.axis_names[0])))
        chunk = pull.chunk_size(op, per) if kernel == "linear" else 1  # a power of two <= per
        uu, xx, ok = _sweep_sharded(
            arrs, Tsh, x0i, op.reward_max, kernel, steps, static, mesh, chunk
        )
        ok = fetch(ok)[: len(idx)]
        uu, xx = pull.to_original(op, fetch(uu)), pull.to_original(op, fetch(xx))
        u[idx[ok]] = uu[: len(idx)][ok]
        x[idx[ok]] = xx[: len(idx)][ok]
        return idx[~ok]

    pos = np.flatnonzero(Ts > 0)
    if len(pos):
        redo = run(pos, "linear")
        if len(redo):
            run(redo, "log")
    zero = np.flatnonzero(Ts == 0)
    if len(zero):
        run(zero, "pair")
    return u, x


# ------------------------------------------------------------------ any row maker
def _layout(K: int, n: int) -> np.ndarray:
    """``(n, per)`` item indices, device ``j`` taking ``array_split(range(K), n)[j]``, with
    ``-1`` padding (every device holds ``per = ceil(K / n)`` slots)."""
    per = max(1, -(-K // n))
    idx = np.full((n, per), -1, dtype=np.int64)
    for j, part in enumerate(np.array_split(np.arange(K), n)):
        idx[j, : part.size] = part
    return idx.reshape(-1)


def rows_over_devices(fn, values, width: int, *, mesh: Mesh | None = None) -> jax.Array:
    """``fn``'s rows for every item of ``values``, the items split over the devices of
    ``mesh`` (which may span the processes of a ``jax.distributed`` job).

    ``fn(values[ids]) -> (len(ids), width)`` float64 rows, for a host-side row maker (a
    steady-state solver, :func:`quasispecies.dynamics.sweep.temperature_sweep`'s rows)
    rather than one traced program. The items are laid out evenly along the mesh axis;
    each process calls ``fn`` once per *addressable* shard, under
    ``jax.default_device(device)`` (so the JAX work in ``fn`` runs on the device that
    holds the shard), and the result rows stay on that device. Returns the global
    ``(n * per, width)`` array (``NamedSharding(mesh, P(axis))``, padding rows NaN, item
    ``i`` at the row where :func:`fetch` then :func:`rows_order` put it); every process must
    call it with the same ``values``. Items are computed independently, so each row is
    bitwise what ``fn`` gives for that item alone whatever the mesh, as long as ``fn``'s
    items are independent.
    """
    mesh = _or_default(mesh)
    width = check_nonneg_int(width, "width", minimum=1)
    vals = np.asarray(values)
    if vals.ndim != 1:
        raise ValueError(f"values: expected a 1-D array, got shape {vals.shape}")
    n = mesh.devices.size
    idx = _layout(vals.size, n)
    per = idx.size // n
    sh = NamedSharding(mesh, P(mesh.axis_names[0]))
    where = jax.make_array_from_callback(idx.shape, sh, lambda i: idx[i])
    blocks = []
    for shard in sorted(where.addressable_shards, key=lambda s: s.index[0].start or 0):
        ids = np.asarray(shard.data)
        ids = ids[ids >= 0]
        rows = np.full((per, width), np.nan)
        if ids.size:
            with jax.default_device(shard.device):
                got = np.asarray(fn(vals[ids]), dtype=np.float64)
            if got.shape != (ids.size, width):
                raise ValueError(f"fn: returned shape {got.shape}, expected {(ids.size, width)}")
            rows[: ids.size] = got
        blocks.append(jax.device_put(rows, shard.device))
    return jax.make_array_from_single_device_arrays((idx.size, width), sh, blocks)


def rows_order(n_items: int, mesh: Mesh | None = None) -> np.ndarray:
    """Item index of each row of :func:`rows_over_devices`' array (``-1``: padding)."""
    return _layout(check_nonneg_int(n_items, "n_items"), _or_default(mesh).devices.size)


# ------------------------------------------------------------------------ states
@partial(jax.jit, static_argnames=("kernel", "steps", "static", "mesh"))
def _horizon_sharded(arrs, T, x0, rmax, kernel, steps, static, mesh):
    ax = mesh.axis_names[0]
    g, m = _gather(ax), _gmax(ax)
    Ts = T[None]

    def body(arrs, x0, rmax):
        if kernel == "linear":
            _, u, _, ok = pull.linear_batch(arrs, Ts, x0, rmax, steps, static, False, g, m)
            return u[0], jnp.zeros_like(u[0]), ok[0]
        if kernel == "log":
            _, u, _ = pull.log_batch(arrs, Ts, x0, steps, static, False, g, m)
            return u[0], jnp.zeros_like(u[0]), jnp.ones((), bool)
        _, u, _, c = pull.pair_batch(arrs, Ts, x0, steps, static, False, g, m)
        return u[0], c[0], jnp.ones((), bool)

    f = jax.shard_map(
        body,
        mesh=mesh,
        in_specs=(P(ax), P(ax), P()),
        out_specs=(P(ax), P(ax), P()),
        check_vma=False,
    )
    return f(arrs, x0, rmax)


def horizon_over_devices(mdp, T: float, steps: int, x0=None, *, mesh: Mesh | None = None):
    """``(u, x)``, each ``(S,)``, for one temperature with the state vector split over the
    devices of ``mesh`` (see the module docstring). ``u`` equals the single-device
    :func:`quasispecies.kernels.pull.horizon` bitwise; ``x`` is ``softmax(u / T)`` on the host
    (:func:`quasispecies.semiring.host.softmax_pair`, with the ``T = 0`` tie rule).
    """
    mdp, Ts, steps, x0v = _prepare(mdp, T, steps, x0)
    if Ts.size != 1:
        raise ValueError("T: horizon_over_devices takes one temperature")
    T = float(Ts[0])
    mesh = _or_default(mesh)
    n = mesh.devices.size
    op = pull.pull_operator(mdp, parts=n)
    sh = NamedSharding(mesh, P(mesh.axis_names[0]))
    arrs = jax.device_put(op.device_arrays(), sh)
    x0i = jax.device_put(jnp.asarray(pull.to_internal(op, x0v)), sh)
    kernels = ["pair"] if T == 0 else ["linear", "log"]
    for kernel in kernels:
        u, c, ok = _horizon_sharded(
            arrs, jnp.asarray(T), x0i, op.reward_max, kernel, steps, op.static(), mesh
        )
        if bool(fetch(ok)):
            break
    u = pull.to_original(op, fetch(u))
    c = pull.to_original(op, fetch(c))
    return u, host.softmax_pair(u, c, T)
