"""Outcomes into a run's ratings: the one fit that ``rank``, ``rate RUN`` and the report share."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import RatingDivergenceError, RatingError
from ..rate import RatingTable, StyleFit, rate_completed, rate_pairwise
from ..store import PairOutcome

# The prior a run falls back to when maximum-likelihood ratings do not exist (hard verdicts and a
# system that never won or never lost): strengths ~ Normal(0, 1/sqrt(reg)) in natural log-odds, an sd of
# about 550 rating points. Weak enough to leave the gap of a 2:1 record over 24 prompts within 3 points
# of its maximum-likelihood value, strong enough to keep a system that lost every verdict in view.
FALLBACK_REG = 0.1


@dataclass
class OutcomeArrays:
    """Outcomes among ``systems`` as the numeric core takes them (outcomes about other systems dropped)."""

    outcomes: list[PairOutcome]
    a: np.ndarray
    b: np.ndarray
    p: np.ndarray
    weight: np.ndarray
    cluster: np.ndarray
    n_clusters: int


def outcome_arrays(systems: Sequence[str], outcomes: Sequence[PairOutcome]) -> OutcomeArrays:
    """Index arrays, P(a better), weights and prompt clusters of ``outcomes`` over ``systems``."""
    index = {s: i for i, s in enumerate(systems)}
    keep = [o for o in outcomes if o.system_a in index and o.system_b in index]
    prompts: dict[str, int] = {}
    n = len(keep)
    return OutcomeArrays(
        outcomes=keep,
        a=np.fromiter((index[o.system_a] for o in keep), dtype=np.int64, count=n),
        b=np.fromiter((index[o.system_b] for o in keep), dtype=np.int64, count=n),
        p=np.fromiter((o.p_a for o in keep), dtype=np.float64, count=n),
        weight=np.fromiter((o.weight for o in keep), dtype=np.float64, count=n),
        cluster=np.fromiter((prompts.setdefault(o.prompt_id, len(prompts)) for o in keep), dtype=np.int64, count=n),
        n_clusters=len(prompts))


@dataclass
class RunRatings:
    """A run's ratings and what the verdicts could not pin down.

    Attributes:
        table: the ratings.
        unrated: systems without a single usable verdict (not in ``table``).
        unbounded: system -> ``"below"`` / ``"above"`` for systems whose maximum-likelihood rating is
            infinitely far below / above the rest; their rating is set by the prior.
        fallback: whether the prior is :data:`FALLBACK_REG`, chosen because the maximum-likelihood
            ratings do not exist (rather than one the caller asked for).
    """

    table: RatingTable
    unrated: list[str]
    unbounded: dict[str, str]
    fallback: bool


def rate_run(systems: list[str], outcomes: Sequence[PairOutcome], *, n_boot: int, seed: int, level: float,
             plan: str = "round-robin", reg: float | None = None) -> RunRatings:
    """Bradley–Terry ratings with prompt-clustered bootstrap intervals from combined outcomes.

    Verdicts on one prompt are correlated (the same texts recur), so the bootstrap resamples
    whole prompts. Each outcome counts with its weight (1/2 for a comparison judged in one order
    only, see :mod:`referee.outcomes`). Systems left without a single usable verdict cannot be
    rated; they are returned apart, not given a made-up rating. A tournament's matches are rated
    by :func:`referee.rate.rate_completed` (unweighted): in a bracket, winners meet on the prompts
    they won, which biases plain Bradley–Terry.

    With ``reg=None`` the ratings are the maximum-likelihood estimate where it exists. Where it
    does not (0/1 verdicts from generate-then-parse, verifiers or replay, and a system that never
    won, or never lost), they are fitted again with the weak prior :data:`FALLBACK_REG`; the table's
    notes say so and name the systems, which are returned in ``unbounded``. An explicit ``reg`` is
    used as given (``0``: maximum likelihood or :class:`RatingError`).
    """
    if not outcomes:
        raise RatingError("no usable verdicts to rate (every verdict was unparseable or an error)")
    seen = {s for o in outcomes for s in (o.system_a, o.system_b)}
    rated = [s for s in systems if s in seen]
    unrated = [s for s in systems if s not in seen]
    x = outcome_arrays(rated, outcomes)

    def fit(r: float) -> RatingTable:
        if plan == "tournament" and x.n_clusters > 1:
            return rate_completed(rated, x.cluster, x.a, x.b, x.p, n_boot=n_boot, seed=seed, level=level, reg=r)
        return rate_pairwise(rated, x.a, x.b, x.p, x.weight, method="bt", ci="bootstrap", n_boot=n_boot, seed=seed,
                             level=level, cluster=x.cluster if x.n_clusters > 1 else None, reg=r)

    try:
        return RunRatings(fit(reg or 0.0), unrated, {}, False)
    except RatingDivergenceError as e:
        if reg is not None:
            raise RatingError(f"{e} (with --reg R on the command line; the verdicts are stored, so running "
                              f"again asks nothing)") from None
        diverged = e
    table = fit(FALLBACK_REG)
    top, bottom = diverged.top, diverged.bottom
    unbounded: dict[str, str] = {}
    if len(bottom) <= len(top):
        unbounded.update((rated[i], "below") for i in bottom)
    if len(top) <= len(bottom):
        unbounded.update((rated[i], "above") for i in top)
    below = [s for s, side in unbounded.items() if side == "below"]
    above = [s for s, side in unbounded.items() if side == "above"]
    what = "; ".join(([f"{', '.join(below)} never won or tied a comparison"] if below else [])
                     + ([f"{', '.join(above)} never lost one"] if above else []))
    sd = table.scale / math.log(10.0) / math.sqrt(FALLBACK_REG)
    side = "below" if not above else "above" if not below else "from"
    note = (f"the maximum-likelihood ratings do not exist: {what}. All ratings use a weak Gaussian prior instead "
            f"(reg={FALLBACK_REG:g}, an sd of {sd:.0f} rating points); how far {', '.join(unbounded)} "
            f"{'is' if len(unbounded) == 1 else 'are'} {side} the others is set by that prior, not by the verdicts "
            f"(--reg sets the prior)")
    table = replace(table, notes=[note, *table.notes])
    return RunRatings(table, unrated, unbounded, True)


def rate_outcomes(systems: list[str], outcomes: Sequence[PairOutcome], *, n_boot: int, seed: int,
                  level: float, plan: str = "round-robin", reg: float | None = None) -> tuple[RatingTable, list[str]]:
    """:func:`rate_run`'s ``(table, unrated_systems)``."""
    r = rate_run(systems, outcomes, n_boot=n_boot, seed=seed, level=level, plan=plan, reg=reg)
    return r.table, r.unrated


