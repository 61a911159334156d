"""Write notebooks/02_error_threshold.ipynb (unexecuted) from the cells below.

    .venv/bin/python notebooks/build_02_error_threshold.py

The notebook is executed by tests/test_notebook_02.py (it runs in well under a minute).
"""

from __future__ import annotations

from _builder import notebook, write

CELLS = [
    (
        "md",
        r"""# 02 — Eigen's quasispecies on sequence space and the error threshold

**Eigen's model.** Genotypes are words of length $L$ over an alphabet of $k$ letters. Each
generation, a genotype $g$ makes copies in proportion to its fitness $f(g)$, and every copied
site comes out wrong with probability $\mu$ (the wrong letter uniform among the other $k-1$).
In the row-vector convention of this toolkit,
$$x_{t+1} \propto x_t\,W,\qquad W=\mathrm{diag}(f)\,Q,$$
where $Q[g,h]$ is the probability that a copy of $g$ reads $h$. The stationary population
(the *quasispecies*) is the left Perron vector, $xW=\lambda x$, and $\lambda$ is the mean
fitness. It is the MDP picture of notebook 01 with one action ("copy"), a stochastic
transition ($Q$) and reward $\log f$.""",
    ),
    (
        "code",
        """import math
import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse.linalg

import quasispecies as qs
from quasispecies.kernels import kronecker

np.set_printoptions(precision=5, suppress=False)""",
    ),
    (
        "md",
        r"""## 1. The Kronecker structure

Sites mutate independently, so $Q = q_1\otimes q_2\otimes\cdots\otimes q_L$ with
$q_i=(1-\mu_i)I+\frac{\mu_i}{k-1}(J-I)$. Applying $Q$ one site at a time costs
$O(L\,k^{L+1})$ and never forms the $k^L\times k^L$ matrix. Below: the Kronecker matvec
against the dense matrix built with `np.kron`, in the linear and in the log domain.""",
    ),
    (
        "code",
        """L, k = 8, 2
rng = np.random.default_rng(0)
mu = rng.uniform(0.01, 0.1, L)  # one error rate per site
space = qs.SequenceSpace(L, mu)
Q = np.ones((1, 1))
for m in mu:
    Q = np.kron(Q, np.array([[1 - m, m], [m, 1 - m]]))
x = rng.random(2**L)
print("linear:", np.abs(space.mutate(x) - x @ Q).max())
u = kronecker.log_mutate(np.log(x) - 800.0, kronecker.log_site_weights(mu, k), k)  # 1e-348 scale
print("log domain:", np.abs(np.asarray(u) + 800.0 - np.log(x @ Q)).max())""",
    ),
    (
        "md",
        r"""## 2. Lumping onto Hamming classes

If every site has the same $\mu$ and the fitness depends only on the Hamming distance $d$ to a
master sequence (the single peak: $f=\sigma$ at $d=0$, 1 elsewhere), then the total population
of each class $d=0..L$ obeys a closed $(L+1)$-dimensional equation with
$M[d,e]=\sum_i\binom{d}{i}p_b^i(1-p_b)^{d-i}\binom{L-d}{j}\mu^j(1-\mu)^{L-d-j}$,
$j=e-d+i$ ($i$ back-mutations, $j$ new ones, $p_b=\mu/(k-1)$). This is exact, not an
approximation: the full-space solution summed by class equals the class solution.
`qs.single_peak` lumps automatically, so $L=1000$ costs seconds.""",
    ),
    (
        "code",
        """space = qs.SequenceSpace(14, 0.03)
full = qs.single_peak(space, 10.0, lumped=False)  # 2^14 genotypes
classes = qs.single_peak(space, 10.0)  # 15 classes
a, b = qs.steady_state(full, 1.0), qs.steady_state(classes, 1.0)
print("lambda (full, classes):", math.exp(a.log_growth), math.exp(b.log_growth))
print("max class difference  :", np.abs(full.class_frequencies(a.population) - b.population).max())
big = qs.steady_state(qs.single_peak(qs.SequenceSpace(1000, 0.001), 10.0), 1.0)
print("L = 1000: master class", big.population[0], " class 1000:", big.population[-1])""",
    ),
    (
        "md",
        r"""## 3. The error threshold

Neglecting back-mutations, the master class obeys $x_0=(\sigma(1-\mu)^L-1)/(\sigma-1)$, which
vanishes at $\mu_c = 1-\sigma^{-1/L}\approx \ln\sigma/L$: the longer the genome, the fewer
errors per site it tolerates. With back-mutation the exact master frequency drops sharply at
$\mu_c$ to its value in the uniform distribution, $k^{-L}$ — the population melts into
sequence space and the mean fitness falls to about 1.""",
    ),
    (
        "code",
        """mus = np.geomspace(1e-3, 0.5, 60)
curves = qs.error_threshold([10, 20, 50, 100], 10.0, mus)
fig, ax = plt.subplots(figsize=(6, 3.2))
for i, L in enumerate(curves.lengths):
    (line,) = ax.loglog(mus, curves.master_frequency[i], label=f"L={L}")
    ax.axvline(curves.threshold[i], color=line.get_color(), ls=":")
ax.set_ylim(1e-6, 1.5)
ax.set_xlabel("error rate per site mu")
ax.set_ylabel("master-class frequency")
ax.legend()
plt.show()
for i, L in enumerate(curves.lengths):
    mc, ma = curves.threshold[i], curves.threshold_approx[i]
    print(f"L={L:4d}  mu_c exact={mc:.5f}  ln(sigma)/L={ma:.5f}")""",
    ),
    (
        "md",
        r"""## 4. Lanczos versus power iteration near the threshold

Power iteration converges like $|\lambda_2/\lambda_1|^n$, and near the threshold the gap
between the top two eigenvalues closes: where $|\lambda_2/\lambda_1|\approx 0.98$, ten digits
take more than a thousand matvecs. $W$ is similar to the symmetric $F^{1/2}QF^{1/2}$ (uniform
substitution makes $Q$ symmetric), so Lanczos applies: it converges like
$e^{-2n\sqrt{\text{gap}}}$. We count matvecs on the full space ($L=14$, $\sigma=2$, all
$2^{14}$ genotypes, no lumping) below, at and just above $\mu_c$. The ratio
$|\lambda_2/\lambda_1|$ comes from the exact class matrix: a uniform start stays in the
permutation-symmetric subspace, so that is the rate power iteration sees.""",
    ),
    (
        "code",
        """L, sigma = 14, 2.0
mu_c = 1 - sigma ** (-1 / L)
print("mu/mu_c  |l2/l1|  power matvecs  Lanczos matvecs  |lambda difference|")
for ratio in (0.9, 1.0, 1.04):
    space = qs.SequenceSpace(L, ratio * mu_c)
    fc = np.r_[sigma, np.ones(L)]
    ev = np.sort(np.abs(np.linalg.eigvals(fc[:, None] * np.exp(space.log_class_matrix()))))
    model = qs.single_peak(space, sigma, lumped=False)
    ss = qs.steady_state(model, 1.0)
    f = model.fitness
    x, n_pow = np.full(2**L, 2.0**-L), 0
    while True:
        y = space.mutate(x * f)
        lam_pow = y.sum()
        y = y / lam_pow
        n_pow += 1
        if np.abs(y - x).sum() < 1e-10 or n_pow > 20000:
            break
        x = y
    err = abs(lam_pow - math.exp(ss.log_growth))
    print(f"{ratio:7.2f}  {ev[-2] / ev[-1]:7.4f}  {n_pow:13d}  {ss.iterations:15d}  {err:.1e}")""",
    ),
    (
        "md",
        r"""## 5. A random landscape on the full space

No lumping is possible for a rugged landscape: here an NK landscape ($K=3$) on $2^{18}$
genotypes with a different error rate at every site, checked against ARPACK driving a plain
NumPy Kronecker matvec.""",
    ),
    (
        "code",
        """L = 18
rng = np.random.default_rng(1)
mus = rng.uniform(0.002, 0.02, L)
space = qs.SequenceSpace(L, mus)
model = qs.nk_landscape(space, 3, seed=1)
t = time.perf_counter()
ss = qs.steady_state(model, 1.0)
t_ours = time.perf_counter() - t
f = model.fitness


def matvec(v):
    y = (f * v.ravel()).reshape((2,) * L)
    for i, m in enumerate(mus):
        y = np.moveaxis(np.tensordot(np.array([[1 - m, m], [m, 1 - m]]), y, axes=([1], [i])), 0, i)
    return y.ravel()


op = scipy.sparse.linalg.LinearOperator((2**L, 2**L), matvec=matvec, dtype=float)
vals, vecs = scipy.sparse.linalg.eigs(op, k=1, which="LR", tol=1e-13, v0=np.ones(2**L))
x_ref = vecs[:, 0].real / vecs[:, 0].real.sum()
print(f"ours: {t_ours:.2f} s (incl. compile), {ss.iterations} matvecs")
print("relative lambda difference:", abs(math.exp(ss.log_growth) - vals[0].real) / vals[0].real)
print("L1 distance of populations:", np.abs(ss.population - x_ref).sum())
print("fittest genotype's frequency:", ss.population[np.argmax(f)])""",
    ),
    (
        "md",
        r"""## Summary

| idea | formula | checked by |
|---|---|---|
| Eigen's model | $xW=\lambda x$, $W=\mathrm{diag}(f)Q$ | dense `np.linalg.eig` (tests) |
| Kronecker structure | $Q=\bigotimes_i q_i$, $O(Lk^{L+1})$ matvec | `np.kron` |
| lumping | $L+1$ Hamming classes, exact | full space summed by class |
| threshold | $\mu_c=1-\sigma^{-1/L}\approx\ln\sigma/L$ | reference tables, secular equation |
| solver | Lanczos on $F^{1/2}QF^{1/2}$ | ARPACK, power iteration |

`quasispecies threshold --length 10 20 50 100 --sigma 10 --mu 0.001:0.3:100 --figures DIR`
produces the curves and figures (`quasispecies.plot.threshold.paper_figures()` writes those in
`figures/`).""",
    ),
]


def build():
    return notebook(CELLS)


if __name__ == "__main__":
    write(build(), __file__)
