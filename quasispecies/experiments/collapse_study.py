r"""The mode-collapse measurements of :mod:`quasispecies.selection.collapse`, assembled per domain.

Each ``*_study`` function returns a JSON-ready dict with the same keys, so one figure
(:func:`quasispecies.plot.selection.collapse_entropy_figure`) and one table serve all:

``strength`` (B,)      tilt strengths ``lambda = 1/beta`` (``1/T`` for paths)
``tau`` (K,)           re-heating temperatures
``entropy`` (B, K)     ``H(p_lambda^(1/tau) / Z)``, sequence level
``tilted_entropy`` (B,), ``base_entropy`` (K,), ``deficit`` (B, K)  (see :class:`ReheatGrid`)
``perplexity`` (B,)    ``exp(H(p_lambda))``
``n_outcomes``         support size

Domains: a plain distribution (Zipf prior over ``n`` outcomes with a Gaussian reward), an
MDP's path distribution (exploration measure tilted by the return: at ``1/T``), and a
language model's token tree (sequence distribution tilted by the self-evaluation reward
of :mod:`quasispecies.experiments.questions`; plus the token-level version, where the tuned policy
is sampled token by token at temperature ``tau``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from quasispecies.selection import collapse as col

if TYPE_CHECKING:
    from quasispecies.bridge.protocol import LM

__all__ = [
    "DEFAULT_STRENGTHS",
    "DEFAULT_TAUS",
    "attractor_study",
    "distribution_study",
    "lm_tree_study",
    "paths_study",
    "summary_rows",
]

DEFAULT_STRENGTHS = np.concatenate([[0.0], np.geomspace(0.02, 50.0, 36)])
DEFAULT_TAUS = np.array([0.5, 1.0, 1.5, 2.0, 3.0])


def _grid_dict(p0, r, strengths, taus) -> dict[str, Any]:
    g = col.reheating(p0, r, strengths, taus)
    return {
        "strength": g.strength.tolist(),
        "tau": g.tau.tolist(),
        "entropy": g.entropy.tolist(),
        "tilted_entropy": g.tilted_entropy.tolist(),
        "base_entropy": g.base_entropy.tolist(),
        "deficit": g.deficit.tolist(),
        "perplexity": np.exp(g.tilted_entropy).tolist(),
        "n_outcomes": int(np.count_nonzero(np.asarray(p0) > 0)),
    }


def distribution_study(n: int = 1000, seed: int = 0, strengths=None, taus=None) -> dict[str, Any]:
    """Zipf(1.1) prior over ``n`` outcomes, rewards i.i.d. standard normal (seeded)."""
    strengths = DEFAULT_STRENGTHS if strengths is None else strengths
    taus = DEFAULT_TAUS if taus is None else taus
    w = 1.0 / np.arange(1, n + 1) ** 1.1
    p0 = w / w.sum()
    r = np.random.default_rng(seed).normal(size=n)
    out = _grid_dict(p0, r, strengths, taus)
    out["description"] = f"Zipf(1.1) prior over {n} outcomes, reward ~ N(0, 1) (seed {seed})"
    return out


def paths_study(mdp=None, horizon: int = 6, x0=None, strengths=None, taus=None) -> dict[str, Any]:
    """Path distribution of an MDP over ``horizon`` steps, tilted by the return at ``1/T``.

    Default: a deterministic 3 x 4 grid world (goal reward 1 at the top-right corner,
    step cost 0.1), starting at the bottom-left corner.
    """
    from quasispecies.model.builders import grid_world

    strengths = DEFAULT_STRENGTHS if strengths is None else strengths
    taus = DEFAULT_TAUS if taus is None else taus
    desc = "custom MDP"
    if mdp is None:
        mdp = grid_world(3, 4, goal=(0, 3), goal_reward=1.0, step_cost=0.1)
        x0 = np.eye(mdp.num_states)[8]
        desc = "3x4 grid world, goal (0, 3) reward 1, step cost 0.1, start (2, 0)"
    pd = col.path_distribution(mdp, horizon, x0)
    out = _grid_dict(pd.base, pd.returns, strengths, taus)
    out["description"] = f"{desc}, horizon {horizon}: {len(pd.returns)} paths"
    out["best_return"] = float(pd.returns.max())
    att = col.attractor(pd.base, pd.returns)
    out["attractor_paths"] = int(np.count_nonzero(att))  # the T -> 0 population's support
    out["attractor_entropy"] = float(col.entropy(att))
    return out


def attractor_study(
    n: int = 12, steps: int = 30, beta: float = 2.0, seed: int = 1
) -> dict[str, Any]:
    """Iterated tilting of a small distribution with a fixed reward and with ``r = log p``."""
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    p0 = rng.dirichlet(np.ones(n))
    r = np.round(rng.normal(size=n), 2)
    traj = col.iterate_tilt(p0, r, beta, steps)
    self_traj = col.iterate_tilt(p0, lambda p: jnp.log(p), beta, min(steps, 12))
    att = col.attractor(p0, r)
    return {
        "p0": p0.tolist(),
        "r": r.tolist(),
        "beta": beta,
        "trajectory": traj.tolist(),
        "entropy": col.entropy(traj).tolist(),
        "self_entropy": col.entropy(self_traj).tolist(),
        "attractor": att.tolist(),
        "attractor_entropy": float(col.entropy(att)),
    }


def lm_tree_study(
    lm: LM,
    question: str = "Name a large animal that lives in Africa.",
    depth: int = 3,
    top_k: int = 4,
    strengths=None,
    taus=None,
    fmt=None,
) -> dict[str, Any]:
    """A token tree of ``lm`` (any :class:`~quasispecies.bridge.protocol.LM`, a server
    too) answering ``question`` (chat format), tilted by the
    self-evaluation reward of each leaf (:func:`quasispecies.experiments.questions.self_evaluate`).

    Sequence level: ``p0(y) ∝ p(y)`` over the leaves, tilted to ``p0 exp(lambda m(y))``
    and re-heated as ``p_lambda^(1/tau)``. Token level: the policy that realises the
    tilt (:func:`quasispecies.selection.collapse.tree_tilt_logits`) sampled at temperature ``tau``
    per token (:func:`quasispecies.selection.collapse.tree_token_probs`); ``token_base_entropy`` is
    the untuned model sampled the same way.
    """
    from quasispecies.bridge import token_tree
    from quasispecies.experiments.questions import ChatFormat, self_evaluate_many

    strengths = np.asarray(DEFAULT_STRENGTHS if strengths is None else strengths, dtype=float)
    taus = np.asarray(DEFAULT_TAUS if taus is None else taus, dtype=float)
    fmt = fmt or ChatFormat()
    tt = token_tree(lm, fmt.answer_prompt(question), depth, top_k)
    tree = col.tree_from_token_tree(tt)
    leaves = tree.leaves
    texts = [tt.texts[s] for s in leaves]
    reward = np.array(
        self_evaluate_many(lm, question, [fmt.clean(t) or t.strip() for t in texts], fmt)
    )
    p0 = col.tree_sequence_probs(tree)
    out = _grid_dict(p0, reward, strengths, taus)
    tok = np.zeros((len(strengths), len(taus)))
    for i, lam in enumerate(strengths):
        if lam == 0:
            logits = tree.logp
        else:
            logits = col.tree_tilt_logits(tree, reward, 1.0 / lam)
        for k, t in enumerate(taus):
            tok[i, k] = float(col.entropy(col.tree_token_probs(tree, t, logits)))
    out["token_entropy"] = tok.tolist()
    out["token_base_entropy"] = [float(col.entropy(col.tree_token_probs(tree, t))) for t in taus]
    att = col.attractor(p0, reward)
    out["attractor"] = [
        {"text": texts[j], "p": float(att[j]), "reward": float(reward[j])}
        for j in np.flatnonzero(att)
    ]
    top = {}
    for lam in (0.0, 1.0, float(strengths.max())):
        p = col.tilt_curve(p0, reward, lam).probs[0]
        idx = np.argsort(-p)[:5]
        top[f"{lam:g}"] = [
            {"text": texts[j], "p": float(p[j]), "reward": float(reward[j])} for j in idx
        ]
    out.update(
        {
            "question": question,
            "depth": depth,
            "top_k": top_k,
            "leaf_texts": texts,
            "leaf_reward": reward.tolist(),
            "leaf_p0": p0.tolist(),
            "top_leaves": top,
            "description": f"{getattr(lm, 'name', 'lm')} token tree (depth {depth}, top-{top_k}) for {question!r}",
        }
    )
    return out


def summary_rows(study: dict[str, Any], strengths=(0.0, 1.0, 5.0, 50.0)) -> list[dict[str, Any]]:
    """Rows ``(domain, lambda, H, perplexity, H at tau=3, deficit at tau=3, base H at tau=3)``
    at the sweep points closest to ``strengths``."""
    rows = []
    for name, panel in study.items():
        if not (isinstance(panel, dict) and "strength" in panel):
            continue
        lam = np.asarray(panel["strength"])
        taus = list(panel["tau"])
        k3 = int(np.argmin(np.abs(np.asarray(taus) - 3.0)))
        for s in strengths:
            i = int(np.argmin(np.abs(lam - s)))
            rows.append(
                {
                    "domain": name,
                    "strength": float(lam[i]),
                    "entropy": float(panel["tilted_entropy"][i]),
                    "perplexity": float(panel["perplexity"][i]),
                    "tau": float(taus[k3]),
                    "reheated_entropy": float(panel["entropy"][i][k3]),
                    "deficit": float(panel["deficit"][i][k3]),
                    "base_entropy_at_tau": float(panel["base_entropy"][k3]),
                }
            )
    return rows
