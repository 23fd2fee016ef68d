"""Verdict records and the content address that keys them."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["ok", "unparseable", "error"]

POINTWISE_MODES = ("pointwise", "verifier")
"""Modes whose verdicts score one candidate each (``Verdict.score``)."""


def _digest(parts: list[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        b = part.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))  # length-prefixed: no two part lists collide
        h.update(b)
    return h.hexdigest()


def text_hash(text: str) -> str:
    """sha256 of a text: how a verdict names the prompt and candidate texts it judged."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def question_key(judge_id: str, mode: str, prompt_text: str, outputs: list[str]) -> str:
    """Content address of a question put to a judge.

    The same judge asked about the same prompt text and the same candidate texts, in the same
    order, is the same question whatever the ids or system names: a resumed run, or a second
    run over overlapping data, never asks it twice.
    """
    return _digest([judge_id, mode, prompt_text, *outputs])


def verdict_id(question: str, prompt_id: str, systems: list[str]) -> str:
    """Id of one verdict row: a question as asked about named systems.

    Two systems with identical outputs pose the same question; each gets its own row (the
    answer is reused, not asked again) so that every comparison keeps its systems.
    """
    return _digest([question, prompt_id, *systems])


class Verdict(BaseModel):
    """One answer of one judge about one or more candidates in a given order.

    ``systems`` lists the systems in the order the judge saw them. For a pairwise verdict,
    ``p_first`` is P(the first shown is better), present only when ``status == "ok"``.
    ``detail`` holds mode-specific facts (letter probabilities, probability mass, truncation).
    ``texts`` binds the verdict to what it judged: :func:`text_hash` of the prompt text, then of
    each candidate text in ``systems`` order. Left ``None``, :meth:`VerdictStore.put` fills it from
    the store's candidates; an empty list marks a verdict upgraded from a schema-1 store whose
    texts had been replaced before the upgrade (it is never read as current).
    """

    verdict_id: str
    question: str
    judge_id: str
    mode: str
    prompt_id: str
    systems: list[str]
    status: Status
    p_first: float | None = None
    score: float | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    raw: str = ""
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost: float = 0.0
    created_at: str = ""
    texts: list[str] | None = None

    def detail_json(self) -> str:
        return json.dumps(self.detail, sort_keys=True, ensure_ascii=False)


class TextChanges(BaseModel):
    """What :meth:`VerdictStore.put_candidates` replaced: texts that differ from the stored ones.

    ``stale_verdicts`` counts the stored verdicts that were about the replaced texts; readers
    skip them from then on (they stay in the store, and count again if the texts come back).
    """

    prompts: int = 0
    candidates: int = 0
    stale_verdicts: int = 0

    def __bool__(self) -> bool:
        return bool(self.prompts or self.candidates)

    def notice(self) -> str:
        """One line for the screen and ``run.json``."""
        what = ([f"{self.candidates} candidate text(s)"] if self.candidates or not self.prompts else []) + \
            ([f"{self.prompts} prompt text(s)"] if self.prompts else [])
        return (f"{' and '.join(what)} changed since the texts last stored in this run folder; "
                f"{self.stale_verdicts} earlier verdict(s) about the old texts are kept in the store "
                "but not used")


class PairOutcome(BaseModel):
    """A pairwise comparison with its presentation orders combined (made by :mod:`referee.outcomes`).

    ``p_ab`` is P(system_a wins) when shown first, ``p_ba`` P(system_b wins) when shown first.
    ``p_a`` is P(system_a better): ``(p_ab + 1 - p_ba) / 2`` with both orders usable; with one, that
    order's value minus the judge's position effect ``position_adjust``, at ``weight`` 1/2.
    ``consistent`` is set only when both orders are usable: whether they gave the same three-way
    decision (a, b or tie).
    """

    judge_id: str
    prompt_id: str
    system_a: str
    system_b: str
    p_a: float
    p_ab: float | None = None
    p_ba: float | None = None
    consistent: bool | None = None
    weight: float = 1.0
    position_adjust: float = 0.0
    verdict_ids: list[str] = Field(default_factory=list)

    @property
    def n_orders(self) -> int:
        return (self.p_ab is not None) + (self.p_ba is not None)
