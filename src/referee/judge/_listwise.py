"""Listwise judge: rank k candidates in one call.

The candidates are shown as [1]..[k]; the judge answers with a ranking, best first. The answer
must be a permutation of 1..k, as JSON ``{"ranking": [...]}`` (schema-constrained where the
backend allows) or as plain text ``2 > 1 > 3``; anything else is ``unparseable``. The runner
presents each group forward and reversed, so order bias shows in the agreement of the two.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..backends import as_generator
from ..errors import BackendError
from ._common import ScoredAnswer, fit_texts, judge_id_for, text_sha256
from ._truncate import default_candidate_cap

LIST_SYSTEM = (
    "You are a careful, impartial judge of AI assistant responses. You will see a user's question and "
    "several numbered responses. Rank them from best to worst: correctness first, then relevance, "
    "completeness and clarity. Do not let the order or length of the responses influence you."
)
LIST_USER = (
    "[Question]\n{question}\n\n{responses}\n"
    "Rank all {k} responses from best to worst. Answer in JSON only: "
    '{{"ranking": [numbers of the responses, best first]}}, using each number from 1 to {k} exactly once.'
)

_TEXT_RANK = re.compile(r"^\s*\[?\s*(\d+)\s*\]?(?:\s*(?:>|,|>>)\s*\[?\s*(\d+)\s*\]?)*\s*\.?\s*$")
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?```\s*$", re.DOTALL)


def parse_permutation(text: str, k: int) -> list[int] | None:
    """The ranking as 0-based positions, best first, or ``None`` unless it is a permutation of 1..k.

    Accepted: ``{"ranking": [2, 1, 3]}`` (only that key; integers, not strings or booleans), a
    bare JSON list ``[2, 1, 3]``, or text ``2 > 1 > 3`` / ``[2] > [1] > [3]`` / ``2, 1, 3``.
    """
    if not isinstance(text, str) or k < 1:
        return None
    m = _FENCE.match(text)
    body = m.group(1) if m else text
    items: Any = None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        items = data["ranking"] if set(data) == {"ranking"} else None
    elif isinstance(data, list):
        items = data
    elif len(body) < 2_000 and _TEXT_RANK.match(" ".join(body.split())):  # "2 > 1 > 3" (or a lone "1")
        items = [int(x) for x in re.findall(r"\d+", body)]
    if not isinstance(items, list) or len(items) != k:
        return None
    if not all(type(x) is int for x in items):  # noqa: E721 - bool is an int subclass, refuse it
        return None
    if sorted(items) != list(range(1, k + 1)):
        return None
    return [x - 1 for x in items]


def ranking_schema(k: int) -> dict[str, Any]:
    return {"type": "object",
            "properties": {"ranking": {"type": "array", "items": {"enum": list(range(1, k + 1))},
                                       "minItems": k, "maxItems": k}},
            "required": ["ranking"], "additionalProperties": False}


class ListwiseJudge:
    """Ranks the candidates of one prompt in one call.

    Args:
        backend: an OpenAI-compatible backend or a llama.cpp backend (grammar-constrained).
        max_k: the most candidates in one call (the runner splits bigger sets into groups).
    """

    mode = "listwise"

    def __init__(self, backend: Any, *, system: str = LIST_SYSTEM, user: str = LIST_USER, max_k: int = 6,
                 max_tokens: int = 64, max_candidate_tokens: int | None = None, name: str | None = None) -> None:
        self.backend = as_generator(backend)
        self.system, self.user = system, user
        self.max_k = max_k
        self.max_tokens = max_tokens
        if max_candidate_tokens is None:  # k responses share the context: half the pairwise cap
            max_candidate_tokens = default_candidate_cap(self.backend.context_size, 3 / 16, 768)
        self.max_candidate_tokens = max_candidate_tokens
        desc = self.backend.describe()
        self.name = name or str(desc.get("model", "judge"))
        self.spec: dict[str, Any] = {
            "mode": self.mode, "method": "ranking of k candidates, schema-constrained JSON, validated permutation",
            "backend": desc, "template_sha256": text_sha256(json.dumps([system, user])), "max_k": max_k,
            "sampling": {"temperature": 0.0, "max_tokens": max_tokens}, "max_candidate_tokens": max_candidate_tokens,
        }
        self.judge_id = judge_id_for("lw", self.spec)
        self._frame = self.backend.count_tokens(system + user) + max_tokens + 64

    def messages(self, question: str, responses: list[str]) -> list[dict[str, str]]:
        block = "".join(f"[Response {i}]\n{r}\n[End of Response {i}]\n\n" for i, r in enumerate(responses, 1))
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user.format(question=question, responses=block, k=len(responses))}]

    def rank(self, question: str, responses: list[str]) -> ScoredAnswer:
        """Rank ``responses`` (in the order shown); ``detail["ranking"]`` is 0-based positions, best first."""
        k = len(responses)
        question, fitted, cut = fit_texts(self.backend, self._frame + 16 * k, question, list(responses),
                                          self.max_candidate_tokens)
        try:
            g = self.backend.generate(self.messages(question, fitted), max_tokens=self.max_tokens,
                                      json_schema=ranking_schema(k))
        except BackendError as e:
            return ScoredAnswer(status="error", error=str(e), detail={"truncated": cut})
        common = dict(raw=g.text, prompt_tokens=g.prompt_tokens, latency_s=g.latency_s,
                      completion_tokens=g.completion_tokens)
        detail: dict[str, Any] = {"truncated": cut, "k": k, "finish_reason": g.finish_reason}
        order = parse_permutation(g.text, k)
        if order is None:
            return ScoredAnswer(status="unparseable", detail=detail, error=f"not a permutation of 1..{k}", **common)
        detail["ranking"] = order
        return ScoredAnswer(status="ok", detail=detail, **common)
