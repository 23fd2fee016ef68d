"""Pairwise verdicts of one judge, both presentation orders, into one outcome per comparison.

A judge that prefers the response shown first by ``delta`` (in probability) says
``p_ab = q + delta`` with ``a`` shown first and ``p_ba = 1 - q + delta`` with ``b`` first, where
``q`` is P(a better). The mean over the two orders, ``(p_ab + 1 - p_ba) / 2``, is ``q``: the
position effect cancels. A comparison with one usable order (the other unparseable, an error,
or never asked because a cost limit stopped the run) carries the effect whole, and only half the
evidence. So such a comparison is weighted 1/2 and the judge's position effect, measured on its
comparisons with both orders in the same call (``delta = mean((p_ab + p_ba - 1) / 2)``), is taken
off it. Bradley–Terry's likelihood is linear in the outcomes, so this moment correction removes
the effect from the sufficient statistics in expectation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..store import PairOutcome, Verdict

# Outcomes closer than this to 1/2 are ties (soft probabilities are never exactly 1/2 by chance).
TIE_TOLERANCE = 1e-9


def decision(p: float) -> int:
    """The three-way decision of an outcome P(a better): ``1`` a, ``-1`` b, ``0`` tie."""
    if abs(p - 0.5) <= TIE_TOLERANCE:
        return 0
    return 1 if p > 0.5 else -1


def consistent(p_ab: float | None, p_ba: float | None) -> bool | None:
    """Whether the two orders gave the same three-way decision (tie and tie agree); ``None``
    unless both are usable. ``p_ab``: P(a wins) with a shown first; ``p_ba``: P(b wins) with b first."""
    if p_ab is None or p_ba is None:
        return None
    return decision(p_ab) == decision(1.0 - p_ba)


def order_means(verdicts: Sequence[Verdict]) -> tuple[str, str, float | None, float | None]:
    """``(a, b, p_ab, p_ba)`` of one comparison's ok verdicts: ``a`` is the system shown first in the
    first verdict, repeats of an order are averaged."""
    a, b = verdicts[0].systems
    ab = [v.p_first for v in verdicts if v.systems == [a, b]]
    ba = [v.p_first for v in verdicts if v.systems == [b, a]]
    return a, b, (sum(ab) / len(ab) if ab else None), (sum(ba) / len(ba) if ba else None)


def position_effect(pairs: Iterable[tuple[float | None, float | None]]) -> float | None:
    """The judge's mean advantage for the first-shown response, ``mean((p_ab + p_ba - 1) / 2)`` over
    the comparisons with both orders usable; ``None`` when there are none."""
    both = [(x + y - 1.0) / 2.0 for x, y in pairs if x is not None and y is not None]
    return sum(both) / len(both) if both else None


def combine_orders(verdicts: list[Verdict], *, delta: float | None = 0.0) -> PairOutcome:
    """One :class:`PairOutcome` from the ok verdicts of one comparison.

    Both orders usable: ``p_a`` is their mean and the weight 1. One order: the weight is 1/2 and
    ``delta`` (the judge's :func:`position_effect`; ``None`` or 0: not known, nothing taken off) is
    removed from that order's P(first wins) before it becomes ``p_a``.
    """
    a, b, p_ab, p_ba = order_means(verdicts)
    return from_orders(verdicts[0].judge_id, verdicts[0].prompt_id, a, b, p_ab, p_ba,
                       [v.verdict_id for v in verdicts], delta=delta)


def from_orders(judge_id: str, prompt_id: str, a: str, b: str, p_ab: float | None, p_ba: float | None,
                verdict_ids: list[str], *, delta: float | None = 0.0) -> PairOutcome:
    """The outcome of one comparison from its per-order means (see :func:`combine_orders`)."""
    d = delta or 0.0
    if p_ab is not None and p_ba is not None:
        p_a, weight, adjust = (p_ab + 1.0 - p_ba) / 2.0, 1.0, 0.0
    elif p_ab is not None:
        p_a, weight, adjust = min(1.0, max(0.0, p_ab - d)), 0.5, d
    elif p_ba is not None:
        p_a, weight, adjust = min(1.0, max(0.0, 1.0 - (p_ba - d))), 0.5, d
    else:
        raise ValueError(f"comparison {prompt_id}: {a} vs {b} has no usable order")
    return PairOutcome(judge_id=judge_id, prompt_id=prompt_id, system_a=a, system_b=b, p_a=p_a, p_ab=p_ab,
                       p_ba=p_ba, consistent=consistent(p_ab, p_ba), weight=weight, position_adjust=adjust,
                       verdict_ids=verdict_ids)


def pairwise_outcomes(verdicts: Iterable[Verdict]) -> list[PairOutcome]:
    """Every comparison among the ok pairwise ``verdicts``, orders combined by :func:`combine_orders`
    with each judge's own :func:`position_effect`.

    A comparison is one judge, one prompt text and one pair of candidate texts: verdicts about
    other texts under the same ids are never averaged together.
    """
    groups: dict[tuple, list[Verdict]] = {}
    for v in verdicts:
        if v.mode != "pairwise" or v.status != "ok" or v.p_first is None:
            continue
        shown = frozenset(zip(v.systems, v.texts[1:])) if v.texts else frozenset(v.systems)
        groups.setdefault((v.judge_id, v.prompt_id, v.texts[0] if v.texts else None, shown), []).append(v)
    means = {k: order_means(vs) for k, vs in groups.items()}
    deltas: dict[str, float | None] = {}
    for jid in {k[0] for k in groups}:
        deltas[jid] = position_effect((m[2], m[3]) for k, m in means.items() if k[0] == jid)
    return [combine_orders(vs, delta=deltas[k[0]]) for k, vs in groups.items()]
