"""``make_planner``: the one entry point the CLI uses to build a plan by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._adaptive import UNTIL_RULES, AdaptivePlan
from ._pairs import Comparison, round_robin, vs_baseline
from ._protocol import Planner, StaticPlan
from ._tournament import CALLS_PER_COMPARISON, TournamentPlan, shuffled_prompts

PLANS = ("round-robin", "baseline", "tournament", "adaptive")


class BudgetedPlan(StaticPlan):
    """A static plan cut to a budget: whole prompts in seeded random order, then a partial one."""

    def __init__(self, comparisons: Sequence[Comparison], name: str, budget: int | None) -> None:
        super().__init__(comparisons if budget is None else list(comparisons)[:budget], name)
        self.budget = budget
        self.available = len(comparisons)
        self.comparisons_issued = 0

    @property
    def judge_calls(self) -> int:
        """Judge calls handed out so far (2 per comparison)."""
        return CALLS_PER_COMPARISON * self.comparisons_issued

    def next_batch(self, results: Mapping[Comparison, float]) -> list[Comparison]:
        batch = super().next_batch(results)
        self.comparisons_issued += len(batch)
        if not batch:
            n = len(self.comparisons)
            self.stop_reason = f"{self.name} plan complete: {n} comparisons ({CALLS_PER_COMPARISON * n} judge calls)"
            if n < self.available:
                self.stop_reason += f", cut by the budget from {self.available}"
        return batch


def make_planner(name: str, answered: Mapping[str, Sequence[str]], *, baseline: str | None = None,
                 budget: int | None = None, until: str | None = None, seed: int = 0,
                 tolerance: float = 0.0) -> Planner:
    """Build the plan called ``name``: round-robin, baseline, tournament or adaptive.

    Args:
        name: the plan's name.
        answered: prompt id -> the systems that answered it.
        baseline: the reference system; required by ``baseline``, ignored otherwise.
        budget: at most this many comparisons. Each comparison is judged in both orders,
            so it costs 2 judge calls (the planners' ``judge_calls`` counts them). A static
            plan under a budget uses prompts in seeded random order.
        until: stopping rule of ``adaptive`` (``separated``); other plans refuse it.
        tolerance: rating points within which ``separated`` may call two neighbours tied
            instead of ordering them (see :class:`AdaptivePlan`); 0 demands the full order.
        seed: fixes every random choice; the same inputs and seed give the same plan.

    Raises:
        ValueError: unknown plan or rule, missing baseline, negative budget or tolerance, a
            tolerance without ``until``.
    """
    if budget is not None and budget < 0:
        raise ValueError(f"budget must be >= 0 comparisons (got {budget})")
    if until is not None and name != "adaptive":
        raise ValueError(f"--until applies to the adaptive plan only, not to '{name}'")
    if tolerance and until is None:
        raise ValueError("--tolerance applies to a stopping rule (--until separated) only")
    if name == "round-robin":
        order = answered if budget is None else {p: answered[p] for p in shuffled_prompts(answered, seed)}
        return BudgetedPlan(round_robin(order), name, budget)
    if name == "baseline":
        if baseline is None:
            raise ValueError("the baseline plan needs a baseline system (--baseline NAME)")
        order = answered if budget is None else {p: answered[p] for p in shuffled_prompts(answered, seed)}
        return BudgetedPlan(vs_baseline(order, baseline), name, budget)
    if name == "tournament":
        return TournamentPlan(answered, seed=seed, budget=budget)
    if name == "adaptive":
        if until is not None and until not in UNTIL_RULES:
            raise ValueError(f"unknown stopping rule '{until}' (known: {', '.join(UNTIL_RULES)})")
        return AdaptivePlan(answered, budget=budget, until=until, seed=seed, tolerance=tolerance)
    raise ValueError(f"unknown plan '{name}' (known: {', '.join(PLANS)})")
