"""Write notebooks/04_selection_and_collapse.ipynb (unexecuted) from the cells below.

    .venv/bin/python notebooks/build_04_selection_and_collapse.py

The notebook is executed by tests/test_notebook_04.py. It does not load the language model:
the real-model measurements are read from the cached results that
``quasispecies chain`` and ``quasispecies collapse --lm`` write.
"""

from __future__ import annotations

from _builder import notebook, write

CELLS = [
    ("md", r"""# 04 — Selection by an evaluator, and the mode collapse it causes

Two claims motivate this notebook.

**(a) Cherry-picking is selection, and selection lowers the error rate.** Let a model answer,
let a judge (possibly the same model, asked how confident it is on a "not at all … a great deal"
scale) keep some answers, and feed the kept ones back as context. If the judge keeps right answers
with probability $\mathrm{tpr}$ and wrong ones with $\mathrm{fpr}$, Bayes' rule gives the error
among the kept answers, and if the model then errs as often as its context does, the odds of error
shrink by $\mathrm{fpr}/\mathrm{tpr}$ every round:

$$\varepsilon_{k+1} = \frac{\varepsilon_k\,\mathrm{fpr}}{\varepsilon_k\,\mathrm{fpr} + (1-\varepsilon_k)\,\mathrm{tpr}}.$$

**(b) Tilting a model by a reward narrows its world.** The optimum of KL-regularised RL is
$p_\beta \propto p_0\,e^{r/\beta}$, a Bayesian update of the prior $p_0$. Mass drains out of
everything the reward does not favour, attractor outputs appear, and sampling hotter afterwards
cannot undo it, because $p_\beta^{1/\tau} \propto p_0^{1/\tau} e^{r/(\beta\tau)}$: heating weakens
the reward and the prior together.

Everything here is exact (no sampling) unless it says otherwise."""),
    ("code", """import json
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import quasispecies as qs
from quasispecies.experiments import collapse_study
from quasispecies.plot import selection as plot_selection

sel, col = qs.selection, qs.collapse
ROOT = Path(qs.__file__).resolve().parents[1]"""),
    ("md", """## Tilting is the KL-regularised optimum

$\\beta\\log Z_\\beta = \\max_p\\, \\mathbb{E}_p[r] - \\beta\\,\\mathrm{KL}(p\\,\\|\\,p_0)$, attained at the tilt."""),
    ("code", """p0, r, beta = np.array([0.5, 0.3, 0.2]), np.array([1.0, 0.0, 2.0]), 0.5
p = np.asarray(sel.tilt(p0, r, beta))
value = p @ r - beta * sel.kl_divergence(p, p0)
print("tilted:", np.round(p, 6))
print(f"E[r] - beta KL = {value:.7f},  beta log Z = {float(sel.tilt_log_partition(p0, r, beta)):.7f}")
assert abs(value - float(sel.tilt_log_partition(p0, r, beta))) < 1e-12"""),
    ("md", """## Best of $n$: exact distribution, KL and win rate against their bounds

$\\pi_n(y) = F(y)^n - F(y^-)^n$ (ties share), $\\mathrm{KL}(\\pi_n\\|p) \\le \\log n - (n-1)/n$,
win rate $\\le n/(n+1)$. Coarse rewards (many ties) stay well below both bounds; a fine-grained reward
approaches them."""),
    ("code", """rng = np.random.default_rng(0)
p = rng.dirichlet(np.ones(400))
r_fine = rng.normal(size=400)
r_coarse = np.round(r_fine)  # 7 reward levels
ns = np.unique(np.geomspace(1, 1000, 30).astype(int))
fine, coarse = sel.best_of_n_stats(p, r_fine, ns), sel.best_of_n_stats(p, r_coarse, ns)
assert np.all(np.asarray(fine.kl) <= np.asarray(fine.kl_bound) + 1e-12)
assert np.all(np.asarray(coarse.win_rate) <= np.asarray(coarse.win_rate_bound) + 1e-12)
fig, (a0, a1) = plt.subplots(1, 2, figsize=(8, 3))
a0.plot(ns, fine.kl_bound, "k--", label="log n - (n-1)/n")
a0.plot(ns, fine.kl, label="400 distinct rewards")
a0.plot(ns, coarse.kl, label="7 reward levels")
a0.set(xscale="log", xlabel="n", ylabel="KL(best-of-n || p)")
a0.legend()
a1.plot(ns, fine.win_rate_bound, "k--", label="n/(n+1)")
a1.plot(ns, fine.win_rate)
a1.plot(ns, coarse.win_rate)
a1.set(xscale="log", xlabel="n", ylabel="win rate vs a fresh draw")
a1.legend()
fig.tight_layout()
plt.show()"""),
    ("md", """## Iterative chaining: the recurrence and a finite context buffer

With $\\mathrm{tpr}=0.7$, $\\mathrm{fpr}=0.35$ the odds halve each round. A finite buffer of $B$
passing answers makes each round a binomial draw: the mean sits above the recurrence (the step map is
convex), and $\\varepsilon = 0$ and $\\varepsilon = 1$ absorb — a small buffer that fills with wrong
answers never recovers."""),
    ("code", """eps0, tpr, fpr, rounds = 0.6, 0.7, 0.35, 8
exact = sel.filter_rounds(eps0, tpr, fpr, rounds)
print("exact:", np.round(exact, 4), " rounds to reach 1%:", sel.rounds_to_reach(eps0, tpr, fpr, 0.01))
fig, ax = plt.subplots(figsize=(5, 3))
for j, B in enumerate([2, 8, 64, 1024]):
    err = np.asarray(sel.simulate_chaining(jax.random.key(j), eps0, tpr, fpr, rounds, B, 2000).error)
    ax.plot(err.mean(axis=0), label=f"B = {B}: mean of 2000 runs (stuck at 1: {np.mean(err[:, -1] == 1):.1%})")
ax.plot(exact, "k--", lw=2, label="filter_rounds")
ax.set(xlabel="round", ylabel="error in context")
ax.legend(fontsize=7)
plt.show()"""),
    ("md", """## Mode collapse in three domains

Entropy of $p_0 e^{\\lambda r}$ against $\\lambda = 1/\\beta$, with the tilted distribution re-sampled at
$\\tau \\in [0.5, 3]$. (a) a Zipf prior over 1000 outcomes with a Gaussian reward; (b) the path
distribution of a grid world, where the tilt by the return at $\\lambda = 1/T$ *is* the quasispecies
path sum — the 30 tied best paths form an attractor that no temperature breaks."""),
    ("code", """study = {"distribution": collapse_study.distribution_study(), "paths": collapse_study.paths_study()}
lm_file = ROOT / "figures" / "collapse.json"
if lm_file.exists():
    cached = json.loads(lm_file.read_text())["study"]
    if "lm_tree" in cached:
        study["lm_tree"] = cached["lm_tree"]  # measured by `quasispecies collapse --lm`
study["attractor"] = collapse_study.attractor_study()
out = Path("figures_04")
out.mkdir(exist_ok=True)
plot_selection.collapse_entropy_figure(study, out / "collapse_entropy.png")
display(Image(str(out / "collapse_entropy.png"), width=900))
for row in collapse_study.summary_rows(study, strengths=(0.0, 5.0, 50.0)):
    print(f"{row['domain']:<13} 1/beta={row['strength']:7.3g}  H={row['entropy']:.3f}  "
          f"H(tau=3)={row['reheated_entropy']:.3f}  untuned H(tau=3)={row['base_entropy_at_tau']:.3f}")"""),
    ("md", """## Sequence level versus token level

A KL-regularised fine-tune realises the sequence tilt token by token through soft-Bellman messages;
sampling that policy at $\\tau = 1$ reproduces $p_\\beta$ exactly. Re-heating *per token* is a different
distribution from re-heating whole sequences."""),
    ("code", """rng = np.random.default_rng(3)
parent, logp, depth = [-1], [0.0], [0]
level = [0]
for d in range(4):
    nxt = []
    for s in level:
        law = np.sort(rng.dirichlet(np.ones(5)))[::-1][:3]
        for a in range(3):
            parent.append(s)
            logp.append(np.log(law[a]))
            depth.append(d + 1)
            nxt.append(len(parent) - 1)
    level = nxt
tree = col.Tree(np.array(parent), np.array(logp), np.array(depth))
reward = rng.normal(size=len(tree.leaves))
beta = 0.25
logits = col.tree_tilt_logits(tree, reward, beta)
seq = col.tree_sequence_probs(tree, 1.0, reward, beta)
assert np.allclose(col.tree_token_probs(tree, 1.0, logits), seq, rtol=1e-10)
for tau in (1.0, 2.0, 3.0):
    h_seq = col.entropy(col.reheat(seq, tau))
    h_tok = col.entropy(col.tree_token_probs(tree, tau, logits))
    print(f"tau={tau}: sequence-level H={h_seq:.3f}, token-level H={h_tok:.3f}, "
          f"untuned token-level H={col.entropy(col.tree_token_probs(tree, tau)):.3f}")"""),
    ("md", """## Iterated selection converges to an attractor"""),
    ("code", """plot_selection.collapse_attractor_figure(study, out / "collapse_attractor.png")
display(Image(str(out / "collapse_attractor.png"), width=700))"""),
    ("md", """## The real model: SmolLM2-135M chaining its own answers

Measured by `quasispecies chain` (cached in `benchmarks/results/`): the model answers the bundled
factual questions, each answer is scored, answers above the round-0 median are kept, and the model
answers again with kept pairs as context. Two judges: the survey self-evaluation
$\\log p(\\text{" a great deal"}) - \\log p(\\text{" not at all"})$ (the seed's survey trick), and the
model's own mean token log-prob of its answer."""),
    ("code", """from quasispecies.experiments.chaining import summarise

for name in ("chain.json", "chain_likelihood.json"):
    path = ROOT / "benchmarks" / "results" / name
    if not path.exists():
        print(f"no cached {name}: run `quasispecies chain` first")
        continue
    s = summarise(json.loads(path.read_text()))
    print(f"{name}: {s['n_questions']} questions; round-0 TPR={s['tpr0']:.3f} FPR={s['fpr0']:.3f} "
          f"AUC={s['auc'][0]:.3f} (answer-likelihood AUC={s['auc_likelihood'][0]:.3f})")
    print("round  observed  predicted  context  one-step prediction")
    for k, (e, p_) in enumerate(zip(s["eps"], s["predicted"], strict=True)):
        c = s["context_error"][k]
        one = s["predicted_buffer"][k - 1] if k else None
        print(f"{k:5d}  {e:8.3f}  {p_:9.3f}  {'-' if c is None else f'{c:.3f}':>7}  "
              f"{'-' if one is None else f'{one:.3f}':>19}")"""),
]


def build():
    return notebook(CELLS)


if __name__ == "__main__":
    write(build(), __file__)
