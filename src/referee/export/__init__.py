"""Export stage: preference data for training, and best-of-n picks.

:func:`load_preferences` reads combined verdicts (a run store, a ``referee combine`` JSONL, or
external verdicts combined on the fly) with their texts; :func:`dpo_rows`, :func:`ranked_rows` and
:func:`kto_rows` build rows in the formats trainers read (TRL's DPO ``prompt/chosen/rejected``, a
ranked list per prompt, KTO ``prompt/completion/label``), each carrying its probability/margin, the
judges' agreement and the verdict ids; :func:`write_rows` writes JSONL or Parquet and
:func:`to_dataset` gives a ``datasets.Dataset``. :func:`select_rows` is best-of-n per prompt.
"""

from ._build import FORMATS, ExportStats, Filters, base_system, build_rows, dpo_rows, filtered_pairs, kto_rows, ranked_rows, select_rows
from ._source import Preferences, load_preferences
from ._write import WRITE_FORMATS, to_dataset, write_rows


def export_dataset(source, fmt: str = "dpo", *, filters: Filters | None = None, judges=None, candidates=None,
                   chat: bool = False):
    """``datasets.Dataset`` of preference rows straight from a run folder/store or verdict file."""
    prefs = load_preferences(source, judges=judges, candidates=candidates)
    filters = filters or Filters(flagged=frozenset(prefs.flagged))
    rows, _ = build_rows(fmt, prefs.records, prefs.prompts, prefs.outputs, filters, chat=chat)
    return to_dataset(rows)


__all__ = ["FORMATS", "WRITE_FORMATS", "ExportStats", "Filters", "Preferences", "base_system", "build_rows", "dpo_rows",
           "export_dataset", "filtered_pairs", "kto_rows", "load_preferences", "ranked_rows", "select_rows",
           "to_dataset", "write_rows"]
