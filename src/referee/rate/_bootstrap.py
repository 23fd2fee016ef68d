"""Multinomial bootstrap of Bradley-Terry strengths, all replicates fitted at once."""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

from ._bt import _objective, fit_pairs, hessian
from ._graph import Pairs

# Memory for the stacked Hessians of one chunk of replicates.
_CHUNK_BYTES = 256 * 2**20
# Above this many systems a batch of dense Hessians no longer pays; refit one by one.
_BATCH_MAX_SYSTEMS = 400
_MAX_STEP = 3.0  # natural units: keeps a replicate whose MLE does not exist from exploding in one step
# Largest gradient entry (per unit of total weight) at which a one-by-one refit counts as converged;
# L-BFGS is asked for 1e-10, so this only catches fits that stopped short.
_GRAD_TOL = 1e-6


def unique_rows(pairs: Pairs, o: np.ndarray, w: np.ndarray):
    """Collapse verdicts to unique (pair, outcome, weight) rows.

    Resampling must keep each verdict's own outcome: resampling only the pair
    totals would drop the within-pair spread of outcomes, which is most of the
    noise. With discrete outcomes (win/tie/loss) there are at most three rows per
    pair, so millions of verdicts reduce to a few thousand rows.

    Returns
    -------
    tuple
        ``(row_pair, row_wo, row_w, row_count)``.
    """
    oo = np.where(pairs.flipped, 1.0 - o, o)
    order = np.lexsort((w, oo, pairs.inverse))
    pi, oi, wi = pairs.inverse[order], oo[order], w[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (pi[1:] != pi[:-1]) | (oi[1:] != oi[:-1]) | (wi[1:] != wi[:-1])
    starts = np.flatnonzero(new)
    count = np.diff(np.append(starts, len(order))).astype(np.float64)
    return pi[starts], wi[starts] * oi[starts], wi[starts], count


def resample_pairs(pairs: Pairs, o, w, n_boot: int, rng: np.random.Generator):
    """Draw ``n_boot`` multinomial resamples of the verdicts, summed per pair.

    Returns
    -------
    tuple
        ``(wins, count)``, each ``(n_boot, n_pairs)``.
    """
    row_pair, row_wo, row_w, row_count = unique_rows(pairs, o, w)
    n_rows, n_pairs, total = len(row_pair), len(pairs.a), int(row_count.sum())
    if n_rows * 2 > total:
        # Soft outcomes barely compress; drawing verdict indices is the same multinomial and
        # ~3x cheaper than numpy's per-category binomial draws.
        oo = np.where(pairs.flipped, 1.0 - o, o)
        wo = w * oo
        unit = bool(np.all(w == 1.0))
        inv = pairs.inverse.astype(np.int64)
        wins = np.empty((n_boot, n_pairs))
        count = np.empty((n_boot, n_pairs))
        step = max(1, (8 * 2**20) // max(total, 1))
        for s0 in range(0, n_boot, step):
            m = min(step, n_boot - s0)
            idx = rng.integers(0, total, size=(m, total), dtype=np.int32 if total < 2**31 else np.int64)
            key = inv[idx]
            key += (np.arange(m, dtype=np.int64) * n_pairs)[:, None]
            key = key.ravel()
            idx = idx.ravel()
            size = m * n_pairs
            c = np.bincount(key, minlength=size) if unit else np.bincount(key, weights=w[idx], minlength=size)
            count[s0:s0 + m] = c.reshape(m, n_pairs)
            wins[s0:s0 + m] = np.bincount(key, weights=wo[idx], minlength=size).reshape(m, n_pairs)
        return wins, count
    k = rng.multinomial(total, row_count / row_count.sum(), size=n_boot).astype(np.float64)
    to_pair_w = coo_matrix((row_w, (np.arange(n_rows), row_pair)), shape=(n_rows, n_pairs)).tocsc()
    to_pair_wo = coo_matrix((row_wo, (np.arange(n_rows), row_pair)), shape=(n_rows, n_pairs)).tocsc()
    count = np.asarray((to_pair_w.T @ k.T).T)
    wins = np.asarray((to_pair_wo.T @ k.T).T)
    return wins, count


def newton_batch(a, b, wins, count, n_systems, theta0, reg=0.0, tol=1e-9, max_iter=50, H0=None,
                 chord_iter=15):
    """Fit many Bradley-Terry problems that share one pair list, by batched Newton.

    First come chord steps: every replicate uses the full-data Hessian ``H0``,
    factorised once, so a step costs two sparse products and one triangular solve
    with all replicates as right-hand sides. Replicates are perturbations of the
    full data, so these converge linearly at a fast rate. Replicates that have not
    converged after ``chord_iter`` steps get exact Newton steps: their Hessians are
    weighted graph Laplacians over the same pairs, built with one scatter and
    solved with one batched LAPACK call.

    Returns
    -------
    tuple
        ``(theta, converged)`` with ``theta`` of shape ``(n_boot, n_systems)``.
    """
    n_boot = wins.shape[0]
    n = n_systems
    theta = np.broadcast_to(theta0, (n_boot, n)).copy()
    converged = np.zeros(n_boot, dtype=bool)
    p_idx = np.arange(len(a))
    inc = coo_matrix((np.concatenate([np.ones(len(a)), -np.ones(len(a))]),
                      (np.concatenate([p_idx, p_idx]), np.concatenate([a, b]))), shape=(len(a), n)).tocsr()
    absinc = abs(inc)
    off_ab = a * n + b
    off_ba = b * n + a
    # A system left without comparisons in a resample has a flat likelihood; the tiny
    # ridge keeps its Hessian invertible (it then stays at the full-data estimate).
    ridge = reg + 1e-10 * max(1.0, float(count.sum(axis=1).mean()))
    active = np.arange(n_boot)
    if H0 is not None and chord_iter > 0:
        factor = cho_factor(H0 + ridge * np.eye(n))
        # Pair-major layout: D = inc @ theta.T is a sparse product, far cheaper than gathering
        # theta[:, a] - theta[:, b] across rows.
        winsT, countT = np.ascontiguousarray(wins.T), np.ascontiguousarray(count.T)
        thT = np.ascontiguousarray(theta.T)
        incT = inc.T.tocsr()
        for _ in range(chord_iter):
            r = winsT - countT * expit(inc @ thT)
            g = -(incT @ r) + reg * thT + thT.sum(axis=0, keepdims=True)
            step = cho_solve(factor, g)
            big = np.max(np.abs(step), axis=0)
            step *= np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-300))[None, :]
            thT -= step
            if big.max() < tol:
                break
        theta = np.ascontiguousarray(thT.T)
        done = big < tol
        converged[done] = True
        active = np.flatnonzero(~done)
    for _ in range(max_iter):
        if len(active) == 0:
            break
        th = theta[active]
        d = th[:, a] - th[:, b]
        pr = expit(d)
        r = wins[active] - count[active] * pr
        h = count[active] * pr * (1.0 - pr)
        s = th.sum(axis=1, keepdims=True)
        g = -np.asarray((inc.T @ r.T).T) + reg * th + s
        H = np.zeros((len(active), n * n))
        H[:, off_ab] = -h
        H[:, off_ba] = -h
        H = H.reshape(len(active), n, n)
        diag = np.asarray((absinc.T @ h.T).T)
        H[:, np.arange(n), np.arange(n)] = diag + ridge
        H += 1.0
        step = np.linalg.solve(H, g[..., None])[..., 0]
        big = np.max(np.abs(step), axis=1)
        step *= np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-300))[:, None]
        theta[active] = th - step
        done = big < tol
        converged[active[done]] = True
        active = active[~done]
    return theta - theta.mean(axis=1, keepdims=True), converged