def quick_ratings(systems: Sequence[str], outcomes: Sequence[PairOutcome], *, level: float,
                  reg: float = 0.0) -> RatingTable:
    """Maximum-likelihood ratings with sandwich intervals (no refits): for a run folder without a
    leaderboard, and for the report's ratings after the first k comparisons.

    Raises:
        RatingError: the ratings do not exist, or ``outcomes`` holds nothing about ``systems``.
    """
    x = outcome_arrays(systems, outcomes)
    if not len(x.outcomes):
        raise RatingError("no outcomes about these systems")
    return rate_pairwise(list(systems), x.a, x.b, x.p, x.weight, ci="sandwich", level=level, reg=reg)


def style_fit(systems: Sequence[str], outcomes: Sequence[PairOutcome], texts: Mapping[tuple[str, str], str],
              level: float) -> tuple[StyleFit | None, str]:
    """Style- and length-controlled ratings from the candidates' texts: ``(fit, "")``, or ``(None, why not)``."""
    from ..rate import STYLE_FEATURES, style_controlled_bt, style_covariates

    x = outcome_arrays(systems, outcomes)
    if not len(x.outcomes):
        return None, "no comparisons"
    if len(x.outcomes) < 2 * len(systems):
        return None, "too few comparisons to separate style from quality"
    try:
        ta = [texts.get((o.prompt_id, o.system_a)) for o in x.outcomes]
        tb = [texts.get((o.prompt_id, o.system_b)) for o in x.outcomes]
        if any(t is None for t in ta + tb):
            return None, "the store lacks some candidate texts"
        X = style_covariates(ta, tb)
        keep = X.std(axis=0) > 0
        if not keep.any():
            return None, "the answers do not differ in style"
        names = [n for n, k in zip(STYLE_FEATURES, keep) if k]
        fit = style_controlled_bt(list(systems), x.a, x.b, x.p, X[:, keep], x.weight, names=names, level=level,
                                  cluster=[o.prompt_id for o in x.outcomes])
    except (RatingError, np.linalg.LinAlgError, ValueError) as e:
        return None, f"style-controlled fit failed: {e}"
    if not (np.all(np.isfinite(fit.table.rating)) and np.all(np.isfinite(fit.table.lower))
            and np.all(np.isfinite(fit.table.upper))):
        return None, "style-controlled fit did not give finite ratings"
    return fit, ""
