"""Label models: verifier accuracies without labels, and one probability per item.

Votes are ``+1`` (a better / positive), ``-1`` (b better / negative) and ``0`` (tie or no verdict:
an abstention). The hidden truth ``y`` is binary. Two estimators:

- **triplet** (method of moments): under conditional independence, for verifiers with symmetric
  accuracy ``acc_j``, ``E[v_i v_j] = a_i a_j`` with ``a = 2 acc - 1``; so
  ``|a_i| = sqrt(M_ij M_ik / M_jk)`` for any two others ``j, k``. The median over triplets is used.
- **Dawid–Skene** EM: a sensitivity ``P(v=+1 | y=+1)`` and a specificity ``P(v=-1 | y=-1)`` per
  verifier and a class prior, fitted by expectation–maximisation from a triplet (or vote) start,
  with a Beta(2, 2)-like smoothing so that a verifier that is always right still gets a finite weight.

**Orientation.** A pair has no natural orientation: which system is ``a`` is an accident of the input
(the system listed or seen first). A class prior and a sensitivity different from the specificity, both
defined relative to that orientation, learn the accident: with the stronger system usually listed first
the prior says "a wins 69%", and an item every verifier called a tie then gets 0.69. With
``symmetric=True`` the model is the one fitted to both orientations of every item (each item and its
mirror image, a and b swapped): the prior is 1/2 and each answer category has one likelihood shared
with its mirror image (sensitivity = specificity per verifier), so the likelihood is unchanged when any
item is flipped and the flipped item's posterior is exactly ``1 - p``. Moments are then uncentred: over
both orientations every vote has mean 0, and the Pearson correlation of two verifiers is the mean of
``v_i v_j``. The asymmetric model (``symmetric=False``) is for items with a meaningful positive class,
e.g. pass/fail checks of single outputs, where a prior and a one-sided bias are real and identifiable.

Both assume conditional independence given ``y``; verifiers that share their errors (several length
heuristics) break it and, counted separately, outvote better ones. :func:`unit_scores`,
:func:`unit_codes` and :func:`dawid_skene_units` let such a family enter as one *unit* with one
categorical answer (its members' mean verdict, optionally at several confidence levels a side),
independence assumed only between units: no assumption is made about how the members' errors relate.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

_EPS = 1e-4
# A judge whose estimated correlation with the truth is below this carries too little signal to
# anchor another judge's estimate (triplet partners) or to be combined (the screen's "near chance").
NEAR_CHANCE = 0.08


def agreement_moments(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``M[i, j]`` = mean of ``v_i v_j`` over items both voted on, and ``N[i, j]`` = how many such items."""
    nz = (v != 0).astype(np.float64)
    vf = v.astype(np.float64)
    n = nz.T @ nz
    s = vf.T @ vf
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return m, n


def triplet_signal(v: np.ndarray, *, min_overlap: int = 10, exclude: dict[int, set[int]] | None = None) -> np.ndarray:
    """``a_j = 2 acc_j - 1`` for every verifier by the triplet method (``NaN`` where no triplet applies).

    Signs: each ``a_j`` is taken positive (verifiers better than chance) unless the verifier
    agrees negatively with the majority of the others, in which case it is an adversarial verifier
    and its ``a`` is negative.

    Args:
        v: items x verifiers votes in {-1, 0, +1}.
        min_overlap: ignore verifier pairs that voted together on fewer items.
        exclude: for verifier ``i``, others not to use in its triplets (e.g. a suspected duplicate).
    """
    m, n = agreement_moments(v)
    k = v.shape[1]
    usable = (n >= min_overlap) & ~np.isnan(m)
    a = np.full(k, np.nan)
    for i in range(k):
        skip = (exclude or {}).get(i, set())
        ests = []
        others = [j for j in range(k) if j != i and j not in skip and usable[i, j]]
        for j, m2 in itertools.combinations(others, 2):
            if not usable[j, m2] or abs(m[j, m2]) < 1e-3:
                continue
            val = m[i, j] * m[i, m2] / m[j, m2]
            if val > 0:
                ests.append(math.sqrt(min(val, 1.0)))
            else:
                ests.append(0.0)
        if ests:
            mag = float(np.median(ests))
            row = [m[i, j] for j in others if not np.isnan(m[i, j])]
            sign = -1.0 if row and np.median(row) < 0 else 1.0
            a[i] = sign * mag
    return a


