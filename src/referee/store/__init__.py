"""Store stage: every verdict, content-addressed, in SQLite, committed as it arrives."""

from ._records import POINTWISE_MODES, PairOutcome, Status, TextChanges, Verdict, question_key, text_hash, verdict_id
from ._sqlite import SCHEMA_VERSION, RunFolderLock, VerdictStore
from ._generations import Generated, GenerationStore, generation_key

__all__ = ["Generated", "GenerationStore", "generation_key", "POINTWISE_MODES", "SCHEMA_VERSION", "PairOutcome", "RunFolderLock", "Status", "TextChanges", "Verdict", "VerdictStore",
           "question_key", "text_hash", "verdict_id"]
