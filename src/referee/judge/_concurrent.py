"""Many pairwise verdicts at once through an HTTP backend (its concurrency limit applies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import BackendError
from ._pairwise import Answer, PairwiseLogprobJudge, logprob_answer


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


def judge_many(judge: Any, questions: Sequence[tuple[str, str, str]]) -> list[Answer]:
    """Judge every ``(question, first, second)`` concurrently on the judge's HTTP backend (at most
    ``backend.concurrency`` requests in flight); answers in the input order. A backend failure is
    that answer's ``error`` status, as in :meth:`judge`."""
    backend = judge.backend
    if not callable(getattr(backend, "map", None)):
        return [judge.judge(*q) for q in questions]
    out = backend.map(lambda q: ajudge(judge, *q), questions)
    return [o if isinstance(o, Answer) else Answer(status="error", error=f"{type(o).__name__}: {o}") for o in out]


class Prefetcher:
    """Asks an HTTP judge ahead of :func:`~referee.judge.judge_comparisons`, concurrently.

    The judging loop stays sequential (each verdict is still committed as it is consumed); when
    the loop needs an answer that is not fetched yet, the next ``chunk`` questions that the store
    cannot answer are sent at once (``chunk`` defaults to 4 x the backend's concurrency). A judge
    whose backend is not concurrent (llama.cpp in process) is simply called.
    """

    def __init__(self, judge: Any, store: Any, candidates: Any, requests: Sequence[tuple[str, str, str]],
                 *, chunk: int | None = None) -> None:
        from ..store import question_key, verdict_id

        self.judge = judge
        backend = getattr(judge, "backend", None)
        self.enabled = (callable(getattr(backend, "map", None))
                        and (isinstance(judge, PairwiseLogprobJudge) or callable(getattr(judge, "ajudge", None))))
        self.store = store
        self.cache: dict[str, Answer] = {}
        self.items: list[tuple[str, str, tuple[str, str, str]]] = []
        self.pos: dict[str, int] = {}
        if not self.enabled:
            return
        self.chunk = chunk or 4 * int(getattr(backend, "concurrency", 1))
        for prompt_id, first, second in requests:
            prompt = candidates.prompts[prompt_id]
            c1, c2 = candidates.candidates[(prompt_id, first)], candidates.candidates[(prompt_id, second)]
            q = question_key(judge.judge_id, judge.mode, prompt.text, [c1.output, c2.output])
            vid = verdict_id(q, prompt_id, [first, second])
            self.pos.setdefault(vid, len(self.items))
            self.items.append((vid, q, (prompt.text, c1.output, c2.output)))

    def _answered(self, vid: str, q: str) -> bool:
        hit = self.store.get(vid)
        return (hit is not None and hit.status != "error") or self.store.answer_to(q) is not None

    def answer(self, vid: str, question: str, first: str, second: str) -> Answer:
        """The judge's answer to this question (fetched with the next ones if not yet)."""
        if not self.enabled or (vid not in self.cache and vid not in self.pos):
            return self.judge.judge(question, first, second)
        if vid not in self.cache:
            batch: list[tuple[str, tuple[str, str, str]]] = []
            seen: set[str] = set()
            for v, q, texts in self.items[self.pos[vid]:]:
                if len(batch) >= self.chunk:
                    break
                if v in self.cache or q in seen or (v != vid and self._answered(v, q)):
                    continue
                seen.add(q)
                batch.append((v, texts))
            answers = judge_many(self.judge, [t for _, t in batch])
            self.cache.update(zip((v for v, _ in batch), answers))
        return self.cache.pop(vid)
