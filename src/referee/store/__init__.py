"""Store stage: every verdict, content-addressed, in SQLite, committed as it arrives."""

from ._records import PairOutcome, Status, Verdict, question_key, verdict_id
from ._sqlite import VerdictStore, combine_orders

__all__ = ["PairOutcome", "Status", "Verdict", "VerdictStore", "combine_orders", "question_key", "verdict_id"]
