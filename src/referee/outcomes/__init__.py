"""Outcomes stage: stored verdicts into pairwise outcomes, and outcomes into a run's ratings.

The one road from the store to ratings. Every reader — ``rank``, ``referee rate RUN``, the report,
``combine``, ``audit`` and ``export`` — turns verdicts into outcomes with
:func:`judge_outcomes` / :func:`outcomes_from_verdicts`, and a run's ratings come from
:func:`rate_run`. Pairwise verdicts are combined over the two presentation orders
(:func:`combine_orders`: a comparison judged in one order only counts half, with the judge's
measured position effect taken off); pointwise scores and listwise rankings become pairs
(:func:`pointwise_outcomes`, :func:`listwise_outcomes`). For logs too large for Python objects,
:func:`pair_sums` takes the same road in SQL (DuckDB), down to the unique-pair sums.
"""

from ._behaviour import RunStats, agreement, longer_wins, oriented, run_stats
from ._modes import POINTWISE_MODES, compare_scores, listwise_outcomes, pointwise_outcomes
from ._orders import TIE_TOLERANCE, combine_orders, consistent, decision, from_orders, pairwise_outcomes, position_effect
from ._ratings import (FALLBACK_REG, OutcomeArrays, RunRatings, outcome_arrays, quick_ratings, rate_outcomes,
                       rate_run, style_fit)
from ._read import ENSEMBLE_PREFIX, ensemble_outcomes_of, judge_outcomes, outcomes_from_verdicts
from ._sql import PairSums, pair_sums

__all__ = ["ENSEMBLE_PREFIX", "FALLBACK_REG", "POINTWISE_MODES", "TIE_TOLERANCE", "OutcomeArrays", "RunRatings",
           "RunStats", "agreement", "combine_orders", "compare_scores", "consistent", "decision",
           "ensemble_outcomes_of", "from_orders", "judge_outcomes", "listwise_outcomes", "longer_wins",
           "oriented", "outcome_arrays", "outcomes_from_verdicts", "PairSums", "pair_sums", "pairwise_outcomes", "pointwise_outcomes",
           "position_effect", "quick_ratings", "rate_outcomes", "rate_run", "run_stats", "style_fit"]
