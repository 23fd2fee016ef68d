"""How far to trust a judge: agreement, kappa, consistency, length and self preference, calibration.

Pure numpy over per-item arrays. Probabilities and labels are P(a better): 1 = a, 0 = b, 0.5 = tie
(human labels may be fractional, e.g. the share of annotators preferring a). ``NaN`` = missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def decisions(p: np.ndarray, tie_band: float = 0.0) -> np.ndarray:
    """+1 (a), -1 (b), 0 (tie, within ``tie_band`` of 0.5); NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    d = np.where(p > 0.5 + tie_band, 1.0, np.where(p < 0.5 - tie_band, -1.0, 0.0))
    return np.where(np.isnan(p), np.nan, d)


def agreement(judge: np.ndarray, labels: np.ndarray, *, ties: bool = True, tie_band: float = 0.0) -> float:
    """Share of items where the judge's verdict equals the label.

    ``ties=True``: three classes (a, b, tie), over every item both have. ``ties=False``: only items
    where neither the judge nor the label is a tie. NaN when no item qualifies.
    """
    dj, dl = decisions(judge, tie_band), decisions(labels)
    ok = ~np.isnan(dj) & ~np.isnan(dl)
    if not ties:
        ok &= (dj != 0) & (dl != 0)
    return float((dj[ok] == dl[ok]).mean()) if ok.any() else float("nan")


def accuracy(p: np.ndarray, labels: np.ndarray, *, tie_band: float = 0.0) -> float:
    """Share of items with a non-tie label that ``p`` gets right, a tie of ``p`` counting as half right
    (a coin flip): the fair score for comparing verdicts that may tie (e.g. a majority vote) with ones
    that never do. NaN in ``p`` counts as a tie; NaN when no item has a non-tie label."""
    dl = decisions(labels)
    ok = ~np.isnan(dl) & (dl != 0)
    if not ok.any():
        return float("nan")
    dj = np.nan_to_num(decisions(p, tie_band)[ok], nan=0.0)
    return float(np.where(dj == 0, 0.5, dj == dl[ok]).mean())


def cohen_kappa(judge: np.ndarray, labels: np.ndarray, *, ties: bool = True, tie_band: float = 0.0) -> float:
    """Cohen's κ between the judge's and the labels' verdicts (classes a / b / tie; ties dropped if not ``ties``).

    κ = (p_o − p_e) / (1 − p_e) with p_e from the two marginals; 1.0 when both always give the same
    single class (p_e = 1 and full agreement), NaN when no item qualifies.
    """
    dj, dl = decisions(judge, tie_band), decisions(labels)
    ok = ~np.isnan(dj) & ~np.isnan(dl)
    if not ties:
        ok &= (dj != 0) & (dl != 0)
    if not ok.any():
        return float("nan")
    dj, dl = dj[ok], dl[ok]
    po = float((dj == dl).mean())
    pe = sum(float((dj == c).mean()) * float((dl == c).mean()) for c in (-1.0, 0.0, 1.0))
    if pe >= 1.0 - 1e-12:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1 - pe)


def position_consistency(consistent: np.ndarray) -> float:
    """Share of pairs judged in both orders whose winner survived the swap (1/0 per pair, NaN = one order)."""
    c = np.asarray(consistent, dtype=np.float64)
    c = c[~np.isnan(c)]
    return float(c.mean()) if c.size else float("nan")


def longer_preference(p: np.ndarray, len_a: np.ndarray, len_b: np.ndarray) -> float:
    """Share of non-tie verdicts on pairs of unequal length that pick the longer answer (0.5 = no preference)."""
    d = decisions(p)
    la, lb = np.asarray(len_a, dtype=np.float64), np.asarray(len_b, dtype=np.float64)
    ok = ~np.isnan(d) & (d != 0) & (la != lb) & ~np.isnan(la) & ~np.isnan(lb)
    if not ok.any():
        return float("nan")
    longer_is_a = la[ok] > lb[ok]
    return float(((d[ok] > 0) == longer_is_a).mean())


def family_preference(p: np.ndarray, is_family_a: np.ndarray, is_family_b: np.ndarray) -> float:
    """Share of non-tie verdicts on pairs with exactly one system of the judge's family that pick that system."""
    d = decisions(p)
    fa, fb = np.asarray(is_family_a, dtype=bool), np.asarray(is_family_b, dtype=bool)
    ok = ~np.isnan(d) & (d != 0) & (fa != fb)
    if not ok.any():
        return float("nan")
    return float(((d[ok] > 0) == fa[ok]).mean())


