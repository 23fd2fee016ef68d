"""What bench/judge_fidelity.py measured for a judge, so that ``rank`` can show it next to the
leaderboard: how far to trust an embedded judge before deciding anything on it."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

FIDELITY_FILE = "fidelity.json"


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    try:
        text = resources.files(__package__).joinpath(FIDELITY_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return {}
    return json.loads(text)


def measured_fidelity(judge_id: str) -> dict[str, Any] | None:
    """The benchmark's row for ``judge_id`` (clear-cut accuracy, gaming systems beaten, Spearman
    against Chatbot Arena, position consistency, seconds per verdict), or ``None`` when this exact
    judge (model file, template, context size) was never measured."""
    row = _table().get("judges", {}).get(judge_id)
    return None if row is None else {**row, "bench": _table().get("bench"), "measured": _table().get("measured")}
