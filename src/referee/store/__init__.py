"""Store stage: every verdict, content-addressed, in SQLite, committed as it arrives."""

from ._records import PairOutcome, Status, TextChanges, Verdict, question_key, text_hash, verdict_id
from ._sqlite import SCHEMA_VERSION, RunFolderLock, VerdictStore, combine_orders

__all__ = ["SCHEMA_VERSION", "PairOutcome", "RunFolderLock", "Status", "TextChanges", "Verdict", "VerdictStore",
           "combine_orders", "question_key", "text_hash", "verdict_id"]
