"""Bradley–Terry of the round-robin that was not run: comparisons chosen from earlier verdicts on a prompt."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, logit

from ..errors import RatingError
from ._bt import bradley_terry
from ._graph import aggregate, check_inputs, check_rateable
from ._threads import single_thread_blas

# Soft verdicts are read on the log-odds scale; a verdict of exactly 0 or 1 would be infinite there.
_EPS = 0.02


def completed_bradley_terry(prompt_idx, a_idx, b_idx, outcome, n_systems, *, anchor=None, scale=400.0,
                            base=1000.0, reg=0.0, max_iter=500, tol=1e-6, details=False):
    """Bradley–Terry ratings of the full round-robin on the judged prompts, predicted from any subset.

    Plain Bradley–Terry treats every verdict as independent. When the comparisons asked for on
    a prompt depend on earlier verdicts on that same prompt (a single-elimination bracket: only
    winners meet again), that is wrong: a system that won on a prompt is likely good *on that
    prompt*, so later matches pit prompt-selected systems against each other and systems whose
    quality varies most from prompt to prompt are over-rated (on a simulated 16-system panel, up
    to 0.23 log-odds; Spearman against full round-robin 0.93–0.95 from a full bracket on all 805
    prompts). Which verdicts exist depends only on verdicts already seen, so they are missing at
    random: a model of how verdicts on one prompt go together makes the choice ignorable, and
    unseen verdicts can be predicted rather than ignored.

    The model, on the log-odds of the soft verdicts: ``logit(y) = (t_a + d_ap) - (t_b + d_bp) + e``,
    with a system's deviation on a prompt ``d_ap ~ N(0, s_a)`` (its own spread) and judge noise
    ``e ~ N(0, v)``. ``t``, ``s`` and ``v`` are fitted by maximum likelihood (EM; each prompt's
    deviations have a Gaussian posterior in closed form). Every pair on every judged prompt then
    gets its verdict: the observed one (averaged if asked several times), else its predicted
    mean; ratings are plain Bradley–Terry on these completed means. A complete round-robin is
    returned unchanged (no verdict is predicted), so this only corrects designs that skip pairs.

    Meant for soft verdicts (probabilities). On 0/1 verdicts the log-odds carry little, the
    fitted noise is large and the result moves towards plain Bradley–Terry's with worse fits.

    Parameters
    ----------
    prompt_idx : array_like
        Index of the prompt of each comparison (any non-negative integers).
    a_idx, b_idx, outcome, n_systems, anchor, scale, base, reg
        As :func:`bradley_terry`; ``reg`` applies to the final fit.
    max_iter, tol : optional
        EM stops after ``max_iter`` steps or when no strength (natural scale) moves by ``tol``.
    details : bool, optional
        Also return a dict with ``strengths`` (natural scale, mean 0), ``prompt_sd`` (each
        system's fitted spread over prompts), ``noise_sd`` and ``iterations``.

    Raises
    ------
    RatingError
        As :func:`bradley_terry`: a system without comparisons, a disconnected graph.
    """
    a, b, o, p = _check(prompt_idx, a_idx, b_idx, outcome, n_systems, reg)
    with single_thread_blas():
        means, (theta, s, v, it) = _completed_means(p, a, b, o, n_systems, max_iter, tol)
    I, J = np.triu_indices(n_systems, 1)
    ratings = bradley_terry(I, J, means, n_systems, weight=np.full(len(I), float(p.max() + 1)), anchor=anchor,
                            scale=scale, base=base, reg=reg)
    if not details:
        return ratings
    return ratings, {"strengths": theta - theta.mean(), "prompt_sd": np.sqrt(s), "noise_sd": math.sqrt(v),
                     "iterations": it}


def completed_bootstrap(prompt_idx, a_idx, b_idx, outcome, n_systems, *, n_boot=1000, seed=0, reg=0.0,
                        max_iter=500, tol=1e-4):
    """Natural-scale strengths (mean 0) of :func:`completed_bradley_terry` on ``n_boot`` resamples of
    whole prompts (a prompt drawn twice counts as two prompts); each refit starts from the full fit
    and stops when no strength moves by ``tol`` (1e-4 log-odds is 0.02 rating points).

    Returns
    -------
    numpy.ndarray
        ``(n_boot, n_systems)`` replicates.
    """
    a, b, o, p = _check(prompt_idx, a_idx, b_idx, outcome, n_systems, reg)
    P = int(p.max()) + 1
    rows = [np.flatnonzero(p == k) for k in range(P)]
    rng = np.random.default_rng(seed)
    I, J = np.triu_indices(n_systems, 1)
    out = np.empty((n_boot, n_systems))
    with single_thread_blas():
        _, init = _completed_means(p, a, b, o, n_systems, max_iter, tol)
        for r in range(n_boot):
            draw = rng.integers(0, P, P)
            idx = np.concatenate([rows[k] for k in draw])
            pp = np.repeat(np.arange(P), [len(rows[k]) for k in draw])
            means, _ = _completed_means(pp, a[idx], b[idx], o[idx], n_systems, max_iter, tol, init[:3])
            th = np.asarray(bradley_terry(I, J, means, n_systems, weight=np.full(len(I), float(P)),
                                          scale=math.log(10.0), base=0.0, reg=reg))
            out[r] = th - th.mean()
    return out


def _check(prompt_idx, a_idx, b_idx, outcome, n_systems, reg):
    a, b, o, w = check_inputs(a_idx, b_idx, outcome, n_systems)
    pairs = aggregate(a, b, o, w, n_systems)
    check_rateable(pairs, reg=reg, constant_outcome=float(o[0]) if np.ptp(o) == 0 else None)
    p_raw = np.asarray(prompt_idx).astype(np.int64).ravel()
    if p_raw.shape != a.shape or (p_raw.size and p_raw.min() < 0):
        raise RatingError("prompt_idx must hold one non-negative index per comparison")
    return a, b, o, np.unique(p_raw, return_inverse=True)[1]


def _completed_means(p, a, b, o, n, max_iter, tol, init=None):
    """Per-pair (a < b) mean verdict over the prompts ``0..max(p)``, observed or predicted; and the EM fit."""
    P = int(p.max()) + 1
    theta, s, v, M, V, it = _em(p, a, b, logit(np.clip(o, _EPS, 1 - _EPS)), n, P, max_iter, tol, init)
    I, J = np.triu_indices(n, 1)
    pair = np.full((n, n), -1, dtype=np.int64)
    pair[I, J] = pair[J, I] = np.arange(len(I))
    mu = theta[I] - theta[J] + M[:, I] - M[:, J]
    var = V[:, I, I] + V[:, J, J] - 2 * V[:, I, J] + v
    # E[sigmoid(x)] for x ~ N(mu, var), by the probit approximation.
    full = expit(mu / np.sqrt(1 + math.pi * var / 8))
    k = pair[a, b]
    y = np.where(a < b, o, 1.0 - o)
    tot, cnt = np.zeros_like(full), np.zeros_like(full)
    np.add.at(tot, (p, k), y)
    np.add.at(cnt, (p, k), 1.0)
    seen = cnt > 0
    full[seen] = tot[seen] / cnt[seen]
    return full.mean(axis=0), (theta, s, v, it)


def _em(p, a, b, l, n, P, max_iter, tol, init=None):
    """EM for ``l = x'(t + d_p) + e``: strengths t, spreads s, noise v, per-prompt posteriors (M, V).

    Plain EM crawls here (hundreds of steps when one system's spread dwarfs the others'), so
    steps are extrapolated by SQUAREM (Varadhan & Roland 2008) on (t, log s, log v); a step
    that leaves the finite range falls back to two plain EM steps.
    """
    A = np.zeros((P, n, n))  # per-prompt Laplacian of the comparisons asked
    np.add.at(A, (p, a, a), 1.0)
    np.add.at(A, (p, b, b), 1.0)
    np.add.at(A, (p, a, b), -1.0)
    np.add.at(A, (p, b, a), -1.0)
    # +1 everywhere: the strengths are fixed up to a constant; this picks the sum-zero solution.
    solve = np.linalg.inv(A.sum(axis=0) + 1.0)
    eye = np.eye(n)

    def step(x):
        theta, s, v = x[:n], np.exp(x[n:2 * n]), float(np.exp(x[-1]))
        r = l - theta[a] + theta[b]
        rhs = np.zeros((P, n))
        np.add.at(rhs, (p, a), r)
        np.add.at(rhs, (p, b), -r)
        V = np.linalg.inv(A / v + eye / s)
        M = np.einsum("pij,pj->pi", V, rhs / v)
        dm = M[p, a] - M[p, b]
        dv = V[p, a, a] + V[p, b, b] - 2 * V[p, a, b]
        z = l - dm
        g = np.zeros(n)
        np.add.at(g, a, z)
        np.add.at(g, b, -z)
        new = solve @ g
        res = z - new[a] + new[b]
        s = np.maximum((M ** 2 + np.einsum("pii->pi", V)).mean(axis=0), 1e-6)
        v = max(float(np.mean(res ** 2 + dv)), 1e-6)
        return np.concatenate([new, np.log(s), [np.log(v)]]), M, V

    x = (np.zeros(2 * n + 1) if init is None
         else np.concatenate([init[0], np.log(init[1]), [np.log(init[2])]]))
    it = 0
    while it < max_iter:
        x1, _, _ = step(x)
        x2, M, V = step(x1)
        it += 2
        r, d = x1 - x, x2 - 2 * x1 + x
        nd = float(np.linalg.norm(d))
        new = x2
        if nd > 0:
            alpha = min(-float(np.linalg.norm(r)) / nd, -1.0)
            try:
                with np.errstate(all="ignore"):
                    cand, M3, V3 = step(x - 2 * alpha * r + alpha * alpha * d)
                it += 1
                if np.all(np.isfinite(cand)) and np.all(np.isfinite(M3)):
                    new, M, V = cand, M3, V3
            except np.linalg.LinAlgError:
                pass
        moved = float(np.max(np.abs(new[:n] - x[:n])))
        x = new
        if moved < tol:
            break
    return x[:n], np.exp(x[n:2 * n]), float(np.exp(x[-1])), M, V, it


def rate_completed(systems, prompt_idx, a_idx, b_idx, outcome, *, n_boot=1000, seed=0, level=0.95, scale=400.0,
                   base=1000.0, reg=0.0):
    """:func:`rate_pairwise`'s table for comparisons chosen from earlier verdicts on the same prompt.

    Ratings from :func:`completed_bradley_terry`, percentile intervals and rank ranges from
    :func:`completed_bootstrap` (whole prompts resampled); verdict counts and win rates as
    observed. Use it for single-elimination brackets, where plain Bradley–Terry is biased.
    ``reg`` is the Gaussian prior of :func:`rate_pairwise`, applied to every fit.

    Raises
    ------
    RatingError
        As :func:`rate_pairwise`.
    """
    from dataclasses import replace

    from ._bt import to_rating
    from ._table import _percentiles, cluster_note, rank_ranges_from_replicates, rate_pairwise

    if n_boot < 2:
        raise RatingError("the bootstrap needs n_boot >= 2")
    table = rate_pairwise(systems, a_idx, b_idx, outcome, ci="none", level=level, scale=scale, base=base, reg=reg)
    n = len(table.systems)
    rating = completed_bradley_terry(prompt_idx, a_idx, b_idx, outcome, n, scale=scale, base=base, reg=reg)
    reps = to_rating(completed_bootstrap(prompt_idx, a_idx, b_idx, outcome, n, n_boot=n_boot, seed=seed, reg=reg),
                     None, scale, base)
    lower, upper = _percentiles(reps, 1.0 - level)
    rank_min, rank_max = rank_ranges_from_replicates(reps, level, rating)
    notes = [*table.notes, "ratings of the full round-robin on the judged prompts, predicted from comparisons "
             "chosen by earlier verdicts (per-prompt system effects; completed_bradley_terry)"]
    few = cluster_note(prompt_idx)
    if few:
        notes.append(few)
    return replace(table, rating=np.asarray(rating), lower=lower, upper=upper, rank_min=rank_min,
                   rank_max=rank_max, se=reps.std(axis=0, ddof=1), ci="bootstrap", n_boot=n_boot, seed=seed,
                   clustered=True, n_clusters=len(np.unique(np.asarray(prompt_idx))), replicates=reps, notes=notes)
