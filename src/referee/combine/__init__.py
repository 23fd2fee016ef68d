"""Combine stage: several judges/verifiers into one verdict without labels (weak supervision).

Pure numpy over an items x verifiers matrix of P(a better) (``NaN`` = no verdict). The entry point
is :func:`combine` (screening, a Dawid–Skene or triplet label model symmetric under swapping a and b,
one probability per decided item and a table of estimated accuracies); :func:`majority_vote` is the
baseline; :func:`best_of_n` picks one candidate among n from pairwise probabilities. Reading and
writing verdict files lives in :mod:`referee.combine._io` (re-exported here: :func:`read_verdicts`,
:func:`store_ensemble`, ...).
"""

from ._calibrate import PlattCalibrator
from ._bestof import BestOfN, best_of_n, pairwise_strengths
from ._ensemble import METHODS, Ensemble, Member, combine, majority_vote
from ._labelmodel import dawid_skene, triplet_signal
from ._normalize import normalize_outputs, to_votes
from ._io import (VerdictTable, combined_rows, ensemble_id, ensemble_outcomes, is_store, parse_outcome, read_verdicts,
                  read_verdicts_jsonl, read_verdicts_store, store_ensemble, store_path)
from .._jsonl import write_jsonl

__all__ = ["BestOfN", "PlattCalibrator", "Ensemble", "METHODS", "Member", "best_of_n", "combine", "dawid_skene", "majority_vote",
           "normalize_outputs", "pairwise_strengths", "to_votes", "triplet_signal",
           "VerdictTable", "combined_rows", "ensemble_id", "ensemble_outcomes", "is_store", "parse_outcome", "read_verdicts", "read_verdicts_jsonl", "read_verdicts_store",
           "store_ensemble", "store_path", "write_jsonl"]
