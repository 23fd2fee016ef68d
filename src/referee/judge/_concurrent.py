"""Many pairwise verdicts at once through an HTTP backend (its concurrency limit applies)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import BackendError
from ._pairwise import Answer, PairwiseLogprobJudge


async def ajudge(judge: Any, question: str, first: str, second: str) -> Answer:
    """:meth:`judge.judge` as a coroutine on an async backend (``achoice_probs`` / ``achat``)."""
    if isinstance(judge, PairwiseLogprobJudge):
        question, first, second, cut = judge._fit(question, first, second)  # noqa: SLF001
        a, b = judge.template.choices
        try:
            res = await judge.backend.achoice_probs(judge.messages(question, first, second), judge.template.prefill,
                                                    judge.template.choices)
        except BackendError as e:
            return Answer(status="error", error=str(e), detail={"truncated": cut})
        return logprob_answer(res, a, b, judge.min_mass, cut)
    return await judge.ajudge(question, first, second)


def logprob_answer(res: Any, a: str, b: str, min_mass: float, cut: list[bool]) -> Answer:
    """The same verdict :class:`PairwiseLogprobJudge` makes from a backend's choice probabilities."""
    pa, pb = res.probs[a], res.probs[b]
    mass = pa + pb
    detail = {"p_letters": {a: pa, b: pb}, "mass": mass, "truncated": cut, "evaluated_tokens": res.evaluated_tokens}
    raw = json.dumps({"top_next_tokens": res.top}, ensure_ascii=False)
    if not mass >= min_mass:
        return Answer(status="unparseable", detail=detail, raw=raw, prompt_tokens=res.prompt_tokens,
                      latency_s=res.latency_s, error=f"letter probability mass {mass:.3f} below {min_mass}")
    return Answer(status="ok", p_first=pa / mass, detail=detail, raw=raw, prompt_tokens=res.prompt_tokens,
                  latency_s=res.latency_s)


def judge_many(judge: Any, questions: Sequence[tuple[str, str, str]]) -> list[Answer]:
    """Judge every ``(question, first, second)`` concurrently on the judge's HTTP backend (at most
    ``backend.concurrency`` requests in flight); answers in the input order. A backend failure is
    that answer's ``error`` status, as in :meth:`judge`."""
    backend = judge.backend
    if not callable(getattr(backend, "map", None)):
        return [judge.judge(*q) for q in questions]
    out = backend.map(lambda q: ajudge(judge, *q), questions)
    return [o if isinstance(o, Answer) else Answer(status="error", error=f"{type(o).__name__}: {o}") for o in out]
