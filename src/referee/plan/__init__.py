"""Plan stage: which comparisons to ask the judges for. Pure functions over names."""

from ._pairs import Comparison, round_robin, vs_baseline
from ._protocol import Planner, StaticPlan

__all__ = ["Comparison", "Planner", "StaticPlan", "round_robin", "vs_baseline"]
