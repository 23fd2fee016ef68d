"""Several verifiers into one probability per item, without labels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._dedup import screen_verifiers
from ._labelmodel import dawid_skene, symmetric_posterior, triplet_signal
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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Ensemble:
    """The combined verdicts and the table of members.

    ``p[i]`` is the calibrated (under the label model) P(a better / positive) for item ``i``;
    never NaN: an item no kept verifier voted on gets the estimated prior.
    """

    p: np.ndarray
    members: list[Member]
    method: str
    prior: float
    notes: list[str] = field(default_factory=list)
    iterations: int = 0
    converged: bool = True

    @property
    def kept(self) -> list[str]:
        return [m.name for m in self.members if m.kept]

    def table(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self.members]


def majority_vote(p: np.ndarray, tie_band: float = 0.0) -> np.ndarray:
    """Share of non-tie votes that say "a" per item (0.5 when nobody voted or votes split evenly)."""
    v = to_votes(normalize_outputs(p) if np.ndim(p) == 2 else p, tie_band)
    pos = (v == 1).sum(axis=1)
    tot = (v != 0).sum(axis=1)
    return np.where(tot > 0, pos / np.maximum(tot, 1), 0.5)


def combine(x: np.ndarray, names: list[str] | None = None, *, kinds: list[str] | str = "probability",
            method: str = "dawid-skene", tie_band: float = 0.0, dedup: bool = True, drop_uninformative: bool = True,
            smoothing: float = 1.0, min_overlap: int = 10) -> Ensemble:
    """Combine verifiers' outputs on the same items into one probability per item, without labels.

    Args:
        x: items x verifiers; each column a verifier's P(a better) (or binary check / score, see
            ``kinds``), ``NaN`` where it gave no verdict.
        names: one per column (default ``j0, j1, ...``).
        kinds: ``probability``, ``binary`` or ``score`` per column (see :func:`normalize_outputs`).
        method: ``dawid-skene`` (EM over sensitivity/specificity, started from triplet estimates),
            ``triplet`` (method-of-moments accuracies, symmetric log-odds weights) or ``majority``.
        tie_band: outputs within this distance of 0.5 are ties (abstentions).
        dedup: drop near-duplicate verifiers (correlated errors) before fitting.
        drop_uninformative: drop verifiers with no or constant verdicts, or at chance.

    Fallbacks, each written to ``notes``: with one usable verifier its own (normalised) output is the
    ensemble; with two, they are weighted equally (their accuracies are not identifiable apart);
    with no usable verifier every item gets 0.5.
    """
    x = normalize_outputs(np.asarray(x, dtype=np.float64), kinds)
    n, k = x.shape
    names = list(names) if names is not None else [f"j{j}" for j in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} verifiers")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    v = to_votes(x, tie_band)
    notes: list[str] = []
    drop: dict[int, str] = {}
    if drop_uninformative or dedup:
        drop = screen_verifiers(v, min_overlap=min_overlap)
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
    vl = v[:, live]
    sens = spec = acc = None
    prior = 0.5
    iterations, converged = 0, True
    weights = np.zeros(k)
    if not live:
        notes.append("no verifier gave a usable verdict: every item gets 0.5")
        p = np.full(n, 0.5)
    elif method == "majority":
        p = majority_vote(x[:, live], tie_band)
        weights[live] = 1.0
    elif len(live) == 1:
        j = live[0]
        notes.append(f"one usable verifier ({names[j]}): the ensemble is its own verdict; accuracy not estimable")
        col = x[:, j]
        p = np.where(np.isnan(col), 0.5, col)
        weights[j] = 1.0
    elif len(live) == 2:
        notes.append("two usable verifiers: accuracies are not identifiable apart; weighted equally "
                     "(a tie between them gives 0.5)")
        m = (vl[:, 0] * vl[:, 1])[(vl[:, 0] != 0) & (vl[:, 1] != 0)]
        agree = float(m.mean()) if m.size else 0.0
        common = math.sqrt(max(agree, 0.0)) if agree > 0 else 0.0
        acc = np.full(2, (1 + min(common, 0.98)) / 2)
        p = symmetric_posterior(vl, acc)
        weights[live] = np.log(acc / (1 - acc))
    else:
        a = triplet_signal(vl, min_overlap=min_overlap)
        a = np.where(np.isnan(a), np.nanmedian(a) if np.isfinite(a).any() else 0.2, a)
        acc = np.clip((1 + a) / 2, 0.5 + 1e-3, 0.98)
        # Class prior from E[v_j] = a_j (2 pi - 1), averaged over verifiers.
        with np.errstate(invalid="ignore", divide="ignore"):
            mv = np.array([vl[vl[:, j] != 0, j].mean() if (vl[:, j] != 0).any() else 0.0 for j in range(len(live))])
        ratio = mv / np.maximum(2 * acc - 1, 0.05)
        prior = float(np.clip((1 + np.median(ratio)) / 2, 0.02, 0.98))
        q0 = symmetric_posterior(vl, acc, prior)
        if method == "triplet":
            p = q0
            weights[live] = np.log(acc / (1 - acc))
        else:
            fit = dawid_skene(vl, q0, smoothing=smoothing)
            p, sens, spec, prior = fit["q"], fit["sens"], fit["spec"], fit["prior"]
            iterations, converged = fit["iterations"], fit["converged"]
            if not converged:
                notes.append(f"EM stopped after {iterations} iterations without converging")
            acc = prior * sens + (1 - prior) * spec
            weights[live] = np.log(acc / (1 - acc))
    p = np.clip(np.nan_to_num(p, nan=prior), 1e-6, 1 - 1e-6)
    if not live:
        prior = 0.5
    dec = np.sign(p - 0.5)
    members = []
    for j in range(k):
        col = v[:, j]
        voted = col != 0
        nv = int(voted.sum())
        li = live.index(j) if j in live else None
        agree = None
        if nv:
            ok = voted & (dec != 0)
            agree = float((col[ok] == dec[ok]).mean()) if ok.any() else None
        members.append(Member(
            name=names[j], coverage=float((~np.isnan(x[:, j])).mean()) if n else 0.0, votes=nv,
            rate_a=float((col == 1).sum() / nv) if nv else None,
            accuracy=None if (li is None or acc is None) else float(acc[li]),
            sensitivity=None if (li is None or sens is None) else float(sens[li]),
            specificity=None if (li is None or spec is None) else float(spec[li]),
            weight=float(weights[j]), agreement=agree, kept=j in live, reason=drop.get(j, "")))
    return Ensemble(p=p, members=members, method=method, prior=float(prior), notes=notes,
                    iterations=iterations, converged=converged)
