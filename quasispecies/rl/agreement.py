r"""How often the selected policy of the path sum picks the Bellman-optimal action."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from quasispecies.model.mdp import check_mdp
from quasispecies.model.validate import check_nonneg_int, check_temperature
from quasispecies.paths import selected_policy
from quasispecies.rl.bellman import OPT_RTOL, finite_horizon_q, optimal_actions

__all__ = ["PolicyAgreement", "agreements", "policy_agreement"]


class PolicyAgreement(NamedTuple):
    """Agreement of ``argmax_a pi_T(a|s,t)`` with the optimal actions.

    fraction : agreeing / decided (``nan`` when nothing is decided).
    agree, decided : counts over the ``(t, s)`` where the reference optimum is unique.
    mask : (H, S) bool, where the reference optimum is unique.
    """

    fraction: float
    agree: int
    decided: int
    mask: np.ndarray


def policy_agreement(
    mdp, T, horizon: int, *, optimistic: bool = False, rtol: float = OPT_RTOL
) -> PolicyAgreement | list[PolicyAgreement]:
    r"""How often the selected policy ``pi_T(.|s,t)`` picks the Bellman-optimal action.

    Over every time ``t < H`` and state ``s`` where the optimal action of
    :func:`finite_horizon_q` is unique (``optimistic=True``: of ``Q^+``), the selected
    policy agrees when that action carries strictly more mass than any other. For
    deterministic MDPs the fraction tends to 1 as ``T -> 0``; for stochastic ones the
    ``T -> 0`` policy is the optimistic one and can disagree with Bellman's.

    ``pi_T(a|s,t) ∝ pi0(a|s) sum_{s'} P(s'|s,a) e^{R/T} z_{t+1}(s')`` with ``z_t = W_T z_{t+1}``
    (:func:`quasispecies.paths.selected_policy`; ``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s']
    exp(R[s,a,s']/T)``, populations are row vectors ``n_{t+1} = n_t W_T``); the reference
    is Bellman's (1957) optimum, or the optimistic one. For deterministic ``P``, ``pi_T`` is
    the KL-regularised optimal policy (E. Todorov, PNAS 106, 2009).
    """
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    Ts, sweep = check_temperature(T)
    out = agreements(mdp, Ts, sweep, horizon, optimistic, rtol)
    return out if sweep else out[0]


def agreements(
    mdp, Ts, sweep: bool, horizon: int, optimistic: bool, rtol: float
) -> list[PolicyAgreement]:
    """:func:`policy_agreement` for checked arguments, always one entry per temperature.

    ``Ts`` and ``sweep`` as returned by :func:`~quasispecies.model.validate.check_temperature`.
    """
    q = finite_horizon_q(mdp, horizon, optimistic=optimistic)
    opt = optimal_actions(q, rtol)
    mask = opt.sum(axis=-1) == 1
    ref = np.argmax(opt, axis=-1)
    pis = selected_policy(mdp, Ts, horizon)
    pis = pis if sweep else pis[None]
    out = []
    for pi in pis:
        mine = np.take_along_axis(pi, ref[..., None], axis=-1)[..., 0]
        other = np.where(np.arange(pi.shape[-1]) == ref[..., None], -np.inf, pi).max(axis=-1)
        agree = mask & (mine > other)
        decided = int(mask.sum())
        frac = float(agree.sum() / decided) if decided else float("nan")
        out.append(PolicyAgreement(frac, int(agree.sum()), decided, mask))
    return out
