"""Rate stage: ratings with confidence intervals from pairwise verdicts.

Pure numpy/scipy over arrays of system indices; no files, no models. The main
entry points are :func:`rate_pairwise` (ratings, intervals, rank ranges in one
:class:`RatingTable`), :func:`bradley_terry` (just the ratings),
:func:`completed_bradley_terry` (the full round-robin's ratings from a plan that skipped pairs), :func:`elo`,
:func:`style_controlled_bt` (ratings with length/markdown effects removed) and
:func:`lc_win_rate` (AlpacaEval's length-controlled win rate).
"""

from ._bt import bradley_terry
from ._completed import completed_bootstrap, completed_bradley_terry, rate_completed
from ._elo import elo
from ._lc import LCResult, lc_win_rate, prompt_difficulty
from ._style import StyleFit, STYLE_FEATURES, style_controlled_bt, style_covariates, style_counts
from ._graph import Pairs
from ._table import (RatingTable, rank_ranges, rank_ranges_from_cov, rank_ranges_from_replicates, rate_pair_sums,
                     rate_pairwise)
from ._winrate import count_matrix, encode_pairs, expected_win_matrix, win_rate_matrix

__all__ = [
    "LCResult", "Pairs", "RatingTable", "STYLE_FEATURES", "StyleFit", "bradley_terry", "completed_bootstrap",
    "completed_bradley_terry", "count_matrix", "elo", "encode_pairs", "expected_win_matrix", "lc_win_rate",
    "prompt_difficulty", "rank_ranges", "rate_pair_sums", "rank_ranges_from_cov", "rank_ranges_from_replicates", "rate_completed",
    "rate_pairwise", "style_controlled_bt", "style_counts", "style_covariates", "win_rate_matrix",
]