def correlation_moments(v: np.ndarray, *, min_overlap: int = 10, centred: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``R[i, j]``: Pearson correlation of the votes of ``i`` and ``j`` over the items both voted on
    (``NaN`` below ``min_overlap`` items or without variance), and ``N[i, j]``, the number of such items.

    Unlike the raw moments, correlations are not inflated by a skewed class balance or by verifiers
    that lean to one side: under conditional independence the off-diagonal of ``R`` is rank one,
    ``R[i, j] = rho_i rho_j`` with ``rho_i`` the correlation of verifier ``i`` with the truth.

    With ``centred=False`` the correlation is taken over both orientations of every item (each vote
    and its negation), where every vote has mean 0 and variance 1: ``R[i, j]`` is then the mean of
    ``v_i v_j``, which does not change when items are flipped. Under conditional independence and
    symmetric accuracies it is ``a_i a_j`` whatever the class balance.
    """
    k = v.shape[1]
    nz = v != 0
    r = np.full((k, k), np.nan)
    n = (nz.astype(np.int64).T @ nz.astype(np.int64))
    for i in range(k):
        for j in range(i, k):
            both = nz[:, i] & nz[:, j]
            if both.sum() < min_overlap:
                continue
            a, b = v[both, i].astype(np.float64), v[both, j].astype(np.float64)
            if not centred:
                r[i, j] = r[j, i] = float((a * b).mean())
                continue
            sa, sb = a.std(), b.std()
            if sa > 0 and sb > 0:
                r[i, j] = r[j, i] = float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))
    return r, n


def triplet_loadings(v: np.ndarray, *, min_overlap: int = 10, exclude: dict[int, set[int]] | None = None,
                     r: np.ndarray | None = None, weak_partner: float = NEAR_CHANCE) -> np.ndarray:
    """``rho_i`` = correlation of each verifier's votes with the hidden truth, by triplets of correlations:
    ``|rho_i| = sqrt(R_ij R_ik / R_jk)``, the median over usable ``(j, k)``. Negative for a verifier
    that correlates negatively with most others; ``NaN`` where no triplet applies. In two passes: the
    second uses only partners ``j, k`` whose first-pass ``|rho|`` is at least ``weak_partner``, for
    each verifier that has such a triplet."""
    if r is None:
        r, _ = correlation_moments(v, min_overlap=min_overlap)
    first = _loadings(r, exclude)
    # A triplet of i with a near-chance partner divides one noisy small correlation by another, and
    # its estimate is clipped to 0 whenever the noise flips a sign: two such triplets outvote the
    # one sound estimate of a good verifier. So the second pass uses partners the first found
    # informative, where at least one such triplet exists.
    return _loadings(r, exclude, partners=np.abs(np.nan_to_num(first)) >= weak_partner, fallback=first)


def _loadings(r: np.ndarray, exclude: dict[int, set[int]] | None, partners: np.ndarray | None = None,
              fallback: np.ndarray | None = None) -> np.ndarray:
    k = r.shape[0]
    rho = np.full(k, np.nan) if fallback is None else fallback.copy()
    for i in range(k):
        skip = (exclude or {}).get(i, set())
        others = [j for j in range(k) if j != i and j not in skip and not np.isnan(r[i, j])]
        ests = []
        for j, m2 in itertools.combinations(others, 2):
            if np.isnan(r[j, m2]) or abs(r[j, m2]) < 0.1:
                continue
            if partners is not None and not (partners[j] and partners[m2]):
                continue
            val = r[i, j] * r[i, m2] / r[j, m2]
            ests.append(math.sqrt(min(val, 1.0)) if val > 0 else 0.0)
        if ests:
            sign = -1.0 if np.median([r[i, j] for j in others]) < 0 else 1.0
            rho[i] = sign * float(np.median(ests))
    return rho


def _posterior(v: np.ndarray, log_prior_odds: float, w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
    """P(y=+1 | votes) with additive per-vote log-odds ``w_pos`` (vote +1) and ``w_neg`` (vote -1)."""
    lo = log_prior_odds + (v == 1) @ w_pos + (v == -1) @ w_neg
    return 1.0 / (1.0 + np.exp(-np.clip(lo, -35, 35)))


def symmetric_posterior(v: np.ndarray, acc: np.ndarray, prior: float = 0.5) -> np.ndarray:
    """Posterior under symmetric accuracies (a vote for a weighs ``log(acc / (1 - acc))``)."""
    acc = np.clip(acc, _EPS, 1 - _EPS)
    w = np.log(acc / (1 - acc))
    prior = min(max(prior, _EPS), 1 - _EPS)
    return _posterior(v, math.log(prior / (1 - prior)), w, -w)


def dawid_skene(v: np.ndarray, q0: np.ndarray, *, smoothing: float = 1.0, max_iter: int = 500,
                tol: float = 1e-7) -> dict:
    """Binary Dawid–Skene by EM from a start posterior ``q0`` (P(y=+1) per item).

    Returns a dict with ``q`` (posterior per item), ``sens``/``spec`` per verifier, ``prior``,
    ``iterations`` and ``converged``. ``smoothing`` adds pseudo-counts (half right, half wrong) to
    each verifier's counts, so no rate reaches exactly 0 or 1.
    """
    pos = (v == 1).astype(np.float64)
    neg = (v == -1).astype(np.float64)
    q = np.clip(np.asarray(q0, dtype=np.float64), 0.0, 1.0)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        prior = float(np.clip(q.mean(), 0.01, 0.99))
        qp, qn = q @ pos, q @ neg              # votes +1 / -1 on items believed positive
        rp, rn = (1 - q) @ pos, (1 - q) @ neg  # ... on items believed negative
        sens = (qp + smoothing) / (qp + qn + 2 * smoothing)
        spec = (rn + smoothing) / (rp + rn + 2 * smoothing)
        w_pos = np.log(sens / (1 - spec))
        w_neg = np.log((1 - sens) / spec)
        q_new = _posterior(v, math.log(prior / (1 - prior)), w_pos, w_neg)
        delta = float(np.max(np.abs(q_new - q))) if q.size else 0.0
        q = q_new
        if delta < tol:
            converged = True
            break
    prior = float(np.clip(q.mean(), 0.01, 0.99))
    return {"q": q, "sens": sens, "spec": spec, "prior": prior, "iterations": it, "converged": converged}


def unit_scores(x: np.ndarray, units: list[list[int]]) -> np.ndarray:
    """Signed score in [-1, 1] per item and unit: the mean of its members' ``2 p - 1`` over those that answered
    (``NaN`` where none did). A unit is one verifier, or a group whose errors are correlated: the label model
    then sees the group once, so its members cannot outvote an independent verifier by sheer number."""
    n = x.shape[0]
    s = np.full((n, len(units)), np.nan)
    for u, cols in enumerate(units):
        block = 2.0 * x[:, cols] - 1.0
        cnt = (~np.isnan(block)).sum(axis=1)
        tot = np.nansum(block, axis=1)
        s[:, u] = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
    return s


def unit_codes(s: np.ndarray, *, tie_band: float = 0.0, levels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Response categories of each unit: ``-1`` = abstain (missing, or within ``tie_band`` of a tie);
    ``0 .. levels-1`` = says b, ``levels .. 2 levels-1`` = says a, the level by quantile of ``|s|``
    among the unit's own non-tie answers (weakest first). Returns ``(codes, votes)`` with votes in {-1, 0, +1}.

    With ``levels > 1`` a soft output counts more when it is further from a tie, by as much as its
    own data say (the label model learns one likelihood ratio per category); a verifier whose outputs are
    all equally confident (binary) ends up with one populated level per side.
    """
    n, k = s.shape
    codes = np.full((n, k), -1, dtype=np.int64)
    votes = np.zeros((n, k), dtype=np.int8)
    for u in range(k):
        col = s[:, u]
        with np.errstate(invalid="ignore"):
            side = np.where(col > 2 * tie_band, 1, np.where(col < -2 * tie_band, -1, 0))
        side[np.isnan(col)] = 0
        votes[:, u] = side
        live = side != 0
        if not live.any():
            continue
        # Rounded so that p and 1 - p, which differ from each other's mirror by an ulp, fall on one level.
        mag = np.round(np.abs(col[live]), 12)
        lvl = np.zeros(mag.size, dtype=np.int64)
        if levels > 1:
            edges = np.quantile(mag, np.arange(1, levels) / levels)
            lvl = np.searchsorted(edges, mag, side="left")
            lvl = np.minimum(lvl, levels - 1)
        codes[live, u] = np.where(side[live] > 0, levels + lvl, levels - 1 - lvl)
    return codes, votes


def dawid_skene_units(codes: np.ndarray, n_cats: int, q0: np.ndarray, *, smoothing: float = 1.0, max_iter: int = 5000,
                      tol: float = 1e-7, symmetric: bool = False) -> dict:
    """Dawid–Skene by EM with a categorical response per unit (``codes`` from :func:`unit_codes`, ``-1`` =
    abstain), from a start posterior ``q0``. Conditional independence is assumed *between units* only.

    With two categories (a / b) this is the binary model of :func:`dawid_skene` (same smoothing: each
    category gets ``smoothing`` pseudo-counts per class). A unit that rarely answers (a refusal check) can
    make EM crawl for a thousand iterations; each is one pass over the items, hence the high cap. Returns ``q``, ``llr`` (units x categories:
    the log-likelihood ratio of each answer), ``prior``, ``iterations``, ``converged``.

    With ``symmetric=True`` the categories are read as :func:`unit_codes` lays them out (category ``c``
    and ``n_cats - 1 - c`` are the same answer for the other side) and the model is invariant under
    swapping a and b of any item: the prior is fixed at 1/2 and ``P(c | a better) = P(n_cats - 1 - c |
    b better)``, estimated from both (``smoothing`` pseudo-counts per category), so ``llr`` is
    antisymmetric. It is the fixed point EM reaches on every item and its mirror image together; a
    ``q0`` with ``1 - q0`` for flipped items gives exactly ``1 - q`` for them.
    """
    n, k = codes.shape
    onehot = [(codes[:, u][:, None] == np.arange(n_cats)[None, :]).astype(np.float64) for u in range(k)]
    q = np.clip(np.asarray(q0, dtype=np.float64), 0.0, 1.0)
    llr = np.zeros((k, n_cats))
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        prior = 0.5 if symmetric or not n else float(np.clip(q.mean(), 0.01, 0.99))
        lo = np.full(n, math.log(prior / (1 - prior)))
        for u in range(k):
            cp, cn = q @ onehot[u], (1 - q) @ onehot[u]
            if symmetric:
                # An item that says c when a is better is its mirror saying n_cats-1-c when b is.
                tied = cp + cn[::-1]
                tp = (tied + smoothing) / (tied.sum() + smoothing * n_cats)
                tn = tp[::-1]
            else:
                tp = (cp + smoothing) / (cp.sum() + smoothing * n_cats)
                tn = (cn + smoothing) / (cn.sum() + smoothing * n_cats)
            llr[u] = np.log(tp / tn)
            lo += onehot[u] @ llr[u]
        q_new = 1.0 / (1.0 + np.exp(-np.clip(lo, -35, 35)))
        delta = float(np.max(np.abs(q_new - q))) if n else 0.0
        q = q_new
        if delta < tol:
            converged = True
            break
    prior = 0.5 if symmetric or not n else float(np.clip(q.mean(), 0.01, 0.99))
    return {"q": q, "llr": llr, "prior": prior, "iterations": it, "converged": converged}


def rates_from_posterior(v: np.ndarray, q: np.ndarray, prior: float, smoothing: float = 1.0, *,
                         symmetric: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sensitivity, specificity and accuracy of every column of votes ``v`` given the posterior ``q``
    (the Dawid–Skene M-step, with the same smoothing): per verifier even when the label model saw it
    only as part of a group. With ``symmetric=True``, over both orientations of every item: the three
    are one number, the expected share of right votes (``smoothing`` right and wrong pseudo-votes)."""
    pos, neg = (v == 1).astype(np.float64), (v == -1).astype(np.float64)
    qp, qn, rp, rn = q @ pos, q @ neg, (1 - q) @ pos, (1 - q) @ neg
    if symmetric:
        acc = (qp + rn + smoothing) / (qp + qn + rp + rn + 2 * smoothing)
        return acc, acc.copy(), acc
    sens = (qp + smoothing) / (qp + qn + 2 * smoothing)
    spec = (rn + smoothing) / (rp + rn + 2 * smoothing)
    return sens, spec, prior * sens + (1 - prior) * spec
