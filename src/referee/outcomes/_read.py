"""Stored verdicts into outcomes: the one road every reader takes (rank, rate, report, combine, audit, export)."""

from __future__ import annotations

from collections.abc import Iterable

from ..store import PairOutcome, Verdict, VerdictStore
from ._modes import POINTWISE_MODES, listwise_outcomes, pointwise_outcomes
from ._orders import pairwise_outcomes

ENSEMBLE_PREFIX = "ens-"
"""Judge id prefix of stored label-free ensembles (``referee combine``, ``rank --judges``)."""


def ensemble_outcomes_of(verdicts: Iterable[Verdict]) -> list[PairOutcome]:
    """A stored ensemble's verdicts as they are: one posterior P(a better) per item, no presentation
    order (the members' orders were combined before), full weight."""
    return [PairOutcome(judge_id=v.judge_id, prompt_id=v.prompt_id, system_a=v.systems[0], system_b=v.systems[1],
                        p_a=v.p_first, consistent=v.detail.get("consistent"),
                        verdict_ids=list(v.detail.get("member_verdict_ids") or [v.verdict_id]))
            for v in verdicts if v.status == "ok" and v.p_first is not None and len(v.systems) == 2]


def outcomes_from_verdicts(verdicts: Iterable[Verdict]) -> list[PairOutcome]:
    """Pairwise outcomes of any judges' verdicts, whatever their mode: pairwise (orders combined,
    :func:`~referee.outcomes.combine_orders`), pointwise and verifier scores (every two scored
    systems of a prompt), listwise rankings (full rank breaking) and stored ensembles."""
    ens, pair, point, lists = [], [], [], []
    for v in verdicts:
        if v.judge_id.startswith(ENSEMBLE_PREFIX):
            ens.append(v)
        elif v.mode == "pairwise":
            pair.append(v)
        elif v.mode in POINTWISE_MODES:
            point.append(v)
        elif v.mode == "listwise":
            lists.append(v)
    return pairwise_outcomes(pair) + pointwise_outcomes(point) + listwise_outcomes(lists) + ensemble_outcomes_of(ens)


def judge_outcomes(store: VerdictStore, judge_id: str | None = None, *, verdict_ids: Iterable[str] | None = None,
                   current: bool = True) -> list[PairOutcome]:
    """The outcomes of one judge's stored verdicts (of every judge with ``judge_id=None``, screening
    verdicts aside), only those in ``verdict_ids`` when given.

    Only verdicts about the store's current texts count (``current=False``: all, but never two
    texts in one outcome). Comparisons without a usable verdict are left out; their unparseable
    and error verdicts are counted by :meth:`~referee.store.VerdictStore.status_counts`.
    """
    wanted = None if verdict_ids is None else set(verdict_ids)
    return outcomes_from_verdicts(v for v in store.verdicts(judge_id=judge_id, current=current)
                                  if wanted is None or v.verdict_id in wanted)
