"""referee: judge LLM outputs without reference answers and turn the judgments into decisions.

The stages, each a subpackage: :mod:`referee.load` → :mod:`referee.plan` → :mod:`referee.judge`
→ :mod:`referee.store` → :mod:`referee.rate` → :mod:`referee.report`. :func:`rank` wires them.
"""

from ._pipeline import RankOptions, RankResult, rank
from ._version import __version__
from .errors import RefereeError
from .judge import PairwiseLogprobJudge, judge_comparisons, make_judge
from .load import CandidateSet, load_candidates
from .plan import Comparison, make_planner, round_robin, vs_baseline
from .rate import RatingTable, rate_pairwise
from .store import VerdictStore

__all__ = [
    "CandidateSet", "Comparison", "PairwiseLogprobJudge", "RankOptions", "RankResult", "RatingTable",
    "RefereeError", "VerdictStore", "__version__", "judge_comparisons", "load_candidates", "make_judge",
    "make_planner", "rank", "rate_pairwise", "round_robin", "vs_baseline",
]
