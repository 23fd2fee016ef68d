"""Ratings with intervals and rank ranges: the table every leaderboard is printed from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm, rankdata

from ..errors import RatingError
from ._bootstrap import bootstrap_thetas
from ._bt import fit_pairs, nat_to_points, to_rating
from ._elo import elo, elo_replicates
from ._graph import Pairs, aggregate, check_inputs, check_rateable
from ._sandwich import sandwich_cov, shift_cov
from ._threads import single_thread_blas

METHODS = ("bt", "elo")
CIS = ("bootstrap", "sandwich", "none")
# Cluster-robust intervals rest on the number of clusters, not of verdicts; below this many they are unreliable.
MIN_CLUSTERS = 10


def rank_ranges(lower, upper):
    """Compute the best and worst rank each system can claim given its interval.

    A system's best rank is 1 plus the number of systems whose lower bound is
    above its upper bound (those are surely better); its worst rank is the number
    of systems minus those whose upper bound is below its lower bound.

    Intervals of single ratings depend on the anchor (the anchor's has width zero
    and the others absorb its uncertainty), and so do ranges computed from them;
    the tables use :func:`rank_ranges_from_replicates` or
    :func:`rank_ranges_from_cov`, which do not.

    Parameters
    ----------
    lower : array_like
        Lower interval bound of each system.
    upper : array_like
        Upper interval bound of each system.

    Returns
    -------
    rank_min : numpy.ndarray
        Best (smallest) rank of each system.
    rank_max : numpy.ndarray
        Worst (largest) rank of each system.
    """
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    n = len(lo)
    # Sorting turns the O(n^2) pairwise comparison into two binary searches.
    sorted_lo = np.sort(lo)
    sorted_hi = np.sort(hi)
    better = n - np.searchsorted(sorted_lo, hi, side="right")
    worse = np.searchsorted(sorted_hi, lo, side="left")
    return (1 + better).astype(np.int64), (n - worse).astype(np.int64)


def rank_ranges_from_replicates(replicates, level=0.95, rating=None):
    """Compute the best and worst rank of each system from bootstrap replicates of the ratings.

    In each replicate a system's best rank is 1 plus the number of systems rated
    strictly above it and its worst rank is the number of systems minus those
    rated strictly below (systems with equal ratings share the range). The range
    runs from the ``(1 - level) / 2`` quantile of the best ranks to the
    ``(1 + level) / 2`` quantile of the worst ranks, both order statistics, so
    whole ranks. Shifting all ratings of a replicate leaves its ranks unchanged:
    the ranges do not depend on the anchor or on how ratings are centred.

    Parameters
    ----------
    replicates : array_like
        ``(n_replicates, n_systems)`` ratings, on any scale that preserves order.
    level : float, optional
        Share of replicates a range covers on each side's quantile (default 0.95).
    rating : array_like, optional
        The full-data ratings: each range is widened to contain the rank they give,
        so a leaderboard's position never falls outside its own range.

    Returns
    -------
    rank_min : numpy.ndarray
        Best (smallest) rank of each system.
    rank_max : numpy.ndarray
        Worst (largest) rank of each system.
    """
    reps = np.asarray(replicates, dtype=np.float64)
    alpha = 1.0 - level
    best = rankdata(-reps, method="min", axis=1)
    worst = rankdata(-reps, method="max", axis=1)
    rank_min = np.quantile(best, alpha / 2, axis=0, method="inverted_cdf")
    rank_max = np.quantile(worst, 1 - alpha / 2, axis=0, method="inverted_cdf")
    if rating is not None:
        r = -np.asarray(rating, dtype=np.float64)
        rank_min = np.minimum(rank_min, rankdata(r, method="min"))
        rank_max = np.maximum(rank_max, rankdata(r, method="max"))
    return rank_min.astype(np.int64), rank_max.astype(np.int64)


def rank_ranges_from_cov(rating, cov, level=0.95):
    """Compute the best and worst rank of each system from normal intervals of rating differences.

    System ``j`` is surely above ``i`` when the two-sided ``level`` interval of
    ``rating[j] - rating[i]``, with variance ``cov[i, i] + cov[j, j] - 2 cov[i, j]``,
    lies above zero. A system's best rank is 1 plus the systems surely above it, its
    worst rank the number of systems minus those surely below. Differences, and
    their variances, are the same whatever the anchor or centring, so the ranges
    are too. ``cov=None`` (no uncertainty) gives the ranks of ``rating``, equal
    ratings sharing a range.

    Parameters
    ----------
    rating : array_like
        Ratings of the systems.
    cov : array_like or None
        Their covariance, in the squared units of ``rating``.
    level : float, optional
        Confidence level of each difference's interval (default 0.95).

    Returns
    -------
    rank_min : numpy.ndarray
        Best (smallest) rank of each system.
    rank_max : numpy.ndarray
        Worst (largest) rank of each system.
    """
    r = np.asarray(rating, dtype=np.float64)
    if cov is None:
        return rankdata(-r, method="min").astype(np.int64), rankdata(-r, method="max").astype(np.int64)
    c = np.asarray(cov, dtype=np.float64)
    z = norm.ppf(0.5 + level / 2)
    var = np.diag(c)
    n = len(r)
    above = np.zeros(n, dtype=np.int64)
    below = np.zeros(n, dtype=np.int64)
    # Row blocks keep the n x n difference matrices small for thousands of systems.
    step = max(1, 2**20 // max(n, 1))
    for s in range(0, n, step):
        i = slice(s, min(s + step, n))
        d = r[None, :] - r[i, None]                      # rating[j] - rating[i]
        se = np.sqrt(np.maximum(var[None, :] + var[i, None] - 2 * c[i, :], 0.0))
        above[i] = (d - z * se > 0).sum(axis=1)
        below[i] = (d + z * se < 0).sum(axis=1)
    return 1 + above, n - below


def cluster_note(cluster) -> str | None:
    """The note a table carries when its intervals rest on fewer than ``MIN_CLUSTERS`` clusters."""
    if cluster is None:
        return None
    k = len(np.unique(np.asarray(cluster)))
    if k >= MIN_CLUSTERS:
        return None
    return (f"intervals rest on only {k} cluster(s) (e.g. prompts): with fewer than {MIN_CLUSTERS}, resampling "
            f"or summing whole clusters is unreliable and the intervals are usually too narrow")


def _percentiles(reps, alpha):
    """Percentile interval bounds from bootstrap replicates (rows).

    The default linear interpolation puts the bounds at order statistic 1 + p(B - 1),
    which leaves (1 + p(B - 1)) / (B + 1) in each tail on average: with B = 100 that is
    3.4%, i.e. 93% intervals (measured 93.5% at Arena scale). The Weibull position
    p(B + 1) leaves exactly p in each tail on average, for any B.
    """
    return np.quantile(reps, [alpha / 2, 1 - alpha / 2], axis=0, method="weibull")


@dataclass
class RatingTable:
    """Ratings of systems with confidence intervals, rank ranges and how they were fitted.

    Arrays are aligned with ``systems``. ``rating``, ``lower`` and ``upper`` share one
    scale: ``scale`` points multiply the odds of winning by 10, and the anchor system
    (or the mean, if there is no anchor) sits at ``base``. ``rank_min`` and ``rank_max``
    do not depend on the anchor: from the replicates' ranks with a bootstrap
    (:func:`rank_ranges_from_replicates`), from intervals of rating differences with
    the sandwich (:func:`rank_ranges_from_cov`). ``replicates`` holds the bootstrap
    replicates that entered the intervals; ``n_boot_failed`` of the ``n_boot`` drawn
    were dropped (no finite ratings, see ``notes``). ``n_clusters`` is the number of
    clusters a clustered interval rests on.
    """

    systems: list[str]
    rating: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rank_min: np.ndarray
    rank_max: np.ndarray
    n: np.ndarray
    win_rate: np.ndarray
    se: np.ndarray
    method: str = "bt"
    ci: str = "bootstrap"
    n_boot: int = 0
    seed: int | None = 0
    level: float = 0.95
    anchor: str | None = None
    scale: float = 400.0
    base: float = 1000.0
    reg: float = 0.0
    n_verdicts: int = 0
    n_boot_failed: int = 0
    clustered: bool = False
    n_clusters: int | None = None
    cov: np.ndarray | None = field(default=None, repr=False)
    replicates: np.ndarray | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    def order(self) -> np.ndarray:
        """Indices of the systems sorted best first (ties broken by name)."""
        names = np.array(self.systems, dtype=object)
        return np.array(sorted(range(len(self.systems)), key=lambda i: (-self.rating[i], names[i])))

    def to_records(self) -> list[dict]:
        """One dict per system, best first, with plain Python values."""
        out = []
        for i in self.order():
            out.append({
                "system": self.systems[i],
                "rating": float(self.rating[i]),
                "lower": float(self.lower[i]),
                "upper": float(self.upper[i]),
                "rank_min": int(self.rank_min[i]),
                "rank_max": int(self.rank_max[i]),
                "n": int(self.n[i]),
                "win_rate": float(self.win_rate[i]),
            })
        return out

    def fit_info(self) -> dict:
        """How the table was computed, for reports and reproducibility."""
        return {"method": self.method, "ci": self.ci, "n_boot": self.n_boot, "seed": self.seed,
                "level": self.level, "anchor": self.anchor, "scale": self.scale, "base": self.base,
                "reg": self.reg, "n_verdicts": self.n_verdicts, "n_boot_failed": self.n_boot_failed,
                "clustered": self.clustered, "n_clusters": self.n_clusters,
                "notes": list(self.notes)}


def _resolve_anchor(anchor, systems):
    if anchor is None:
        return None
    if isinstance(anchor, (int, np.integer)) and not isinstance(anchor, bool):
        if not 0 <= anchor < len(systems):
            raise RatingError(f"anchor index {anchor} is out of range for {len(systems)} systems")
        return int(anchor)
    try:
        return list(systems).index(anchor)
    except ValueError:
        raise RatingError(f"anchor system {anchor!r} is not among the rated systems") from None


def rate_pairwise(systems, a_idx, b_idx, outcome, weight=None, *, method="bt", ci="bootstrap",
                  n_boot=1000, seed=0, level=0.95, anchor=None, scale=400.0, base=1000.0, reg=0.0,
                  cluster=None, k=4.0):
    """Rate systems from pairwise verdicts, with confidence intervals and rank ranges.

    With ``method="bt"`` the ratings are the Bradley-Terry maximum-likelihood
    estimate (see :func:`bradley_terry`). Intervals come either from a multinomial
    bootstrap over the unique (pair, outcome, weight) rows, every replicate refitted
    by batched Newton steps from the full-data estimate (``ci="bootstrap"``, percentile
    intervals), or from the sandwich estimator, which needs no refit
    (``ci="sandwich"``, normal intervals). With ``method="elo"`` the ratings are
    online Elo in the given order and bootstrap replicates also shuffle the order.

    Parameters
    ----------
    systems : list of str
        Names of the systems; indices refer to this list.
    a_idx : array_like
        Index of the first system of each comparison.
    b_idx : array_like
        Index of the second system of each comparison.
    outcome : array_like
        Probability that system ``a`` beats system ``b``, in [0, 1] (0.5 = tie).
    weight : array_like, optional
        Non-negative weight of each comparison (default 1).
    method : {"bt", "elo"}, optional
        Rating model (default "bt").
    ci : {"bootstrap", "sandwich", "none"}, optional
        How to compute intervals (default "bootstrap"). Elo supports "bootstrap"
        and "none" only.
    n_boot : int, optional
        Number of bootstrap replicates (default 1000).
    seed : int, optional
        Seed of the bootstrap; the same seed gives the same table (default 0).
    level : float, optional
        Confidence level of the intervals (default 0.95).
    anchor : str or int, optional
        System (name or index) fixed at ``base``; by default the mean is ``base``.
    scale : float, optional
        Rating points that multiply the odds by 10 (default 400).
    base : float, optional
        Rating of the anchor, or mean rating (default 1000).
    reg : float, optional
        Gaussian prior strength on natural-scale strengths (default 0, plain MLE).
        Needed when some systems never lost or never won.
    cluster : array_like, optional
        Group label of each comparison (e.g., the prompt). Comparisons of one
        group are then treated as correlated: the sandwich sums their scores
        before squaring, and the bootstrap resamples whole groups.
    k : float, optional
        Elo K-factor (default 4), used only with ``method="elo"``.

    Returns
    -------
    table : RatingTable
        Ratings, intervals, rank ranges, counts and win rates.

    Raises
    ------
    RatingError
        If the data cannot be rated: a system without comparisons, a disconnected
        comparison graph, or (for ``reg == 0``) ratings that diverge.
    """
    with single_thread_blas():
        return _rate_pairwise(systems, a_idx, b_idx, outcome, weight, method=method, ci=ci, n_boot=n_boot,
                              seed=seed, level=level, anchor=anchor, scale=scale, base=base, reg=reg,
                              cluster=cluster, k=k)



def _rate_pairwise(systems, a_idx, b_idx, outcome, weight=None, *, method="bt", ci="bootstrap",
                   n_boot=1000, seed=0, level=0.95, anchor=None, scale=400.0, base=1000.0, reg=0.0,
                   cluster=None, k=4.0):
    # The public docstring is on rate_pairwise.
    systems = [str(s) for s in systems]
    n = len(systems)
    if method not in METHODS:
        raise RatingError(f"unknown rating method {method!r}; use one of {', '.join(METHODS)}")
    ci = "none" if ci is None else ci
    if ci not in CIS:
        raise RatingError(f"unknown interval method {ci!r}; use one of {', '.join(CIS)}")
    if not 0 < level < 1:
        raise RatingError(f"level must be in (0, 1), got {level}")
    if ci == "bootstrap" and n_boot < 2:
        raise RatingError("the bootstrap needs n_boot >= 2")
    if reg < 0:
        raise RatingError("reg must be non-negative")
    if len(set(systems)) != n:
        raise RatingError("system names must be unique")
    anchor_i = _resolve_anchor(anchor, systems)
    a, b, o, w = check_inputs(a_idx, b_idx, outcome, n, weight)
    if cluster is not None and len(np.asarray(cluster)) != len(a):
        raise RatingError("cluster must have one label per comparison")
    pairs = aggregate(a, b, o, w, n)
    check_rateable(pairs, systems, reg=reg if method == "bt" else 1.0,
                   constant_outcome=float(o[0]) if np.ptp(o) == 0 else None)

    n_per = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    wsum = np.bincount(a, weights=w, minlength=n) + np.bincount(b, weights=w, minlength=n)
    wwin = np.bincount(a, weights=w * o, minlength=n) + np.bincount(b, weights=w * (1 - o), minlength=n)
    win_rate = wwin / np.where(wsum > 0, wsum, 1.0)

    notes: list[str] = []
    if reg > 0:
        notes.append(f"ratings are shrunk toward each other by a Gaussian prior (reg={reg:g}); "
                     f"they are not the maximum-likelihood estimate")
    alpha = 1.0 - level
    cov = None
    reps = None
    n_failed = 0
    clustered = cluster is not None and method == "bt" and ci != "none"
    if clustered:
        note = cluster_note(cluster)
        if note:
            notes.append(note)
    pts = nat_to_points(scale)
    if method == "bt":
        theta = fit_pairs(pairs, reg=reg)
        rating = to_rating(theta, anchor_i, scale, base)
        if ci == "sandwich":
            cov = shift_cov(sandwich_cov(pairs, theta, reg, o, w, cluster), anchor_i)
            se = pts * np.sqrt(np.maximum(np.diag(cov), 0.0))
            z = norm.ppf(1 - alpha / 2)
            lower, upper = rating - z * se, rating + z * se
        elif ci == "bootstrap":
            thetas, failed = bootstrap_thetas(pairs, o, w, theta, n_boot, seed, reg, cluster)
            n_failed = int(failed.sum())
            if n_boot - n_failed < 2:
                raise RatingError(f"{n_failed} of {n_boot} bootstrap replicates have no finite ratings (in those "
                                  f"some system never lost, never won or was never compared): no bootstrap "
                                  f"interval; fit with a prior (reg > 0) or use ci='sandwich'")
            reps = to_rating(thetas[~failed], anchor_i, scale, base)
            lower, upper = _percentiles(reps, alpha)
            se = reps.std(axis=0, ddof=1)
            if n_failed:
                notes.append(f"{n_failed} of {n_boot} bootstrap replicates were dropped: in those some system "
                             f"never lost, never won or was never compared (or the refit did not converge), so "
                             f"they have no finite ratings; intervals and rank ranges come from the other "
                             f"{n_boot - n_failed}, and understate the uncertainty when many are dropped "
                             f"(a prior, reg > 0, keeps every replicate)")
        else:
            lower = upper = rating
            se = np.full(n, np.nan)
    else:
        rating = elo(a, b, o, n, k=k, scale=scale, base=base)
        if anchor_i is not None:
            rating = rating - rating[anchor_i] + base
        notes.append("Elo ratings depend on the order of the verdicts")
        if ci == "sandwich":
            raise RatingError("sandwich intervals are defined for Bradley-Terry only; use ci='bootstrap' for Elo")
        if ci == "bootstrap":
            rng = np.random.default_rng(seed)
            orders = rng.integers(0, len(a), size=(n_boot, len(a)))
            reps = elo_replicates(a, b, o, n, orders, k=k, scale=scale, base=base)
            if anchor_i is not None:
                reps = reps - reps[:, anchor_i:anchor_i + 1] + base
            lower, upper = _percentiles(reps, alpha)
            se = reps.std(axis=0, ddof=1)
        else:
            lower = upper = rating
            se = np.full(n, np.nan)
    if reps is not None:
        rank_min, rank_max = rank_ranges_from_replicates(reps, level, rating)
    else:
        rank_min, rank_max = rank_ranges_from_cov(rating, None if cov is None else pts * pts * cov, level)
    return RatingTable(systems=systems, rating=rating, lower=np.asarray(lower), upper=np.asarray(upper),
                       rank_min=rank_min, rank_max=rank_max, n=n_per, win_rate=win_rate, se=se,
                       method=method, ci=ci, n_boot=n_boot if ci == "bootstrap" else 0, seed=seed,
                       level=level, anchor=None if anchor_i is None else systems[anchor_i], scale=scale,
                       base=base, reg=reg, n_verdicts=len(a), n_boot_failed=n_failed,
                       clustered=clustered, n_clusters=len(np.unique(np.asarray(cluster))) if clustered else None,
                       cov=cov, replicates=reps, notes=notes)


def rate_pair_sums(systems, pairs: Pairs, n_outcomes, *, level=0.95, anchor=None, scale=400.0, base=1000.0,
                   reg=0.0, cluster_meat=None, n_clusters=None):
    """Rate systems from verdicts already summed over unique pairs, with sandwich intervals.

    The same Bradley-Terry fit and sandwich as :func:`rate_pairwise` with ``ci="sandwich"``, for
    data that was aggregated before it reached numpy (e.g. in SQL): there are no per-verdict rows,
    so no bootstrap.

    Parameters
    ----------
    systems : list of str
        Names of the systems; ``pairs`` indexes them.
    pairs : Pairs
        Sums over unique pairs ``a < b``: weighted wins, weight, and the ``w2*`` sums.
    n_outcomes : array_like
        Number of comparisons behind each pair (for each system's ``n``).
    level, anchor, scale, base, reg
        As in :func:`rate_pairwise`.
    cluster_meat : callable, optional
        ``theta -> B``: the clustered sandwich's meat at natural-scale strengths ``theta``
        (without it, the meat comes from the pair sums: comparisons independent).
    n_clusters : int, optional
        Number of clusters the meat sums over (recorded, and checked against ``MIN_CLUSTERS``).

    Returns
    -------
    table : RatingTable

    Raises
    ------
    RatingError
        As :func:`rate_pairwise`.
    """
    with single_thread_blas():
        systems = [str(s) for s in systems]
        n = len(systems)
        if len(set(systems)) != n:
            raise RatingError("system names must be unique")
        if not 0 < level < 1:
            raise RatingError(f"level must be in (0, 1), got {level}")
        if reg < 0:
            raise RatingError("reg must be non-negative")
        anchor_i = _resolve_anchor(anchor, systems)
        check_rateable(pairs, systems, reg=reg)
        counts = np.asarray(n_outcomes, dtype=np.int64)
        n_per = np.bincount(pairs.a, weights=counts, minlength=n) + np.bincount(pairs.b, weights=counts, minlength=n)
        wsum = np.bincount(pairs.a, weights=pairs.count, minlength=n) + np.bincount(pairs.b, weights=pairs.count, minlength=n)
        wwin = (np.bincount(pairs.a, weights=pairs.wins, minlength=n)
                + np.bincount(pairs.b, weights=pairs.count - pairs.wins, minlength=n))
        notes: list[str] = []
        if reg > 0:
            notes.append(f"ratings are shrunk toward each other by a Gaussian prior (reg={reg:g}); "
                         f"they are not the maximum-likelihood estimate")
        clustered = cluster_meat is not None
        if clustered and n_clusters is not None and n_clusters < MIN_CLUSTERS:
            notes.append(cluster_note(np.arange(n_clusters)))
        theta = fit_pairs(pairs, reg=reg)
        rating = to_rating(theta, anchor_i, scale, base)
        meat = cluster_meat(theta) if clustered else None
        cov = shift_cov(sandwich_cov(pairs, theta, reg, meat=meat), anchor_i)
        pts = nat_to_points(scale)
        se = pts * np.sqrt(np.maximum(np.diag(cov), 0.0))
        z = norm.ppf(0.5 + level / 2)
        rank_min, rank_max = rank_ranges_from_cov(rating, pts * pts * cov, level)
        return RatingTable(systems=systems, rating=rating, lower=rating - z * se, upper=rating + z * se,
                           rank_min=rank_min, rank_max=rank_max, n=n_per.astype(np.int64),
                           win_rate=wwin / np.where(wsum > 0, wsum, 1.0), se=se, method="bt", ci="sandwich",
                           n_boot=0, seed=None, level=level, anchor=None if anchor_i is None else systems[anchor_i],
                           scale=scale, base=base, reg=reg, n_verdicts=int(counts.sum()), clustered=clustered,
                           n_clusters=n_clusters if clustered else None, cov=cov, notes=notes)
