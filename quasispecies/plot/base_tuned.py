"""The base-vs-tuned figure (``collapse --base --tuned``): one row of four panels.

(a) effective support ``exp(H)`` of each prompt's sequence distribution, base and tuned;
(b) the re-heating response ``H(q^(1/tau))`` against ``tau`` (thin: each prompt, thick: the
mean), with the base's ``H`` at ``tau = 1`` as the level re-heating has to reach;
(c) the implied reward ``log p_tuned - log p_base`` (centred over siblings) on every edge
against the best context-free token tilt (its ``R^2``: 1 means "the tuned model is a
token-level tilt of the base");
(d) the attractors of the first prompt: the continuations whose mass grows most.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quasispecies.plot.style import PAPER_COLORS, PAPER_RC, paper_axes, save_paper

__all__ = ["base_tuned_figure"]


def _short(text: str, n: int = 18) -> str:
    t = repr(text)[1:-1]
    return t if len(t) <= n else t[: n - 1] + "…"


def base_tuned_figure(study: dict, path) -> Path:
    """Draw :func:`quasispecies.experiments.base_tuned.base_tuned_study`'s result to
    ``path`` (atomic write); returns the path."""
    rows = study["per_prompt"]
    if not rows:
        raise ValueError("study: no prompt in per_prompt")
    import matplotlib as mpl

    cb, ct = PAPER_COLORS[0], PAPER_COLORS[1]
    with mpl.rc_context(PAPER_RC):
        fig, (a, b, c, d) = paper_axes(11.0, 2.8, 4)

        x = np.arange(len(rows))
        a.bar(x - 0.2, [r["base"]["effective_support"] for r in rows], 0.4, color=cb, label="base")
        a.bar(
            x + 0.2, [r["tuned"]["effective_support"] for r in rows], 0.4, color=ct, label="tuned"
        )
        a.set_xticks(x, [f"p{i + 1}" for i in x])
        a.set_ylabel("effective support exp(H)")
        a.set_title("(a) spread on the tree")
        a.legend()

        tau = np.asarray(rows[0]["tau"])
        hb = np.array([r["base_entropy_vs_tau"] for r in rows])
        ht = np.array([r["tuned_entropy_vs_tau"] for r in rows])
        for i in range(len(rows)):
            b.plot(tau, hb[i], color=cb, lw=0.5, alpha=0.4)
            b.plot(tau, ht[i], color=ct, lw=0.5, alpha=0.4)
        b.plot(tau, hb.mean(0), color=cb, ls="--", label="base, re-heated")
        b.plot(tau, ht.mean(0), color=ct, label="tuned, re-heated")
        b.axhline(np.mean([r["base"]["entropy"] for r in rows]), color="0.5", lw=0.8, ls=":")
        b.set_xlabel("tau")
        b.set_ylabel("H(q^(1/tau)) [nats]")
        b.set_title("(b) re-heating")
        b.legend()

        imp = np.concatenate([r["token_fit"]["implied_reward"] for r in rows])
        pred = np.concatenate([r["token_fit"]["predicted_implied"] for r in rows])
        c.scatter(pred, imp, s=5, color=PAPER_COLORS[3], alpha=0.6)
        lo, hi = float(min(imp.min(), pred.min())), float(max(imp.max(), pred.max()))
        c.plot([lo, hi], [lo, hi], color="0.4", lw=0.8)
        r2 = np.mean([r["token_fit"]["r2"] for r in rows])
        c.set_xlabel("token tilt fit (centred)")
        c.set_ylabel("log p_t - log p_b (centred)")
        c.set_title(f"(c) implied reward, R^2 = {r2:.3f}")

        att = rows[0]["attractors"][:6]
        if att:
            y = np.arange(len(att))[::-1]
            d.barh(y + 0.2, [t["p_base"] for t in att], 0.4, color=cb, label="base")
            d.barh(y - 0.2, [t["p_tuned"] for t in att], 0.4, color=ct, label="tuned")
            d.set_yticks(y, [_short(t["text"]) for t in att])
            d.legend(loc="lower right")
        d.set_xlabel("sequence mass on the tree")
        d.set_title(f"(d) attractors of {_short(rows[0]['prompt'], 14)!s}")
    return save_paper(fig, path)
