"""Write notebooks/01_derivation.ipynb (unexecuted) from the cells below.

    .venv/bin/python notebooks/build_01_derivation.py

The notebook is executed by tests/test_notebook_01.py (it runs in well under a minute).
"""

from __future__ import annotations

from _builder import notebook, write

CELLS = [
    (
        "md",
        r"""# 01 — Selection is a path integral; reinforcement learning is its $T\to 0$ limit

**The argument.** Picture a population of simple replicators living on the states of an
environment. They do not plan: each one picks an action at random (the exploration, or
"mutation", policy $\pi_0$), the environment moves it, and the move's reward $R$ sets how many
copies it leaves, $e^{R/T}$. A neutral move ($R=0$) neither grows nor shrinks a lineage; a
very negative one all but kills it; a very positive one multiplies it. Nothing in the dynamics
knows about value functions. Yet if we write one generation as a matrix acting on the
population and multiply the matrices out, the number of individuals that arrive at a state is
a **sum over every history** that leads there, each history weighted by the exponential of its
total reward over $T$. That is the shape of a path integral: as $T\to 0$ the sum is swamped by
its largest terms, the best histories, just as the classical trajectory dominates a quantum
amplitude as $\hbar\to 0$. So the survivors of strong selection are exactly the lineages that
followed optimal paths: **selection turns into reinforcement learning** — provided the
actions have deterministic effects, an assumption the argument needs and we will drop later.

The same reading applies to language models, whose outputs already carry log-probabilities
and are sampled at a temperature: keeping only the samples a judge likes is a fitness, and
a population of kept samples evolves by exactly this kind of selection (notebooks 03 and 04).

This notebook makes each step numerical and checks it exactly:

1. the quasispecies equation $n_{t+1} = n_t W_T$;
2. its expansion into a sum over paths, equal to the matrix power;
3. the log domain, where $T\to0$ is the max-plus (tropical) semiring, and the bound
   $0 \le u^0_H - u^T_H \le T H\log A$;
4. the limit: the best-path value, the Bellman optimum and Bellman's optimal actions;
5. the stationary limit $T\log\rho(W_T)\to\mu^*$, the maximum cycle mean;
6. where it breaks: stochastic transitions (pymdptoolbox's forest; a gamble), and periodic
   optimal cycles.""",
    ),
    (
        "code",
        """import matplotlib.pyplot as plt
import numpy as np
from scipy.special import logsumexp

import quasispecies as qs
from quasispecies import paths, rl

np.set_printoptions(precision=4, suppress=True)
mdp = qs.random_mdp(4, 2, seed=0)  # 4 states, 2 actions, deterministic transitions
S, A = mdp.shape
P, R, pi0 = mdp.P, mdp.R, mdp.pi0  # P[s, a, s'], R[s, a], pi0[s, a] (uniform)
print(mdp)
print("next state of (s, a):\\n", mdp.next_state[:, :, 0])
print("reward R[s, a]:\\n", R)""",
    ),
    (
        "md",
        r"""## 1. The quasispecies equation

Kernel $K[s,a,s'] = \pi_0(a|s)\,P(s'|s,a)$, fitness $F_T = e^{R/T}$, and the replication
operator (row vectors: $W_T[s,s']$ is the flow from $s$ to $s'$)

$$W_T[s,s'] = \sum_a K[s,a,s']\,e^{R(s,a,s')/T},\qquad n_{t+1} = n_t W_T,\qquad x_t = n_t/\textstyle\sum_s n_t(s).$$""",
    ),
    (
        "code",
        """T, H = 0.5, 4
x0 = np.eye(S)[0]  # everyone starts in state 0
W = np.einsum("sa,sat,sa->st", pi0, P, np.exp(R / T))
n_H = x0 @ np.linalg.matrix_power(W, H)
print("n_H  = x0 W^H            :", n_H)
print("x_H  (qs.evolve)         :", qs.evolve(mdp, T, H, x0)[-1])
print("n_H / sum n_H            :", n_H / n_H.sum())
u = qs.scaled_log_population(mdp, T, H, x0)  # T log n_H, computed in the log domain
print("T log n_H (log domain)   :", u)
with np.errstate(divide="ignore"):  # log 0 = -inf where no path arrives
    assert np.allclose(u, T * np.log(n_H), atol=1e-12)""",
    ),
    (
        "md",
        r"""## 2. Expanding the product: a sum over paths

Multiplying out $x_0 W_T^H$ gives one term per path $s_0 a_0 s_1 \dots a_{H-1} s_H$:

$$n_H(s') = \sum_{\text{paths}\,\to s'} x_0(s_0)\prod_{t<H} K(s_t,a_t,s_{t+1})\;e^{G/T},\qquad G=\sum_{t<H} R(s_t,a_t,s_{t+1}).$$

`qs.paths.enumerate` lists the paths (streamed in chunks, so $10^8$ of them fit in bounded
memory) with `log_weight` $=\log x_0 + \sum\log K + G/T$. Summing their weights per end state
reproduces the matrix power exactly.""",
    ),
    (
        "code",
        """e = paths.enumerate(mdp, T, H, x0)
print(f"{len(e.log_weight)} paths (= A^H = {A**H}); counting semiring: {paths.num_paths(mdp, H, x0)}")
by_end = np.array([np.exp(logsumexp(e.log_weight[e.states[:, -1] == s])) if (e.states[:, -1] == s).any() else 0.0
                   for s in range(S)])
print("sum over paths per end state:", by_end)
print("x0 W^H                      :", n_H)
assert np.allclose(by_end, n_H, rtol=1e-12)

best = paths.top_k(mdp, T, H, 5, x0)  # k-best semiring: no enumeration needed
Z = logsumexp(e.log_weight)
print("\\nthe 5 heaviest paths (k-best dynamic programme):")
for s_, a_, lw, G in zip(best.states, best.actions, best.log_weight, best.reward, strict=True):
    print(f"  states {s_}, actions {a_}, return G = {G:.4f}, share of the population = {np.exp(lw - Z):.4f}")
assert np.allclose(best.log_weight, np.sort(e.log_weight)[::-1][:5], atol=1e-12)""",
    ),
    (
        "md",
        r"""## 3. The log domain and the tropical limit

Carry $u_t = T\log n_t$ instead of $n_t$:

$$u_{t+1}(s') = T\log\sum_{s,a} K\,e^{(u_t(s)+R)/T} \;\xrightarrow[T\to0]{}\; \max_{(s,a):\,K>0}\,[u_t(s)+R].$$

This is Maslov's dequantization: the log semiring at temperature $T$ becomes the max-plus
semiring, in which "sum over paths" means "best path". Computing in this domain, $T=10^{-8}$
neither overflows nor underflows and $T=0$ is a legal input. For deterministic $P$, uniform
$\pi_0$ and $x_0=\delta$ the convergence is uniform: $0\le u^0_H - u^T_H\le T H\log A$.""",
    ),
    (
        "code",
        """Ts = np.array([2.0, 1.0, 0.3, 0.1, 0.03, 0.01, 1e-4, 1e-8, 0.0])
U = qs.scaled_log_population(mdp, Ts, H, x0)  # one vmapped sweep
u0 = U[-1]
fin = np.isfinite(u0)  # states reachable in H steps
gaps = np.array([(u0[fin] - u_T[fin]).max() for u_T in U])
print(" T        max_s u_H^T   max_s(u^0 - u^T)   bound T H log A")
for T_, u_T, gap in zip(Ts, U, gaps, strict=True):
    print(f" {T_:<8.0e} {u_T.max():12.6f}   {gap:14.3e}   {T_ * H * np.log(A):14.3e}")
    assert -1e-12 <= gap <= T_ * H * np.log(A) + 1e-12

fig, ax = plt.subplots(figsize=(4.6, 2.8))
pos = Ts > 0
ax.loglog(Ts[pos], gaps[pos], "o-", label=r"$\\max_s(u^0_H - u^T_H)$")
ax.loglog(Ts[pos], Ts[pos] * H * np.log(A), "k--", label=r"bound $TH\\log A$")
ax.set_xlabel("temperature $T$")
ax.set_ylabel("gap")
ax.legend(frameon=False)
plt.show()""",
    ),
    (
        "md",
        r"""## 4. The limit is reinforcement learning

With $x_0=\delta_{s_0}$, $\max_{s'}u^0_H(s')$ is the best return over paths of positive
probability — the *optimistic* value $V^+_H(s_0)$. For deterministic transitions it equals
Bellman's optimum $V^*_H$ (`rl.finite_horizon_values` returns both). And the lineages that
survive followed the policy read off the backward messages $z_H=1$, $z_t = W_T z_{t+1}$:

$$\pi_T(a|s,t)\;\propto\;\pi_0(a|s)\sum_{s'}P(s'|s,a)\,e^{R/T}z_{t+1}(s'),$$

the KL-regularised (soft) optimal policy; as $T\to0$ it puts its mass on Bellman's actions.""",
    ),
    (
        "code",
        """vals = rl.finite_horizon_values(mdp, H)
print("V*_H (Bellman)   :", vals.expected)
print("V+_H (best path) :", vals.optimistic)
print("max_s' u^0_H from delta_s:", [qs.scaled_log_population(mdp, 0.0, H, s).max() for s in range(S)])
assert np.allclose(vals.expected, vals.optimistic)

for T_ in [1.0, 0.3, 0.1, 0.0]:
    ag = rl.policy_agreement(mdp, T_, H)
    print(f"T = {T_:<4}: argmax pi_T is Bellman's action in {ag.agree}/{ag.decided} decisions (s, t)")
pi = paths.selected_policy(mdp, 0.3, H)
soft = rl.soft_value_iteration(mdp, 0.3, horizon=H)  # soft value iteration, expectation form
assert np.allclose(pi[0], soft.policy, atol=1e-12)
print("pi_0.3(a | s, t=0):\\n", pi[0])""",
    ),
    (
        "md",
        r"""## 5. The stationary limit: growth rate and the optimal cycle

Over many generations the population grows like $\rho(W_T)^t$ and settles on the left Perron
vector, the quasispecies. On the $T\log$ scale the growth rate tends to the maximum cycle mean
of the support graph, the max-plus eigenvalue (Karp 1978; Howard's policy iteration,
Cochet-Terrasson et al. 1998), with

$$\mu^* + \tfrac{T}{L}\textstyle\sum_{C^*}\log K \;\le\; T\log\rho(W_T)\;\le\;\mu^*.$$

For deterministic MDPs $\mu^*$ is the best long-run average reward. *Which* states the
population occupies is subtler. The **ancestors** of the survivors sat on the optimal cycle
$C^*$: the path distribution's state marginal in the middle of a long horizon (forward
$\times$ backward messages, `paths.state_marginals`) concentrates on $C^*$. The **current**
population need not: each generation, the individuals that just took the most rewarding exit
from the cycle outnumber the rest, so the quasispecies piles up where that exit lands (the
argmax of the left max-plus eigenvector), here state 0, which is off the cycle.""",
    ),
    (
        "code",
        """cyc = qs.maxplus.optimal_cycle(mdp)
print(f"mu* = {qs.max_cycle_mean(mdp):.6f}; optimal cycle {cyc.states.tolist()} with actions {cyc.actions.tolist()}")
Ts2 = np.array([1.0, 0.3, 0.1, 0.03, 0.01, 0.0])
ss = qs.steady_state(mdp, Ts2)
ancestors = paths.state_marginals(mdp, Ts2, 80, x0)[:, 40]  # where lineages were at t = 40 of 80
lower = cyc.mean + Ts2 * cyc.log_kernel.sum() / len(cyc.states)
print("  T      lower bound   T log rho    mu*     | ancestors on C*  | population: argmax state (mass)")
for T_, g, lo, x, anc in zip(Ts2, ss.scaled_log_growth, lower, ss.population, ancestors, strict=True):
    top = int(np.argmax(x))
    print(f"  {T_:<5}  {lo:10.6f}  {g:10.6f}  {cyc.mean:.6f} |     {anc[cyc.states].sum():.4f}       | {top} ({x[top]:.4f})")
    assert lo - 1e-10 <= g <= cyc.mean + 1e-10
assert ancestors[-1][cyc.states].sum() > 1 - 1e-12 and np.argmax(ss.population[-1]) not in cyc.states""",
    ),
    (
        "md",
        r"""## 6. Where it breaks

### Stochastic transitions: the population is optimistic

With stochastic $P$ the $T\to0$ limit is still a maximum over paths of positive probability:
the population backs the luckiest outcome of every action (a risk-seeking, exponential-utility
Bellman operator), not the expected one. pymdptoolbox's forest-management problem (wait or cut;
a fire resets the forest with probability 0.1) shows it at discount 0.9. The reference optimum
must come from an exact solver: pymdptoolbox's *value iteration* stops after a few sweeps.""",
    ),
    (
        "code",
        """import mdptoolbox.example
import mdptoolbox.mdp

forest = rl.forest()  # = mdptoolbox.example.forest(), as an MDP
exact = rl.policy_iteration(forest, 0.9)
print("Bellman optimum V* (policy iteration)        :", exact.values, "policy", exact.policy)
Pm, Rm = mdptoolbox.example.forest()
vi = mdptoolbox.mdp.ValueIteration(Pm, Rm, 0.9)
vi.run()
print(f"pymdptoolbox value iteration ({vi.iter} sweeps)       :", np.array(vi.V))
pint = rl.path_integral_values(forest, 0.01, discount=0.9, actions="max")
print("path-integral backup, T = 0.01               :", pint.values)
opt = rl.policy_iteration(forest, 0.9, optimistic=True)
print("optimistic limit V+ (best path through support):", opt.values)
print("expectation (soft VI) form at T = 0          :", rl.soft_value_iteration(forest, 0.0, discount=0.9).values)
assert np.allclose(exact.values, [26.244, 29.484, 33.484], atol=1e-10)
assert np.allclose(opt.values, [32.4, 36.0, 40.0], atol=1e-10)
assert np.allclose(pint.values, [32.39, 35.99, 39.99], atol=5e-3)""",
    ),
    (
        "md",
        r"""The gap $V^+ - V^*$ is invisible to a replicator population. It can also flip the
*policy*: below, action 0 pays 1 for sure, action 1 pays 10 with probability 0.05 and $-5$
otherwise. Bellman plays safe; as $T\to0$ the surviving lineages gamble.""",
    ),
    (
        "code",
        """Pg = np.zeros((2, 2, 2))
Pg[:, 0, 0] = 1.0  # action 0: stay in state 0 ...
Pg[:, 1] = [0.95, 0.05]  # action 1: state 1 with probability 0.05
Rg = np.zeros((2, 2, 2))
Rg[:, 0, :] = 1.0  # ... paying 1
Rg[:, 1, 0] = -5.0
Rg[:, 1, 1] = 10.0
gamble = qs.MDP(Pg, Rg)
v = rl.finite_horizon_values(gamble, 4)
print("V*_4 =", v.expected, "  V+_4 =", v.optimistic)
for T_ in [10.0, 3.0, 1.0, 0.1, 0.0]:
    a_b = rl.policy_agreement(gamble, T_, 4)
    a_o = rl.policy_agreement(gamble, T_, 4, optimistic=True)
    print(f"T = {T_:<5}: agrees with Bellman {a_b.fraction:.2f}, with the optimistic policy {a_o.fraction:.2f}")
st0 = paths.trajectory_stats(gamble, 0.0, 4, 0)
print("T log Z at T = 0:", float(st0.scaled_log_partition), "= V+, not V* =", v.expected[0])""",
    ),
    (
        "md",
        r"""### Periodic optimal cycles: no convergence, only a cycle

If the optimal cycle has length $L>1$, the $T\to0$ population does not settle: it walks around
the cycle, period $L$. $T\log\rho$ still tends to $\mu^*$ and the Perron vector still exists
(it is the time average), but $x_t$ oscillates.""",
    ),
    (
        "code",
        """# in each state: action 0 crosses to the other state (reward 1), action 1 stays (reward 0.5)
periodic = qs.MDP.from_transitions([[1, 0], [0, 1]], [[1.0, 0.5], [1.0, 0.5]])
cyc = qs.maxplus.optimal_cycle(periodic)
print("optimal cycle", cyc.states.tolist(), "mean", cyc.mean)
xs = qs.evolve(periodic, 0.05, 8, 0)
print("x_t at T = 0.05, t = 0..8:\\n", xs)
ss = qs.steady_state(periodic, 0.05)
print("Perron vector:", ss.population, " time average of x_1..x_8:", xs[1:].mean(axis=0))
print("T log rho =", ss.scaled_log_growth, "-> mu* =", qs.max_cycle_mean(periodic))
assert abs(xs[-1][0] - xs[-2][0]) > 0.99  # still alternating after 8 generations
assert np.allclose(ss.population, 0.5) and np.allclose(xs[1:].mean(axis=0), 0.5, atol=1e-3)""",
    ),
    (
        "md",
        r"""## Summary

| step | exact statement | checked by |
|---|---|---|
| quasispecies equation | $n_H = x_0 W_T^H$ | matrix power vs `qs.evolve` |
| path expansion | $n_H(s') = \sum_{\text{paths}\to s'} x_0\prod K\,e^{G/T}$ | `qs.paths.enumerate` vs matrix power |
| tropical limit | $u^T_H\to u^0_H$ (max-plus), $0\le u^0-u^T\le TH\log A$ | log-domain sweep |
| RL limit | $\max_{s'}u^0_H = V^+_H = V^*_H$ (deterministic), $\arg\max\pi_T\to$ Bellman | `rl.finite_horizon_values`, `rl.policy_agreement` |
| stationary | $T\log\rho(W_T)\to\mu^*$ on the optimal cycle | `qs.steady_state`, `maxplus.optimal_cycle` |
| breaks: stochastic $P$ | limit is $V^+\ge V^*$ (forest: 32.4, 36, 40 vs 26.244, 29.484, 33.484) | `rl.policy_iteration` |
| breaks: periodic cycle | $x_t$ oscillates with the cycle's period | `qs.evolve` |

`quasispecies limit MDP_FILE --temperatures ... --out DIR` measures all of this for any MDP and
draws `limit_growth.png`, `limit_policy.png`, `limit_gap.png`
(`quasispecies.plot.limit.paper_figures()` writes the versions in `figures/`).""",
    ),
]


def build():
    return notebook(CELLS)


if __name__ == "__main__":
    write(build(), __file__)
