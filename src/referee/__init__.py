"""referee: judge LLM outputs without reference answers and turn the judgments into decisions.

The stages, each a subpackage: :mod:`referee.load` → :mod:`referee.plan` → :mod:`referee.judge`
→ :mod:`referee.store` → :mod:`referee.outcomes` → :mod:`referee.rate` → :mod:`referee.report`.
:func:`rank` wires them. The improvement stages sit on top: :func:`referee.generate.generate`,
:func:`select_rows` (best of n), :func:`referee.revise.revise` (critique and revise).

The names below are imported on first use, so that ``import referee.rate`` (the numeric core)
loads numpy and scipy only, not the pipeline, its HTTP client or its templates.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

_WHERE = {
    "RankOptions": "._pipeline", "RankResult": "._pipeline", "rank": "._pipeline",
    "RefereeError": ".errors",
    "PairwiseLogprobJudge": ".judge", "judge_comparisons": ".judge", "make_judge": ".judge",
    "CandidateSet": ".load", "load_candidates": ".load",
    "Comparison": ".plan", "make_planner": ".plan", "round_robin": ".plan", "vs_baseline": ".plan",
    "RatingTable": ".rate", "rate_pairwise": ".rate",
    "VerdictStore": ".store",
    "load_preferences": ".export", "select_rows": ".export",
}

__all__ = sorted([*_WHERE, "__version__"])

if TYPE_CHECKING:
    from ._pipeline import RankOptions, RankResult, rank
    from .errors import RefereeError
    from .judge import PairwiseLogprobJudge, judge_comparisons, make_judge
    from .load import CandidateSet, load_candidates
    from .plan import Comparison, make_planner, round_robin, vs_baseline
    from .rate import RatingTable, rate_pairwise
    from .store import VerdictStore
    from .export import load_preferences, select_rows


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'referee' has no attribute {name!r}")
    value = getattr(import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