def resample_clusters(pairs: Pairs, o, w, cluster, n_boot: int, rng: np.random.Generator):
    """Like :func:`resample_pairs`, but draws whole clusters (e.g., prompts) with replacement.

    Verdicts about one prompt share its difficulty and quirks; resampling them one by
    one would treat them as independent and understate the uncertainty.
    """
    oo = np.where(pairs.flipped, 1.0 - o, o)
    _, cl = np.unique(np.asarray(cluster), return_inverse=True)
    n_cl, n_pairs = int(cl.max()) + 1, len(pairs.a)
    per_w = coo_matrix((w, (cl, pairs.inverse)), shape=(n_cl, n_pairs)).tocsc()
    per_wo = coo_matrix((w * oo, (cl, pairs.inverse)), shape=(n_cl, n_pairs)).tocsc()
    k = rng.multinomial(n_cl, np.full(n_cl, 1.0 / n_cl), size=n_boot).astype(np.float64)
    return np.asarray((per_wo.T @ k.T).T), np.asarray((per_w.T @ k.T).T)


def mle_exists(a, b, wins, count, n_systems: int) -> np.ndarray:
    """Whether the maximum-likelihood strengths (no prior) of each row of pair sums exist and are unique.

    ``wins`` and ``count`` are ``(n_rows, n_pairs)`` sums over the pairs ``(a, b)``. A row fails when
    a system has no comparison, the comparison graph falls apart (the parts share no scale), or the
    "took a win from" graph is not strongly connected (some group never lost, or never won, against
    the rest, and its lead diverges): the conditions :func:`~referee.rate._graph.check_rateable`
    checks on the full data.

    Returns
    -------
    numpy.ndarray
        One bool per row.
    """
    wins = np.atleast_2d(np.asarray(wins, dtype=np.float64))
    count = np.atleast_2d(np.asarray(count, dtype=np.float64))
    eps = 1e-12 * max(1.0, float(count.max(initial=0.0)))
    took = wins > eps
    gave = (count - wins) > eps
    ok = np.ones(len(wins), dtype=bool)
    seen: dict[bytes, bool] = {}
    for r in range(len(wins)):
        # Replicates often repeat an edge pattern (most often the full data's): decide each once.
        key = np.packbits(np.concatenate([took[r], gave[r]])).tobytes()
        if key not in seen:
            src = np.concatenate([a[took[r]], b[gave[r]]])
            dst = np.concatenate([b[took[r]], a[gave[r]]])
            g = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n_systems, n_systems))
            seen[key] = n_systems == 1 or connected_components(g, directed=True, connection="strong")[0] == 1
        ok[r] = seen[key]
    return ok


