"""Write notebooks/03_lm_bridge.ipynb (unexecuted) from the cells below.

    .venv/bin/python notebooks/build_03_lm_bridge.py

The notebook is executed by tests/test_notebook_03.py.
"""

from __future__ import annotations

from _builder import notebook, write

CELLS = [
    (
        "md",
        r"""# 03 — The LM bridge: log-probabilities as replication rates

A **token tree** is an MDP: a state is a prefix (the prompt plus the tokens generated so far),
an action is the next token, the transition is deterministic, and the reward is
$R = \log p_{\text{LM}}(\text{token}\mid\text{prefix})$.
With a uniform exploration policy the quasispecies population after $H$ generations is

$$x_H(y) = \frac{p(y)^{1/T}}{\sum_{y'} p(y')^{1/T}},$$

so at $T=1$ the population *is* the language model's sequence distribution, and as
$T\to 0$ it collapses onto the **MAP continuation**, which the max-plus DP finds exactly.
Everything below runs offline on the embedded SmolLM2-135M-Instruct (a Q4_1 GGUF read and run
in pure JAX).""",
    ),
    (
        "code",
        """import time

import matplotlib.pyplot as plt
import numpy as np

import quasispecies as qs
from quasispecies.plot import lm as plot_lm

lm = qs.bridge.default_lm()
print(lm)
value = lm.score("The capital of France is", " Paris.")
print(f'log p(" Paris." | "The capital of France is") = {value:.4f}')
assert abs(value - (-0.638)) < 1e-3""",
    ),
    (
        "md",
        """## A depth-3, top-5 token tree

156 states: the prompt, its 5 most likely next tokens, their 5 each, and so on. Leaves loop on
themselves with reward 0. All nodes of one level are scored in one batched call that reuses the
prompt's KV cache.""",
    ),
    (
        "code",
        """t0 = time.perf_counter()
tree = qs.bridge.token_tree(lm, "Once upon a time", depth=3, top_k=5)
print(f"{tree.num_states} states, {len(tree.leaves)} leaves, built in {time.perf_counter() - t0:.1f} s")
print(tree.mdp)
for a, s in enumerate(tree.children(0)):
    print(f"  action {a}: {tree.texts[s]!r:10} reward = log p = {tree.mdp.reward[0, a, 0]:.3f}")""",
    ),
    (
        "md",
        """## $T = 1$: the population is the LM's distribution

We run the toolkit's own quasispecies dynamics on the tree and compare with $e^{\\text{score}}/Z$,
where each leaf's score is recomputed from scratch by the model (no KV cache).""",
    ),
    (
        "code",
        """x = qs.evolve(tree.mdp, 1.0, tree.max_depth, tree.x0)[-1]
scores = lm.score_many([(list(tree.prompt_ids), list(tree.tokens[s])) for s in tree.leaves])
p = np.exp(scores - scores.max())
p /= p.sum()
print("max |population - exp(score)/Z| =", np.abs(x[tree.leaves] - p).max())
assert np.allclose(x[tree.leaves], p, rtol=3e-4, atol=1e-12)  # float32 forward passes""",
    ),
    (
        "md",
        """## $T \\to 0$: the MAP continuation, which greedy decoding misses

`qs.scaled_log_population(mdp, 0, H, x0)` is the max-plus (tropical) path sum: the best total
log-probability into every state. Greedy decoding takes the best *next* token each time; beam search
keeps a few candidates. The certificate checks that no continuation leaving the tree could
beat the MAP (every later token only lowers the score).""",
    ),
    (
        "code",
        """cmp = qs.bridge.compare_decoders(tree, widths=(2, 3, 5))
print(f"MAP     {cmp.map_text!r:16} log p = {cmp.map_logprob:.3f}   certified: {cmp.map_certified}")
for w, (_, text, lp) in cmp.beam.items():
    print(f"beam {w}  {text!r:16} log p = {lp:.3f}")
print(f"greedy  {cmp.greedy_text!r:16} log p = {cmp.greedy_logprob:.3f}")
assert not cmp.greedy_is_map

u0 = qs.scaled_log_population(tree.mdp, 0.0, tree.max_depth, tree.x0)
assert u0[tree.leaves].max() == tree.logprob[tree.leaves].max()""",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(7.5, 4.2))
plot_lm.plot_population_vs_temperature(tree, ax)
plt.show()""",
    ),
    (
        "md",
        """## Sequence-level vs token-level temperature

Sampling each token from $p(\\cdot\\mid\\text{prefix})^{1/T}$ (here among the top-5) is a different
distribution from the sequence-level $p(y)^{1/T}$: it renormalises at every node and so cannot see
that a likely first token leads only to unlikely continuations. As $T\\to0$ it becomes greedy decoding,
not the MAP. We check the exact token-level distribution against Monte Carlo sampling.""",
    ),
    (
        "code",
        """q = qs.bridge.token_distribution(tree, 1.0)
draws = qs.bridge.sample_token_level(tree, 1.0, 20_000, seed=0)
leaves = list(tree.leaves)
freq = np.bincount([leaves.index(s) for s in draws], minlength=len(leaves)) / len(draws)
print("max |Monte Carlo - exact| =", np.abs(freq - q).max())

prof = qs.bridge.temperature_profile(tree, [0.0, 0.25, 0.5, 1.0, 2.0])
for row in zip(*prof[:4], strict=True):
    print("T = {:4.2f}  H_seq = {:5.3f}  H_token = {:5.3f}  KL(token || seq) = {:6.3f}".format(*row))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
plot_lm.plot_entropy_vs_temperature(tree, axes)
fig.tight_layout()
plt.show()""",
    ),
    ("md", """## Greedy vs MAP over several prompts"""),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(9.5, 4.5))
_, rows = plot_lm.plot_decoders(lm, ax=ax)
fig.tight_layout()
plt.show()
print(f"greedy != MAP for {sum(not c.greedy_is_map for _, c in rows)} of {len(rows)} prompts")""",
    ),
    (
        "md",
        """## Fitness tables

The tree is written as a fitness table (`state, action, next_state, reward`, plus `x0`), here as
CSV; `quasispecies sweep table.csv ...` runs on it, and `qs.load_mdp` reads it back.""",
    ),
    (
        "code",
        """import tempfile
from pathlib import Path

from quasispecies.model.tables import write_table

with tempfile.TemporaryDirectory() as d:
    path = Path(d) / "tree.csv"
    write_table(path, tree.to_table())
    print(path.read_text().splitlines()[:4])
    mdp, x0 = qs.load_mdp(path)
    same = np.allclose(qs.evolve(mdp, 0.5, 3, x0), qs.evolve(tree.mdp, 0.5, 3, tree.x0), rtol=0, atol=1e-15)
    print("round trip reproduces the dynamics:", same)
    assert same""",
    ),
]


def build():
    return notebook(CELLS)


if __name__ == "__main__":
    write(build(), __file__)
