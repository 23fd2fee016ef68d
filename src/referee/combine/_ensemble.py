"""Several verifiers into one probability per item, without labels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._dedup import screen_verifiers
from ._labelmodel import (_EPS, dawid_skene_units, rates_from_posterior, symmetric_posterior, triplet_signal, unit_codes,
                          unit_scores)
from ._normalize import normalize_outputs, to_votes

METHODS = ("dawid-skene", "triplet", "majority")


@dataclass
class Member:
    """What the label model learnt about one verifier (``None`` where it could not be estimated)."""

    name: str
    coverage: float                 # share of items with a verdict (tie or not)
    votes: int                      # non-tie verdicts
    rate_a: float | None            # share of its votes that say "a"
    accuracy: float | None          # estimated P(vote right), label-free
    sensitivity: float | None       # P(says a | a better)   (Dawid–Skene)
    specificity: float | None       # P(says b | b better)   (Dawid–Skene)
    weight: float                   # log-odds weight of a vote in the ensemble (0 when dropped)
    agreement: float | None         # agreement with the ensemble's verdict, on its non-tie votes
    kept: bool = True
    reason: str = ""
    unit: str = ""                  # the dependent group it was weighed in, as one unit ("" = on its own)
    tie_weight: float = 0.0         # weight of its vote on items the kept members left undecided (tie_break)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Ensemble:
    """The combined verdicts and the table of members.

    ``p[i]`` is the calibrated (under the label model) P(a better / positive) for item ``i``;
    never NaN. ``voted[i]`` is false where no kept verifier gave a non-tie verdict (every verdict a
    tie, only dropped verifiers, or none at all): such an item has no combined verdict, and its ``p`` is
    only the prior (1/2 for pairs), which :func:`~referee.combine.combined_rows` leaves out rather than
    pass on as a tie nobody declared. ``None`` means every item counts as voted.
    """

    p: np.ndarray
    members: list[Member]
    method: str
    prior: float
    notes: list[str] = field(default_factory=list)
    iterations: int = 0
    converged: bool = True
    levels: int = 1
    voted: np.ndarray | None = None
    symmetric: bool = True
    tie_broken: np.ndarray | None = None

    @property
    def units(self) -> list[list[str]]:
        """The dependent groups that were weighed as one unit (members' names), each listed once."""
        seen: dict[str, list[str]] = {}
        for m in self.members:
            if m.unit:
                seen.setdefault(m.unit, []).append(m.name)
        return list(seen.values())

    @property
    def kept(self) -> list[str]:
        return [m.name for m in self.members if m.kept]

    def table(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self.members]

    def posterior(self, x: np.ndarray, tie_band: float = 0.0) -> np.ndarray:
        """P(a better) for new items under the weights this ensemble learnt, which stay fixed.

        ``x`` is items x the same verifiers, in the same order, as P(a better) (``NaN`` = no verdict).
        A unit of dependent members votes with the sign of their mean, as in the fit. This is the
        fitted model applied, not refitted: a metric that scores candidates one at a time needs a
        score that does not move when later items arrive. Only for symmetric one-level fits (the
        label models that weigh a vote by ``log(acc / (1 - acc))``) and majority votes.

        Raises:
            ValueError: another shape or kind of fit.
        """
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x.shape[1] != len(self.members):
            raise ValueError(f"{x.shape[1]} columns for an ensemble of {len(self.members)} verifiers")
        if not self.symmetric or self.levels != 1:
            raise ValueError("posterior() needs a symmetric fit with levels=1")
        units: dict[str, list[int]] = {}
        for j, m in enumerate(self.members):
            if m.kept:
                units.setdefault(m.unit or f"#{j}", []).append(j)
        cols = list(units.values())
        if not cols:
            return np.full(x.shape[0], 0.5)
        s = unit_scores(x, cols)
        votes = np.where(np.isnan(s) | (np.abs(s) <= 2 * tie_band), 0.0, np.sign(s))
        if len(cols) == 1:  # the fit's fallback: one unit is its own (soft) verdict
            p = np.where(np.isnan(s[:, 0]), 0.5, (s[:, 0] + 1) / 2)
        elif self.method == "majority":
            n_votes = np.abs(votes).sum(axis=1)
            p = np.where(n_votes > 0, (votes > 0).sum(axis=1) / np.maximum(n_votes, 1), 0.5)
        else:
            w = np.array([self.members[c[0]].weight for c in cols])
            lo = np.clip(votes @ w, -35, 35)
            p = 1.0 / (1.0 + np.exp(-lo))
        if self.tie_broken is None:
            return p
        tw = np.array([m.tie_weight for m in self.members])
        tb = _tie_break_p(to_votes(x, tie_band), tw)
        undecided = ~(votes != 0).any(axis=1)
        return np.where(undecided & ~np.isnan(tb), tb, p)


TIE_BREAK_SPAN = 0.05  # largest distance from 1/2 of a tie-broken item's p: an order, not a confident verdict


def _tie_break_p(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """P(a better) from the tie-breakers' weighted votes (``NaN`` where their votes cancel or none voted)."""
    score = v @ w
    return np.where(score != 0, 0.5 + TIE_BREAK_SPAN * np.tanh(score / 2), np.nan)


def _tie_weights(v: np.ndarray, dec: np.ndarray, cols: list[int], min_overlap: int) -> dict[int, tuple[float, float, int]]:
    """Per tie-breaker column: (weight, smoothed agreement with the ensemble's decisions, items compared).

    The ensemble's own decisions stand in for labels: ``a = (agree + 1) / (n + 2)`` over items both
    decided, weight ``max(0, log(a / (1 - a)))``, and 0 with fewer than ``min_overlap`` such items.
    """
    out = {}
    for j in cols:
        both = (v[:, j] != 0) & (dec != 0)
        n = int(both.sum())
        a = (float((v[both, j] == dec[both]).sum()) + 1) / (n + 2)
        out[j] = (max(0.0, math.log(a / (1 - a))) if n >= min_overlap else 0.0, a, n)
    return out


def majority_vote(p: np.ndarray, tie_band: float = 0.0) -> np.ndarray:
    """Share of non-tie votes that say "a" per item (0.5 when nobody voted or votes split evenly)."""
    v = to_votes(normalize_outputs(p) if np.ndim(p) == 2 else p, tie_band)
    pos = (v == 1).sum(axis=1)
    tot = (v != 0).sum(axis=1)
    return np.where(tot > 0, pos / np.maximum(tot, 1), 0.5)


def _units(live: list[int], names: list[str], groups, dependent: list[tuple[int, int]]) -> list[list[int]]:
    """Partition of the kept columns into units: declared groups and detected dependent pairs are joined
    (transitively), every other verifier is a unit of its own. Order: by first member."""
    parent = {j: j for j in live}

    def find(j):
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    index = {nm: j for j, nm in enumerate(names)}
    links = list(dependent)
    for g in groups or []:
        cols = []
        for m in g:
            j = index.get(m) if isinstance(m, str) else int(m)
            if j is None or not 0 <= j < len(names):
                raise ValueError(f"group member {m!r} is not a verifier")
            cols.append(j)
        cols = [j for j in cols if j in parent]
        links += [(cols[0], j) for j in cols[1:]]
    for i, j in links:
        if i in parent and j in parent:
            parent[find(j)] = find(i)
    by_root: dict[int, list[int]] = {}
    for j in live:
        by_root.setdefault(find(j), []).append(j)
    return sorted(by_root.values())


def combine(x: np.ndarray, names: list[str] | None = None, *, kinds: list[str] | str = "probability",
            method: str = "dawid-skene", tie_band: float = 0.0, dedup: bool = True, drop_uninformative: bool = True,
            smoothing: float = 1.0, min_overlap: int = 10, groups: list[list[str | int]] | None = None,
            levels: int = 1, symmetric: bool = True, tie_break: bool = False) -> Ensemble:
    """Combine verifiers' outputs on the same items into one probability per item, without labels.

    Args:
        x: items x verifiers; each column a verifier's P(a better) (or binary check / score, see
            ``kinds``), ``NaN`` where it gave no verdict.
        names: one per column (default ``j0, j1, ...``).
        kinds: ``probability``, ``binary`` or ``score`` per column (see :func:`normalize_outputs`).
        method: ``dawid-skene`` (EM over sensitivity/specificity, started from triplet estimates),
            ``triplet`` (method-of-moments accuracies, symmetric log-odds weights) or ``majority``.
        tie_band: outputs within this distance of 0.5 are ties (abstentions).
        dedup: drop copies of another verifier, and model pairs with correlated errors as one unit.
        drop_uninformative: drop verifiers with no or constant verdicts, or at chance.
        groups: families of verifiers (names or column indices) known to share their errors, e.g.
            several length heuristics: each family is one unit of the label model (its members' mean
            signed output), so it weighs as one verifier, not as many. Pairs found by the screening
            (correlation in excess of what their accuracies explain) are joined the same way.
        levels: answer levels per side of a unit (by quantile of its soft output): with 2 or more,
            a confident answer can weigh more than a hesitant one, as much as the data say.
        symmetric: the items are pairs whose orientation is arbitrary (which system is "a" is an
            accident of the input), the default. Every step is then invariant under swapping a and b
            of any item, and a flipped item's probability is exactly ``1 - p``: the class prior is 1/2,
            each verifier has one accuracy per answer level whichever side it takes (sensitivity =
            specificity), the screening uses correlations over both orientations and has no
            "constant" criterion. This is the model fitted to every item together with its mirror
            image; a free prior and one-sided rates would instead learn which system the input
            happened to list first, and hand that to items nobody decided. ``False`` is for items with
            a meaningful positive class (pass/fail checks of single outputs): a class prior and
            separate sensitivity and specificity are then estimated.
        tie_break: let verifiers the screen dropped as near chance order the items the kept ones
            leave undecided, for best-of-n where a tie is a coin flip. Each one's ``tie_weight`` is
            ``max(0, log(a / (1 - a)))``, with ``a`` its smoothed agreement ((agree + 1) / (n + 2))
            with the ensemble's own decisions (no labels), 0 with fewer than ``min_overlap`` items
            to compare; on an undecided item whose weighted votes sum to ``s != 0``,
            ``p = 1/2 + 0.05 tanh(s / 2)`` (an order, not a confident verdict) and
            ``tie_broken`` marks it. Only with ``symmetric``.

    Items where no kept verifier gave a non-tie verdict get ``p`` = the prior and ``voted`` false;
    how many there are is written to ``notes``.

    Fallbacks, each written to ``notes``: with one usable unit its own (normalised, averaged) output is
    the ensemble; with two, they are weighted equally (their accuracies are not identifiable apart);
    with no usable verifier every item gets 0.5.
    """
    x = normalize_outputs(np.asarray(x, dtype=np.float64), kinds)
    n, k = x.shape
    names = list(names) if names is not None else [f"j{j}" for j in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} verifiers")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    if int(levels) < 1:
        raise ValueError(f"levels must be 1 or more, got {levels}")
    if tie_break and not symmetric:
        raise ValueError("tie_break needs symmetric=True: it orders pairs, around 1/2")
    levels = int(levels)
    v = to_votes(x, tie_band)
    notes: list[str] = []
    drop: dict[int, str] = {}
    dependent: list[tuple[int, int]] = []
    if drop_uninformative or dedup:
        drop = screen_verifiers(v, min_overlap=min_overlap, dependent=dependent if dedup else None,
                                symmetric=symmetric)
        if not drop_uninformative:
            drop = {j: r for j, r in drop.items() if r.startswith("duplicate")}
        if not dedup:
            drop = {j: r for j, r in drop.items() if not r.startswith("duplicate")}
        drop = {j: (f"duplicate of {names[int(r.split('#')[1])]}" if r.startswith("duplicate") else r)
                for j, r in drop.items()}
    live = [j for j in range(k) if j not in drop]
    if not live and k:
        best = int(np.argmax((v != 0).sum(axis=0)))
        if (v[:, best] != 0).any():
            notes.append(f"every verifier was screened out; kept {names[best]} (most verdicts) anyway")
            drop.pop(best)
            live = [best]
    units = _units(live, names, groups, dependent)
    unit_of = {j: u for u, cols in enumerate(units) for j in cols}
    for cols in units:
        if len(cols) > 1:
            notes.append("one unit of the label model (correlated errors, weighed once): "
                         + ", ".join(names[j] for j in cols))
    s_units = unit_scores(x, units) if units else np.zeros((n, 0))
    codes, uv = unit_codes(s_units, tie_band=tie_band, levels=levels)
    acc_units = None            # estimated sign accuracy per unit
    member_rates = None         # (sens, spec, acc) per column, from the posterior
    acc_triplet: dict[int, float] = {}
    prior = 0.5
    iterations, converged = 0, True
    no_signal = False
    if not live:
        notes.append("no verifier gave a usable verdict: every item gets 0.5")
        p = np.full(n, 0.5)
    elif method == "majority":
        p = majority_vote(x[:, live], tie_band)
    elif len(units) == 1:
        if len(live) == 1:
            notes.append(f"one usable verifier ({names[live[0]]}): the ensemble is its own verdict; "
                         "accuracy not estimable")
        else:
            notes.append("one usable unit (a group of dependent verifiers): the ensemble is their mean verdict; "
                         "accuracies not estimable")
        col = s_units[:, 0]
        p = np.where(np.isnan(col), 0.5, (col + 1) / 2)
    elif len(units) == 2:
        what = "verifiers" if len(live) == 2 else "units (after grouping dependent verifiers)"
        notes.append(f"two usable {what}: accuracies are not identifiable apart; weighted equally "
                     "(a tie between them gives 0.5)")
        m = (uv[:, 0] * uv[:, 1])[(uv[:, 0] != 0) & (uv[:, 1] != 0)]
        agree = float(m.mean()) if m.size else 0.0
        common = math.sqrt(max(agree, 0.0)) if agree > 0 else 0.0
        acc_units = np.full(2, (1 + min(common, 0.98)) / 2)
        p = symmetric_posterior(uv, acc_units)
        if common == 0.0:
            # Both at chance by this estimate, so every p is exactly 1/2: rated, that would be a
            # run of ties nobody declared, and a zero-width interval around "equal".
            no_signal = True
            notes.append(f"the two agree no more often than chance (mean product of their votes {agree:+.2f} "
                         f"on the {m.size} items both decided): no signal to combine, no combined verdicts")
        if len(live) == 2:
            acc_triplet = {j: float(acc_units[unit_of[j]]) for j in live}
    else:
        a = triplet_signal(uv, min_overlap=min_overlap)
        a = np.where(np.isnan(a), np.nanmedian(a) if np.isfinite(a).any() else 0.2, a)
        acc_units = np.clip((1 + a) / 2, 0.5 + 1e-3, 0.98)
        if not symmetric:
            # Class prior from E[v_u] = a_u (2 pi - 1), averaged over units.
            mv = np.array([uv[uv[:, u] != 0, u].mean() if (uv[:, u] != 0).any() else 0.0
                           for u in range(len(units))])
            ratio = mv / np.maximum(2 * acc_units - 1, 0.05)
            prior = float(np.clip((1 + np.median(ratio)) / 2, 0.02, 0.98))
        q0 = symmetric_posterior(uv, acc_units, prior)
        if method == "triplet":
            p = q0
            acc_triplet = {cols[0]: float(acc_units[u]) for u, cols in enumerate(units) if len(cols) == 1}
            member_rates = rates_from_posterior(v, q0, prior, smoothing, symmetric=symmetric)
        else:
            fit = dawid_skene_units(codes, 2 * levels, q0, smoothing=smoothing, symmetric=symmetric)
            p, prior = fit["q"], fit["prior"]
            iterations, converged = fit["iterations"], fit["converged"]
            if not converged:
                notes.append(f"EM stopped after {iterations} iterations without converging")
            member_rates = rates_from_posterior(v, p, prior, smoothing, symmetric=symmetric)
            acc_units = rates_from_posterior(uv, p, prior, smoothing, symmetric=symmetric)[2]
    if not live:
        prior = 0.5
        decided = np.zeros(n, dtype=bool)
    elif method == "majority":
        decided = (v[:, live] != 0).any(axis=1)
    else:
        decided = (uv != 0).any(axis=1)
    if no_signal:
        decided = np.zeros(n, dtype=bool)
    # Without a vote the posterior is the prior whatever the model; set it so that no rounding in EM shows.
    p = np.where(decided, np.nan_to_num(p, nan=prior), prior)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    if not decided.all() and not no_signal:
        none = np.isnan(x).all(axis=1) & ~decided
        notes.append(f"{int((~decided).sum())} of {n} items have no non-tie verdict of a kept verifier "
                     f"({int((~decided & ~none).sum())} where every verdict was a tie or came from a dropped verifier, "
                     f"{int(none.sum())} without any verdict): no combined verdict for them")
    dec = np.sign(p - 0.5)  # members' agreement is with the label model's decisions, before any tie-break
    tie_broken = None
    ties: dict[int, tuple[float, float, int]] = {}
    if tie_break:
        chance = [j for j, r in drop.items() if r.startswith("near chance")]
        ties = _tie_weights(v, np.where(decided, dec, 0.0), chance, min_overlap)
        tw = np.zeros(k)
        for j, (w, _, _) in ties.items():
            tw[j] = w
        tb = _tie_break_p(v, tw)
        tie_broken = ~decided & ~np.isnan(tb)
        p = np.where(tie_broken, tb, p)
        decided = decided | tie_broken
        used = ", ".join(f"{names[j]} (weight {w:.2f}, agreement {a:.2f} on {m})" for j, (w, a, m) in ties.items())
        notes.append(f"{int(tie_broken.sum())} items the kept verifiers left undecided were ordered by the "
                     f"tie-breakers: {used or 'none (no verifier was dropped as near chance)'}; their p stays within "
                     f"{TIE_BREAK_SPAN} of 1/2")
    weights = np.zeros(k)
    if live and method == "majority":
        weights[live] = 1.0
    elif acc_units is not None:
        au = np.clip(acc_units, _EPS, 1 - _EPS)
        for j in live:
            weights[j] = math.log(au[unit_of[j]] / (1 - au[unit_of[j]]))
    elif live:
        weights[live] = 1.0
    members = []
    for j in range(k):
        col = v[:, j]
        voted = col != 0
        nv = int(voted.sum())
        kept = j in unit_of
        agree = None
        if nv:
            ok = voted & (dec != 0)
            agree = float((col[ok] == dec[ok]).mean()) if ok.any() else None
        accuracy = sens = spec = None
        if kept and j in acc_triplet:
            accuracy = acc_triplet[j]
        elif kept and member_rates is not None:
            accuracy = float(member_rates[2][j])
        if kept and member_rates is not None and method == "dawid-skene":
            sens, spec = float(member_rates[0][j]), float(member_rates[1][j])
        unit = units[unit_of[j]] if kept else []
        members.append(Member(
            name=names[j], coverage=float((~np.isnan(x[:, j])).mean()) if n else 0.0, votes=nv,
            rate_a=float((col == 1).sum() / nv) if nv else None, accuracy=accuracy, sensitivity=sens,
            specificity=spec, weight=float(weights[j]), agreement=agree, kept=kept, reason=drop.get(j, ""),
            unit=" + ".join(names[i] for i in unit) if len(unit) > 1 else "",
            tie_weight=ties[j][0] if j in ties else 0.0))
    return Ensemble(p=p, members=members, method=method, prior=float(prior), notes=notes,
                    iterations=iterations, converged=converged, levels=levels, voted=decided, symmetric=symmetric,
                    tie_broken=tie_broken)
