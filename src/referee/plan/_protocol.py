"""The planner protocol: plans that may depend on the verdicts already in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from ._pairs import Comparison


@runtime_checkable
class Planner(Protocol):
    """Hands out comparisons in batches, possibly steered by the outcomes so far.

    The run loop calls :meth:`next_batch` with the combined outcome of every comparison
    judged so far (P(system_a beats system_b), both orders averaged; comparisons whose
    verdicts were unusable are absent), judges the batch, and calls again until it gets an
    empty batch. Then :attr:`stop_reason` says why the plan ended. A planner must be
    deterministic for its inputs and seed, so that a resumed run asks for the same
    comparisons (already stored ones come back from the store at no cost).
    """

    stop_reason: str | None

    def next_batch(self, results: Mapping[Comparison, float]) -> list[Comparison]: ...


class StaticPlan:
    """A plan fixed in advance (round-robin, vs-baseline): one batch, then done."""

    def __init__(self, comparisons: Sequence[Comparison], name: str = "static") -> None:
        self.comparisons = list(comparisons)
        self.name = name
        self.stop_reason: str | None = None
        self._given = False

    def next_batch(self, results: Mapping[Comparison, float]) -> list[Comparison]:
        if self._given:
            self.stop_reason = "plan complete"
            return []
        self._given = True
        return list(self.comparisons)
