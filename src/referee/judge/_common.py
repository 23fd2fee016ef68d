"""Pieces shared by the judges beyond the logprob pairwise one."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..types import ScoredAnswer, judge_id_for  # noqa: F401  (judge_id_for: re-exported)
from ._truncate import fit


def yes_answer(res: Any, yes: str, no: str, min_mass: float, cut: list[bool]) -> ScoredAnswer:
    """A pointwise verdict from choice probabilities: score = P(yes) / (P(yes) + P(no)), or
    ``unparseable`` when the two carry less than ``min_mass`` of the probability."""
    y, n = res.probs[yes], res.probs[no]
    mass = y + n
    detail = {"p_yes": y, "p_no": n, "mass": mass, "truncated": cut, "score_kind": "probability",
              "evaluated_tokens": res.evaluated_tokens}
    raw = orjson.dumps({"top_next_tokens": res.top}).decode()
    if not mass >= min_mass:  # also catches NaN
        return ScoredAnswer(status="unparseable", detail=detail, raw=raw, prompt_tokens=res.prompt_tokens,
                            latency_s=res.latency_s, error=f"{yes}/{no} probability mass {mass:.3f} below {min_mass}",
                            completion_tokens=getattr(res, "completion_tokens", 0))
    return ScoredAnswer(status="ok", score=y / mass, detail=detail, raw=raw, prompt_tokens=res.prompt_tokens,
                        latency_s=res.latency_s, completion_tokens=getattr(res, "completion_tokens", 0))


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fit_texts(backend: Any, frame_tokens: int, question: str, texts: list[str],
              max_candidate_tokens: int, kinds: list[str] | None = None) -> tuple[str, list[str], list[bool]]:
    """Cut the question and the candidates so that all fit the backend's context with the frame
    (see :mod:`referee.judge._truncate`: the question keeps head and tail, the texts share one budget
    of at most ``max_candidate_tokens`` each, ``kinds`` picks each text's marker).

    Returns the question, the texts and the truncation flags (question first).
    """
    return fit(backend, frame_tokens, question, texts, max_candidate_tokens, kinds)
