"""Best-of-n: one candidate among n from pairwise probabilities, with P(it is the best)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BestOfN:
    """``pick`` is the index with the highest strength; ``p_best[c]`` = P(candidate c is the best)."""

    pick: int
    p_best: np.ndarray
    strength: np.ndarray
    sd: np.ndarray


def pairwise_strengths(n: int, i: np.ndarray, j: np.ndarray, p: np.ndarray, *, prior_sd: float = 2.0,
                       max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Bradley–Terry strengths (log-odds scale) with a N(0, prior_sd²) prior, and their Laplace covariance.

    ``p[r]`` is P(candidate ``i[r]`` beats ``j[r]``) (soft outcomes allowed). The prior keeps every
    strength finite, also for a candidate that won every comparison, and a candidate never compared
    stays at 0 with the prior's spread.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    s = np.zeros(n)
    prec = 1.0 / prior_sd ** 2
    h = np.eye(n) * prec
    for _ in range(max_iter):
        d = s[i] - s[j]
        sig = 1.0 / (1.0 + np.exp(-d))
        r = p - sig
        g = np.zeros(n)
        np.add.at(g, i, r)
        np.add.at(g, j, -r)
        g -= prec * s
        w = sig * (1 - sig)
        h = np.eye(n) * prec
        np.add.at(h, (i, i), w)
        np.add.at(h, (j, j), w)
        np.add.at(h, (i, j), -w)
        np.add.at(h, (j, i), -w)
        step = np.linalg.solve(h, g)
        s += step
        if np.max(np.abs(step)) < 1e-9:
            break
    return s, np.linalg.inv(h)


def best_of_n(n: int, i: np.ndarray, j: np.ndarray, p: np.ndarray, *, prior_sd: float = 2.0,
              n_draws: int = 4000, seed: int = 0) -> BestOfN:
    """Pick the best of ``n`` candidates from pairwise probabilities.

    Strengths come from :func:`pairwise_strengths`; P(best) is the share of draws from the Laplace
    posterior in which each candidate has the highest strength (seeded: same inputs, same numbers).
    """
    if n < 1:
        raise ValueError("best_of_n needs at least one candidate")
    s, cov = pairwise_strengths(n, i, j, p, prior_sd=prior_sd)
    if n == 1:
        return BestOfN(pick=0, p_best=np.ones(1), strength=s, sd=np.sqrt(np.diag(cov)))
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(n))
    draws = s + rng.standard_normal((n_draws, n)) @ chol.T
    wins = np.bincount(np.argmax(draws, axis=1), minlength=n)
    return BestOfN(pick=int(np.argmax(s)), p_best=wins / n_draws, strength=s, sd=np.sqrt(np.diag(cov)))
