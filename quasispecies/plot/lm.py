"""Figures for the LM bridge (matplotlib, imported lazily).

* :func:`plot_population_vs_temperature` — the quasispecies over a token tree's leaves
  against ``T``: the LM's distribution at ``T = 1``, the MAP continuation as ``T -> 0``;
* :func:`plot_entropy_vs_temperature` — sequence-level ``p^(1/T)`` vs token-level
  temperature sampling: entropy and the mass on the MAP leaf;
* :func:`plot_decoders` — log-probability of the MAP, beam and greedy continuations
  for several prompts;
* :func:`make_figures` — all of them as ``lm_*.png`` in a folder (atomic writes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quasispecies.plot.style import save as _save

__all__ = [
    "make_figures",
    "plot_decoders",
    "plot_entropy_vs_temperature",
    "plot_population_vs_temperature",
]

DEFAULT_PROMPTS = (
    "Once upon a time",
    "Water boils at",
    "In 1492, Columbus",
    "My favourite food is",
    "The capital of France is",
    "I think that",
)


def _short(text: str, n: int = 22) -> str:
    t = repr(text)[1:-1]
    return t if len(t) <= n else t[: n - 1] + "…"


def plot_population_vs_temperature(tree, ax=None, temperatures=None, top: int = 7):
    """Stacked population of the ``top`` leaves with the most mass at ``T = 1`` (rest grey)."""
    import matplotlib.pyplot as plt

    from quasispecies.bridge.analyses import greedy_leaf, map_leaf, sequence_distribution

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.2))
    Ts = (
        np.geomspace(0.03, 10.0, 120)
        if temperatures is None
        else np.asarray(temperatures, dtype=float)
    )
    pop = sequence_distribution(tree, Ts)  # (K, N)
    leaves = list(tree.leaves)
    m, g = leaves.index(map_leaf(tree)[0]), leaves.index(greedy_leaf(tree))
    at1 = sequence_distribution(tree, 1.0)
    order = [i for i in np.argsort(-at1) if i not in (m, g)][: max(top - 2, 0)]
    shown = [m] + ([g] if g != m else []) + order
    colors = plt.get_cmap("tab10")(np.arange(10))
    layers, labels, cols = [], [], []
    for j, i in enumerate(shown):
        tag = "MAP" if i == m else ("greedy" if i == g else "")
        layers.append(pop[:, i])
        labels.append(f"{_short(tree.texts[leaves[i]])}" + (f"  [{tag}]" if tag else ""))
        cols.append(colors[j % len(colors)])
    rest = pop.sum(axis=1) - np.sum(layers, axis=0)
    layers.append(np.clip(rest, 0, None))
    labels.append(f"other {len(leaves) - len(shown)} leaves")
    cols.append((0.85, 0.85, 0.85))
    ax.stackplot(Ts, *layers, labels=labels, colors=cols, alpha=0.95)
    ax.set_xscale("log")
    ax.set_xlim(Ts.min(), Ts.max())
    ax.set_ylim(0, 1)
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.text(1.05, 0.97, "T = 1: the LM's own\ndistribution", va="top", fontsize=8)
    ax.set_xlabel("temperature T (sequence level: population ∝ p(y)^(1/T))")
    ax.set_ylabel(f"population after {tree.max_depth} generations")
    ax.set_title(
        f"Quasispecies over the continuations of {tree.prompt!r}\n"
        f"(depth {tree.max_depth}, top-{tree.top_k} token tree; T → 0 selects the MAP)",
        fontsize=10,
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return ax


def plot_entropy_vs_temperature(tree, axes=None, temperatures=None):
    """Entropy (nats) and MAP-leaf mass against ``T``, sequence level vs token level."""
    import matplotlib.pyplot as plt

    from quasispecies.bridge.analyses import temperature_profile

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    Ts = (
        np.geomspace(0.02, 20.0, 150)
        if temperatures is None
        else np.asarray(temperatures, dtype=float)
    )
    prof = temperature_profile(tree, Ts)
    a, b = axes
    a.plot(Ts, prof.sequence_entropy, label="sequence level  p(y)^(1/T) / Z  (population)", lw=2)
    a.plot(Ts, prof.token_entropy, label="token level  (top-k sampling at T)", lw=2, ls="--")
    a.axhline(np.log(len(tree.leaves)), color="grey", lw=0.8, ls=":")
    a.text(
        Ts[0],
        np.log(len(tree.leaves)) * 0.97,
        f"log {len(tree.leaves)} (uniform)",
        va="top",
        fontsize=8,
    )
    a.set_xscale("log")
    a.set_xlabel("temperature T")
    a.set_ylabel("entropy over the leaves (nats)")
    a.set_title("Entropy against temperature", fontsize=10)
    a.legend(fontsize=8, loc="lower right")
    b.plot(Ts, prof.sequence_p_map, label="sequence level: mass on the MAP leaf", lw=2)
    b.plot(Ts, prof.token_p_map, label="token level: mass on the MAP leaf", lw=2, ls="--")
    b.plot(Ts, prof.token_p_greedy, label="token level: mass on the greedy leaf", lw=1.5, ls=":")
    b.set_xscale("log")
    b.set_ylim(-0.02, 1.02)
    b.set_xlabel("temperature T")
    b.set_ylabel("probability")
    b.set_title("As T → 0: sequence level → MAP, token level → greedy", fontsize=10)
    b.legend(fontsize=8, loc="center right")
    return axes


def plot_decoders(lm, prompts=DEFAULT_PROMPTS, depth: int = 3, top_k: int = 5, ax=None):
    """log p of the MAP (max-plus DP), beam-2, beam-3 and greedy continuations per prompt."""
    import matplotlib.pyplot as plt

    from quasispecies.bridge.analyses import compare_decoders
    from quasispecies.bridge.tree import token_tree

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.2))
    rows = []
    for p in prompts:
        cmp = compare_decoders(token_tree(lm, p, depth, top_k), widths=(2, 3))
        rows.append((p, cmp))
    x = np.arange(len(rows))
    series = [
        ("MAP (exact max-plus DP)", [c.map_logprob for _, c in rows]),
        ("beam search, width 3", [c.beam[3][2] for _, c in rows]),
        ("beam search, width 2", [c.beam[2][2] for _, c in rows]),
        ("greedy decoding", [c.greedy_logprob for _, c in rows]),
    ]
    w = 0.2
    for j, (name, vals) in enumerate(series):
        ax.bar(x + (j - 1.5) * w, vals, w, label=name)
    ticks = [
        f"{_short(p, 22)}\nMAP{' ✓' if c.map_certified else ''}: '{_short(c.map_text, 16)}'"
        f"\ngreedy: '{_short(c.greedy_text, 16)}'"
        for p, c in rows
    ]
    ax.set_xticks(x, ticks, fontsize=7.5)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel(f"log p(continuation | prompt), {depth} tokens")
    ax.set_title(
        f"The T → 0 limit (MAP) vs decoders, SmolLM2-135M, depth-{depth} top-{top_k} trees\n"
        "(✓: certified — no continuation outside the tree scores higher)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower left")
    return ax, rows


def make_figures(out_dir="figures", lm=None, prompt: str = "Once upon a time") -> list[Path]:
    """Write ``lm_population_vs_T.png``, ``lm_entropy_vs_T.png`` and ``lm_decoders.png``."""
    from quasispecies.plot.style import pyplot

    plt = pyplot()
    from quasispecies.bridge.lm import default_lm
    from quasispecies.bridge.tree import token_tree

    lm = default_lm() if lm is None else lm
    out = Path(out_dir)
    tree = token_tree(lm, prompt, 3, 5)
    paths = []
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    plot_population_vs_temperature(tree, ax)
    paths.append(out / "lm_population_vs_T.png")
    _save(fig, paths[-1])
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    plot_entropy_vs_temperature(tree, axes)
    fig.suptitle(
        f"Sequence-level vs token-level temperature on the tree of {prompt!r}", fontsize=11
    )
    fig.tight_layout()
    paths.append(out / "lm_entropy_vs_T.png")
    _save(fig, paths[-1])
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    plot_decoders(lm, ax=ax)
    fig.tight_layout()
    paths.append(out / "lm_decoders.png")
    _save(fig, paths[-1])
    plt.close(fig)
    return paths
