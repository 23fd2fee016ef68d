"""Store stage: every verdict, content-addressed, in SQLite, committed as it arrives."""

from ._records import POINTWISE_MODES, PairOutcome, Status, TextChanges, Verdict, question_key, text_hash, verdict_id
from ._sqlite import SCHEMA_VERSION, RunFolderLock, VerdictStore

__all__ = ["POINTWISE_MODES", "SCHEMA_VERSION", "PairOutcome", "RunFolderLock", "Status", "TextChanges", "Verdict", "VerdictStore",
           "question_key", "text_hash", "verdict_id"]
