"""Answers as judges, verifiers and replayed records return them, and the id of a judge's spec.

Dependency-free, so that backends (a replayed record is an answer), verifiers and judges can all
speak it without importing one another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    """What a judge said about one question, before the store gives it ids."""

    status: str
    p_first: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    raw: str = ""
    error: str | None = None
    prompt_tokens: int = 0
    latency_s: float = 0.0
    completion_tokens: int = 0


@dataclass
class ScoredAnswer(Answer):
    """An :class:`Answer` with a score (pointwise judges, verifiers) and the generated token count."""

    score: float | None = None
    completion_tokens: int = 0


def judge_id_for(prefix: str, spec: dict[str, Any]) -> str:
    """A stable id: ``prefix-`` and 16 hex digits of the sha256 of the canonical spec JSON."""
    return f"{prefix}-" + hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
