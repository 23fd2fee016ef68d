"""Plan stage: which comparisons to ask the judges for. Pure functions over names.

Plans (:func:`make_planner`): ``round-robin`` (all pairs on every prompt), ``baseline`` (every
system against one), ``tournament`` (a seeded single-elimination bracket per prompt) and
``adaptive`` (batches chosen from the current ratings and their uncertainty). A budget counts
comparisons; each comparison is judged in both orders, i.e. 2 judge calls
(:data:`CALLS_PER_COMPARISON`; every planner's ``judge_calls`` counts them).
"""

from ._adaptive import UNTIL_RULES, AdaptivePlan
from ._make import PLANS, BudgetedPlan, make_planner
from ._pairs import Comparison, round_robin, vs_baseline
from ._protocol import Planner, StaticPlan
from ._tournament import CALLS_PER_COMPARISON, TournamentPlan

__all__ = ["CALLS_PER_COMPARISON", "PLANS", "UNTIL_RULES", "AdaptivePlan", "BudgetedPlan", "Comparison",
           "Planner", "StaticPlan", "TournamentPlan", "make_planner", "round_robin", "vs_baseline"]