def bootstrap_thetas(pairs: Pairs, o, w, theta_hat, n_boot: int, seed, reg: float = 0.0, cluster=None):
    """Natural-scale strengths of ``n_boot`` multinomial bootstrap replicates, and which of them failed.

    With ``cluster`` whole clusters are resampled instead of single verdicts. A replicate fails when
    its fit did not converge or (with ``reg == 0``) its maximum-likelihood estimate does not exist
    (:func:`mle_exists`: in the resample some system never lost, never won, or was never compared).
    A failed replicate's strengths are wherever the iterations stopped, far out or arbitrary: they
    are no draw of the estimate's sampling distribution and must not enter percentiles.

    Returns
    -------
    tuple
        ``(thetas, failed)``: ``(n_boot, n_systems)`` array and one bool per replicate.
    """
    rng = np.random.default_rng(seed)
    n = pairs.n_systems
    if cluster is None:
        wins, count = resample_pairs(pairs, o, w, n_boot, rng)
    else:
        wins, count = resample_clusters(pairs, o, w, cluster, n_boot, rng)
    exists = mle_exists(pairs.a, pairs.b, wins, count, n) if reg == 0 else np.ones(n_boot, dtype=bool)
    if n > _BATCH_MAX_SYSTEMS:
        out = np.empty((n_boot, n))
        ok = np.zeros(n_boot, dtype=bool)
        for i in range(n_boot):
            rep = Pairs(n, pairs.a, pairs.b, wins[i], count[i], count[i], wins[i], wins[i],
                        pairs.inverse, pairs.flipped, pairs.n_verdicts)
            out[i] = fit_pairs(rep, reg=reg + 1e-10, theta0=theta_hat)
            # fit_pairs has no convergence flag; the gradient at its answer is one.
            _, g = _objective(out[i], rep, reg + 1e-10, max(float(rep.count.sum()), 1e-300))
            ok[i] = bool(np.all(np.isfinite(out[i]))) and float(np.max(np.abs(g))) < _GRAD_TOL
        return out, ~(ok & exists)
    chunk = max(1, _CHUNK_BYTES // (8 * n * n * 2))
    H0 = hessian(pairs, theta_hat, reg)
    thetas, ok = [], []
    for s in range(0, n_boot, chunk):
        t, c = newton_batch(pairs.a, pairs.b, wins[s:s + chunk], count[s:s + chunk], n, theta_hat, reg=reg, H0=H0)
        thetas.append(t)
        ok.append(c)
    return np.concatenate(thetas), ~(np.concatenate(ok) & exists)
