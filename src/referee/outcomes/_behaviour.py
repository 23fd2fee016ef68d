"""What the verdicts say about the judge: position consistency, first-position preference,
truncation, length preference and agreement between judges."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..store import PairOutcome, Verdict
from ._orders import decision, position_effect


@dataclass
class RunStats:
    """Facts about a judge on a run's verdicts.

    ``position_consistency`` is the share of comparisons with both orders usable whose two orders
    gave the same three-way decision (a, b or tie); ``first_position_rate`` the share of decided
    (non-tie) pairwise verdicts won by the response shown first; ``position_effect`` the judge's
    mean advantage for the first-shown response in probability (see :mod:`referee.outcomes`);
    ``pairs_one_order`` the comparisons rated from one order only (weight 1/2, corrected by it).
    """

    status: dict[str, int]
    pairs: int
    pairs_both_orders: int
    position_consistency: float | None
    first_position_rate: float | None
    truncated_candidates: int
    per_system_consistency: dict[str, float | None]
    per_system_verdicts: dict[str, int]
    pairs_one_order: int = 0
    position_effect: float | None = None

    def behaviour(self) -> dict:
        """The judge-behaviour record of ``run.json``."""
        return {"position_consistency": self.position_consistency, "first_position_rate": self.first_position_rate,
                "position_effect": self.position_effect, "pairs": self.pairs,
                "pairs_both_orders": self.pairs_both_orders, "pairs_one_order": self.pairs_one_order,
                "truncated_candidates": self.truncated_candidates}


def run_stats(verdicts: Sequence[Verdict], outcomes: Sequence[PairOutcome]) -> RunStats:
    """Position consistency, first-position preference and truncation of one run's verdicts."""
    status = {"ok": 0, "unparseable": 0, "error": 0}
    truncated: set[tuple[str, str]] = set()
    firsts = []
    per_n: dict[str, int] = {}
    for v in verdicts:
        status[v.status] += 1
        cut = v.detail.get("truncated") or []
        for system, flag in zip(v.systems, cut[1:]):
            if flag:
                truncated.add((v.prompt_id, system))
        if v.status == "ok":
            # every usable verdict that saw the system: two per pairwise comparison judged in both
            # orders, one per pointwise score, one per listwise ranking it was in
            for s in set(v.systems):
                per_n[s] = per_n.get(s, 0) + 1
            if v.p_first is not None and v.mode == "pairwise" and decision(v.p_first) != 0:
                firsts.append(v.p_first > 0.5)
    ordered = [o for o in outcomes if o.p_ab is not None or o.p_ba is not None]
    # ensemble outcomes carry their members' consistency without orders of their own
    both = [o for o in outcomes if o.consistent is not None]
    per_sys: dict[str, list[bool]] = {}
    for o in both:
        for s in (o.system_a, o.system_b):
            per_sys.setdefault(s, []).append(bool(o.consistent))
    return RunStats(
        status=status, pairs=len(outcomes), pairs_both_orders=len(both),
        position_consistency=(sum(bool(o.consistent) for o in both) / len(both)) if both else None,
        first_position_rate=(sum(firsts) / len(firsts)) if firsts else None,
        truncated_candidates=len(truncated),
        per_system_consistency={s: (sum(v) / len(v) if v else None) for s, v in per_sys.items()},
        per_system_verdicts=per_n,
        pairs_one_order=sum(o.weight < 1.0 for o in ordered),
        position_effect=position_effect((o.p_ab, o.p_ba) for o in ordered),
    )


def longer_wins(outcomes: Sequence[PairOutcome], texts: Mapping[tuple[str, str], str]) -> tuple[float | None, int]:
    """How often the longer of two answers won, among decided comparisons of unequal length:
    ``(share, comparisons)`` (descriptive; the style-controlled fit separates length from quality)."""
    won = decided = 0
    for o in outcomes:
        la, lb = len(texts.get((o.prompt_id, o.system_a), "")), len(texts.get((o.prompt_id, o.system_b), ""))
        if la == lb or decision(o.p_a) == 0:
            continue
        decided += 1
        won += (o.p_a > 0.5) == (la > lb)
    return (won / decided if decided else None), decided


def oriented(outcomes: Sequence[PairOutcome]) -> dict[tuple[str, str, str], float]:
    """(prompt, first-by-name, second-by-name) -> P(first-by-name better)."""
    out = {}
    for o in outcomes:
        if o.system_a <= o.system_b:
            out[(o.prompt_id, o.system_a, o.system_b)] = o.p_a
        else:
            out[(o.prompt_id, o.system_b, o.system_a)] = 1.0 - o.p_a
    return out


def agreement(by_judge: Mapping[str, Sequence[PairOutcome]], order: Sequence[str]) -> list[list[dict]]:
    """For every two judges in ``order``: on how many comparisons both decided (no tie), and the
    share of those where they picked the same winner (``None`` when none)."""
    o = {j: oriented(by_judge[j]) for j in order}
    rows = []
    for i in order:
        row = []
        for j in order:
            common = [k for k in o[i] if k in o[j] and decision(o[i][k]) != 0 and decision(o[j][k]) != 0]
            row.append({"n": len(common), "agree": (sum((o[i][k] > 0.5) == (o[j][k] > 0.5) for k in common)
                                                   / len(common)) if common else None})
        rows.append(row)
    return rows
