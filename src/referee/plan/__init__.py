"""Plan stage: which comparisons to ask the judges for. Pure functions over names."""

from ._adaptive import UNTIL_RULES, AdaptivePlan
from ._make import PLANS, BudgetedPlan, make_planner
from ._pairs import Comparison, round_robin, vs_baseline
from ._protocol import Planner, StaticPlan
from ._tournament import CALLS_PER_COMPARISON, TournamentPlan

__all__ = ["CALLS_PER_COMPARISON", "PLANS", "UNTIL_RULES", "AdaptivePlan", "BudgetedPlan", "Comparison",
           "Planner", "StaticPlan", "TournamentPlan", "make_planner", "round_robin", "vs_baseline"]
