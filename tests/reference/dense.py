"""Independent brute-force references (NumPy + itertools only; no quasispecies kernels)."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import logsumexp


def dense_arrays(mdp):
    """(P, R, pi0) as dense (S,A,S), (S,A,S), (S,A) NumPy arrays, built from the MDP's lists."""
    S, A = mdp.num_states, mdp.num_actions
    P = np.zeros((S, A, S))
    R = np.full((S, A, S), -np.inf)
    for s, a, b in itertools.product(range(S), range(A), range(mdp.num_successors)):
        p = mdp.prob[s, a, b]
        if p > 0:
            s2 = mdp.next_state[s, a, b]
            P[s, a, s2] += p
            R[s, a, s2] = mdp.reward[s, a, b]
    return P, R, mdp.pi0


def all_paths(P, R, pi0, x0, H):
    """Every path with positive weight, in lexicographic (s0, a0, s1, a1, ...) order.

    Returns (states (N, H+1), actions (N, H), log prior (N,), G (N,)), where the log prior
    is log x0(s0) + sum log K (K = pi0 P) and G the total reward.
    """
    S, A, _ = P.shape
    states, actions, lps, Gs = [], [], [], []
    for s0 in range(S):
        if x0[s0] <= 0:
            continue
        for steps in itertools.product(range(A), range(S), repeat=H) if H else [()]:
            s, lp, G, ok = s0, np.log(x0[s0]), 0.0, True
            path = [s0]
            for t in range(H):
                a, s2 = steps[2 * t], steps[2 * t + 1]
                k = pi0[s, a] * P[s, a, s2]
                if k <= 0 or not np.isfinite(R[s, a, s2]):
                    ok = False
                    break
                lp += np.log(k)
                G += R[s, a, s2]
                s = s2
                path.append(s2)
            if ok:
                states.append(path)
                actions.append([steps[2 * t] for t in range(H)])
                lps.append(lp)
                Gs.append(G)
    n = len(states)
    return (
        np.array(states, dtype=int).reshape(n, H + 1),
        np.array(actions, dtype=int).reshape(n, H),
        np.array(lps),
        np.array(Gs),
    )


def path_log_weights(P, R, pi0, x0, T, H):
    """Every path s0 a0 s1 ... s_H with positive weight: (final state, log prior, G).

    The path's log weight at T > 0 is log prior + G / T; G = total reward.
    """
    states, _, logk, G = all_paths(P, R, pi0, x0, H)
    return states[:, -1], logk, G


def scaled_log_population(P, R, pi0, x0, T, H):
    """u_H(s) = T log sum_{paths -> s} x0 prod K exp(G/T); at T = 0 max G; -inf if none."""
    S = P.shape[0]
    end, logk, G = path_log_weights(P, R, pi0, x0, T, H)
    u = np.full(S, -np.inf)
    for s in range(S):
        sel = end == s
        if not sel.any():
            continue
        if T == 0:
            u[s] = G[sel].max()
        else:
            u[s] = T * logsumexp(logk[sel] + G[sel] / T)
    return u


def population_limit_T0(P, R, pi0, x0, H):
    """x_H at T -> 0+: mass on the end states of the best paths, by their kernel weight."""
    S = P.shape[0]
    end, logk, G = path_log_weights(P, R, pi0, x0, 0.0, H)
    best = G.max()
    tie = np.abs(G - best) <= 1e-12 * (1 + abs(best))
    w = np.zeros(S)
    np.add.at(w, end[tie], np.exp(logk[tie]))
    return w / w.sum()


def replication_matrix(P, R, pi0, T):
    """Dense W_T[s, s'] = sum_a pi0 P exp(R/T) (T > 0)."""
    with np.errstate(over="ignore"):
        F = np.where(np.isfinite(R), np.exp(np.where(np.isfinite(R), R, 0.0) / T), 0.0)
    return np.einsum("sa,sat,sat->st", pi0, P, F)


def perron_left(W):
    """Perron root (numpy.linalg.eigvals) and left Perron vector (null space by SVD).

    The vector comes from the SVD of ``W^T - rho I`` rather than from ``eig``: LAPACK's
    geev balances internally, which for badly scaled ``W`` (entries ``exp(+-60)``) can
    return an eigenvector with a 1e-4 residual.
    """
    rho = float(np.max(np.linalg.eigvals(W).real))
    _, _, Vt = np.linalg.svd(W.T - rho * np.eye(W.shape[0]))
    v = np.abs(Vt[-1])
    return rho, v / v.sum()


# ------------------------------------------------------------- RL (dense Bellman loops)
def bellman_values(mdp, H, discount=1.0):
    """V*_0 after H expected Bellman backups from V = 0, by plain loops over dense arrays;
    -inf for dead ends (an outcome of positive probability with no path)."""
    P, R, pi0 = dense_arrays(mdp)
    S, A, _ = P.shape
    V = np.zeros(S)
    for _ in range(H):
        Q = np.full((S, A), -np.inf)
        for s in range(S):
            for a in range(A):
                if pi0[s, a] <= 0 or P[s, a].sum() == 0:
                    continue
                tot = 0.0
                for s2 in range(S):
                    if P[s, a, s2] > 0:
                        if not np.isfinite(R[s, a, s2]) or not np.isfinite(V[s2]):
                            tot = -np.inf
                            break
                        tot += P[s, a, s2] * (R[s, a, s2] + discount * V[s2])
                Q[s, a] = tot
        V = Q.max(axis=1)
    return V


def soft_values(mdp, T, H, form):
    """V_0 of H soft backups (form "expectation" or "path_integral"), soft max over actions
    weighted by pi0; at T = 0 the maxima. Plain loops and scipy's logsumexp."""
    P, R, pi0 = dense_arrays(mdp)
    S, A, _ = P.shape
    V = np.zeros(S)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(H):
            Q = np.full((S, A), -np.inf)
            for s in range(S):
                for a in range(A):
                    sup = P[s, a] > 0
                    if pi0[s, a] <= 0 or not sup.any():
                        continue
                    x = R[s, a, sup] + V[sup]
                    if form == "expectation":
                        Q[s, a] = P[s, a, sup] @ x if np.isfinite(x).all() else -np.inf
                    else:
                        Q[s, a] = x.max() if T == 0 else T * logsumexp(x / T, b=P[s, a, sup])
            ok = pi0 > 0
            if T == 0:
                V = np.where(ok, Q, -np.inf).max(axis=1)
            else:
                V = np.array([T * logsumexp(Q[s][ok[s]] / T, b=pi0[s][ok[s]]) for s in range(S)])
    return V


def value_iteration(mdp, g, n=3000):
    """n discounted expected Bellman backups from V = 0 (-inf on states with no action):
    exact to float64 rounding once g^n is negligible."""
    P, R, _ = dense_arrays(mdp)
    Rf = np.where(P > 0, R, 0.0)
    V = np.where(mdp.allowed.any(axis=1), 0.0, -np.inf)
    ok = mdp.allowed
    for _ in range(n):
        dead = ((P > 0) & np.isneginf(V)[None, None, :]).any(axis=2)
        Vf = np.where(np.isfinite(V), V, 0.0)
        Q = (P * (Rf + g * Vf[None, None, :])).sum(axis=2)
        V = np.where(ok & ~dead, Q, -np.inf).max(axis=1)
    return V