def reliability(p: np.ndarray, labels: np.ndarray, bins: int = 10) -> tuple[list[dict[str, float]], float]:
    """Reliability of the judge's confidence, and its expected calibration error (ECE).

    Confidence is ``max(p, 1 - p)`` (the probability given to the side it chose); an item scores 1
    when the label sides with that choice, 0 when against, 0.5 for a tied label. Bins split [0.5, 1]
    evenly; ECE = Σ_b (n_b / n) |mean confidence_b − mean score_b|. Judge ties (p = 0.5) count in the
    first bin with score 0.5 for any label.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    ok = ~np.isnan(p) & ~np.isnan(y)
    p, y = p[ok], y[ok]
    if not p.size:
        return [], float("nan")
    conf = np.maximum(p, 1 - p)
    score = np.where(p > 0.5, y, np.where(p < 0.5, 1 - y, 0.5))
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if not m.any():
            continue
        c, s = float(conf[m].mean()), float(score[m].mean())
        table.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int(m.sum()), "confidence": c,
                      "accuracy": s})
        ece += m.sum() / p.size * abs(c - s)
    return table, float(ece)


def ece(p: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    return reliability(p, labels, bins)[1]


def bootstrap_interval(stat: Callable[..., float], arrays: list[np.ndarray], *, n_boot: int = 1000, seed: int = 0,
                       level: float = 0.95, cluster: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(*arrays)`` over items (or over ``cluster`` groups, e.g. prompts).

    Replicates where the statistic is undefined (NaN) are skipped; (NaN, NaN) if fewer than 10 remain.
    """
    n = len(arrays[0])
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if cluster is not None:
        _, groups = np.unique(np.asarray(cluster), return_inverse=True)
        members = [np.flatnonzero(groups == g) for g in range(groups.max() + 1)]
    vals = []
    for _ in range(n_boot):
        if cluster is None:
            idx = rng.integers(0, n, n)
        else:
            pick = rng.integers(0, len(members), len(members))
            idx = np.concatenate([members[g] for g in pick])
        v = stat(*[a[idx] for a in arrays])
        if not np.isnan(v):
            vals.append(v)
    if len(vals) < 10:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(vals, [tail, 100 - tail])
    return float(lo), float(hi)


@dataclass
class Metric:
    name: str
    value: float | None
    lo: float | None
    hi: float | None
    n: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class AuditReport:
    """Every metric with its bootstrap interval; ``reliability`` holds the calibration bins."""

    judge: str
    metrics: list[Metric]
    reliability: list[dict[str, float]] = field(default_factory=list)
    level: float = 0.95

    def get(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"judge": self.judge, "level": self.level, "metrics": [m.to_dict() for m in self.metrics],
                "reliability": self.reliability}


def _clean(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def audit_judge(p: np.ndarray, labels: np.ndarray | None = None, *, judge: str = "judge",
                consistent: np.ndarray | None = None, len_a: np.ndarray | None = None,
                len_b: np.ndarray | None = None, family_a: np.ndarray | None = None,
                family_b: np.ndarray | None = None, others: dict[str, np.ndarray] | None = None,
                cluster: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                bins: int = 10) -> AuditReport:
    """Audit one judge's verdicts ``p`` (P(a better) per item), with or without human ``labels``.

    Without labels only the label-free parts are reported: position consistency, preference for the
    longer answer, preference for its own family, agreement and κ with each of ``others``. With
    labels, also agreement (with and without ties), κ, the labels' own longer/family preference (for
    comparison), and calibration (ECE with reliability bins). Every number has a percentile
    bootstrap interval over items (or ``cluster`` groups).
    """
    p = np.asarray(p, dtype=np.float64)
    metrics: list[Metric] = []

    def add(name, fn, arrays, note=""):
        arrays = [np.asarray(a) for a in arrays]
        val = fn(*arrays)
        lo, hi = bootstrap_interval(fn, arrays, n_boot=n_boot, seed=seed, level=level, cluster=cluster)
        have = np.all([~np.isnan(np.asarray(a, dtype=np.float64)) for a in arrays], axis=0)
        metrics.append(Metric(name, _clean(val), _clean(lo), _clean(hi), int(np.sum(have)), note))

    rel: list[dict[str, float]] = []
    if labels is not None:
        y = np.asarray(labels, dtype=np.float64)
        add("agreement", lambda a, b: agreement(a, b, ties=True), [p, y], "a / b / tie must match")
        add("agreement (no ties)", lambda a, b: agreement(a, b, ties=False), [p, y],
            "items where neither judge nor label is a tie")
        add("accuracy", accuracy, [p, y], "non-tie labels; a judge tie counts half")
        add("cohen kappa", lambda a, b: cohen_kappa(a, b, ties=True), [p, y])
        add("cohen kappa (no ties)", lambda a, b: cohen_kappa(a, b, ties=False), [p, y])
        add("ece", lambda a, b: ece(a, b, bins), [p, y], f"{bins} bins of confidence max(p, 1-p)")
        rel = reliability(p, y, bins)[0]
    if consistent is not None:
        add("position consistency", position_consistency, [np.asarray(consistent, dtype=np.float64)],
            "same winner with the order swapped")
    if len_a is not None and len_b is not None:
        add("prefers longer", longer_preference, [p, len_a, len_b], "0.5 = no length preference")
        if labels is not None:
            add("labels prefer longer", longer_preference, [np.asarray(labels, dtype=np.float64), len_a, len_b],
                "the same on the human labels, for comparison")
    if family_a is not None and family_b is not None and np.any(np.asarray(family_a) != np.asarray(family_b)):
        add("prefers own family", family_preference, [p, family_a, family_b],
            "pairs with exactly one system of the judge's model family")
        if labels is not None:
            add("labels prefer judge's family", family_preference, [np.asarray(labels, dtype=np.float64), family_a,
                                                                     family_b])
    for name, q in (others or {}).items():
        q = np.asarray(q, dtype=np.float64)
        add(f"agreement with {name}", lambda a, b: agreement(a, b, ties=False), [p, q], "non-tie verdicts of both")
        add(f"kappa with {name}", lambda a, b: cohen_kappa(a, b, ties=False), [p, q])
    return AuditReport(judge=judge, metrics=metrics, reliability=rel, level=level)
