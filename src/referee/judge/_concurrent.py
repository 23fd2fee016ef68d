"""Many pairwise verdicts at once through an HTTP backend (its concurrency limit applies)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ..backends import off_loop
from ..errors import BackendError
from ._cost import CostMeter, estimate_call
from ._pairwise import Answer, PairwiseLogprobJudge, logprob_answer

P = TypeVar("P")


async def ajudge(judge: Any, question: str, first: str, second: str) -> Answer:
    """:meth:`judge.judge` as a coroutine on an async backend (``achoice_probs`` / ``achat``)."""
    if isinstance(judge, PairwiseLogprobJudge):
        a, b = judge.template.choices
        cut: list[bool] = []
        try:
            question, first, second, cut = await off_loop(judge.backend, judge._fit, question, first, second)  # noqa: SLF001
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
    backend = getattr(judge, "backend", None)  # a replay judge has none
    if not callable(getattr(backend, "map", None)):
        return [judge.judge(*q) for q in questions]
    out = backend.map(lambda q: ajudge(judge, *q), questions)
    return [o if isinstance(o, Answer) else Answer(status="error", error=f"{type(o).__name__}: {o}") for o in out]


def concurrent_backend(judge: Any) -> int:
    """How many requests the judge's backend can have in flight (1 for an in-process model)."""
    backend = getattr(judge, "backend", None)
    return int(getattr(backend, "concurrency", 1)) if callable(getattr(backend, "map", None)) else 1


class Lookahead(Generic[P]):
    """Asks a concurrent (HTTP) judge the next questions before the judging loop reaches them.

    The loop stays sequential, so each verdict is still committed as it is consumed; when the
    loop needs an answer that is not fetched yet, ``fetch`` gets the next ``chunk`` questions that
    the store cannot already answer, all at once. Without ``fetch`` every question is asked directly.

    Args:
        store: the run's store (answered questions are skipped).
        items: ``(verdict id, question key, payload)`` in the order the loop will ask them.
        fetch: answers for a list of payloads, in order; ``None`` when the judge is not concurrent.
        chunk: how many questions to send at once (or a function that says so, read at every send:
            an engine sizes its batches by how fast answers come back).
        submit: sends payloads and returns a function that waits for their answers. With it the
            next batch is sent as soon as the current one is back, so the workers answer it while
            the loop commits (not with a cost limit: answers fetched ahead are paid for).
        meter: the run's spending; with a limit, no question is sent that would pass it (a fetch
            sends only what fits, and :class:`CostLimitReached` when not even the next one does).
        estimate: USD one payload is expected to cost (``None``: the dearest call so far).
    """

    def __init__(self, store: Any, items: Sequence[tuple[str, str, P]],
                 fetch: Callable[[list[P]], list[Any]] | None, chunk: int | Callable[[], int], *,
                 meter: CostMeter | None = None, estimate: Callable[[P], float] | None = None,
                 submit: Callable[[list[P]], Callable[[], list[Any]]] | None = None) -> None:
        self.store, self.items, self.fetch = store, list(items), fetch
        self._chunk = chunk if callable(chunk) else (lambda: chunk)
        self.meter = meter if meter is not None and meter.max_usd is not None else None
        self.estimate = estimate
        self.submit = submit if self.meter is None else None
        # The batch sent ahead: its verdict ids (in order, and as a set) and the function that
        # waits for its answers.
        self._ahead: tuple[list[str], set[str], Callable[[], list[Any]]] | None = None
        self.pos: dict[str, int] = {}
        for i, (vid, _, _) in enumerate(self.items):
            self.pos.setdefault(vid, i)
        self.cache: dict[str, Any] = {}

    def _answered(self, vid: str, q: str) -> bool:
        hit = self.store.get(vid)
        return (hit is not None and hit.status != "error") or self.store.answer_to(q) is not None

    def get(self, vid: str, direct: Callable[[], Any]) -> Any:
        """The answer for ``vid`` (fetched with the next ones if not yet); ``direct()`` asks alone."""
        if self.fetch is None or (vid not in self.cache and vid not in self.pos):
            if self.meter is not None:
                i = self.pos.get(vid)
                self.meter.check(None if i is None or self.estimate is None else self.estimate(self.items[i][2]))
            return direct()
        if vid not in self.cache:
            if self._ahead is not None and vid in self._ahead[1]:
                vids, _, wait = self._ahead
                self._ahead = None
                self.cache.update(zip(vids, wait()))
                start = self.pos[vids[-1]] + 1
            else:
                batch = self._next_batch(self.pos[vid], vid)
                if self.meter is not None:
                    batch = self._affordable(batch)
                self.cache.update(zip((v for v, _ in batch), self.fetch([p for _, p in batch])))
                start = self.pos[batch[-1][0]] + 1
            if self.submit is not None and self._ahead is None:
                ahead = self._next_batch(start, None)
                if ahead:
                    vids = [v for v, _ in ahead]
                    self._ahead = (vids, set(vids), self.submit([p for _, p in ahead]))
        return self.cache.pop(vid)

    def _next_batch(self, start: int, vid: str | None) -> list[tuple[str, P]]:
        """Up to ``chunk`` questions from ``start`` that nothing answers yet (``vid``: asked now)."""
        batch: list[tuple[str, P]] = []
        seen = set(self.cache) | (self._ahead[1] if self._ahead is not None else set())
        # A question answered now, or on its way, is not sent again under another id (the same
        # texts about other systems): once committed, the store answers that one.
        keys = {self.items[self.pos[v]][1] for v in seen}
        chunk = self._chunk()
        for v, q, payload in self.items[start:]:
            if len(batch) >= chunk:
                break
            if v in seen or q in keys or (v != vid and self._answered(v, q)):
                continue
            keys.add(q)
            batch.append((v, payload))
        return batch

    def _affordable(self, batch: list[tuple[str, P]]) -> list[tuple[str, P]]:
        # answers fetched ahead are paid for even if never consumed: send only what fits the limit
        assert self.meter is not None
        costs = [None if self.estimate is None else self.estimate(p) for _, p in batch]
        self.meter.check(costs[0])
        if not self.meter.calls:
            return batch[:1]  # the texts' estimate may be low: one answer's real usage first
        total, n = 0.0, 0
        for c in costs:
            each = self.meter.each(c)
            if self.meter.spent + total + each > self.meter.max_usd + 1e-12:  # type: ignore[operator]
                break
            total += each
            n += 1
        return batch[:max(n, 1)]


def pairwise_lookahead(judge: Any, store: Any, candidates: Any, requests: Sequence[tuple[str, str, str]],
                       meter: CostMeter | None = None, engine: Any = None) -> Lookahead[tuple[str, str, str]]:
    """A :class:`Lookahead` over pairwise requests ``(prompt_id, first, second)``, fetched by
    :func:`judge_many`, or by ``engine.judge_batch`` (e.g. Ray actors) in batches of ``engine.chunk``."""
    from ..store import question_key, verdict_id

    workers = concurrent_backend(judge)
    usable = (callable(getattr(getattr(judge, "backend", None), "map", None))
              and (isinstance(judge, PairwiseLogprobJudge) or callable(getattr(judge, "ajudge", None))))
    usable = usable or engine is not None
    items = []
    if usable or (meter is not None and meter.max_usd is not None):
        for prompt_id, first, second in requests:
            prompt = candidates.prompts[prompt_id]
            c1, c2 = candidates.candidates[(prompt_id, first)], candidates.candidates[(prompt_id, second)]
            q = question_key(judge.judge_id, judge.mode, prompt.text, [c1.output, c2.output])
            items.append((verdict_id(q, prompt_id, [first, second]), q, (prompt.text, c1.output, c2.output)))
    fetch = engine.judge_batch if engine is not None else (lambda qs: judge_many(judge, qs))
    return Lookahead(store, items, fetch if usable else None,
                     (lambda: engine.chunk) if engine is not None else 4 * workers,
                     meter=meter, estimate=lambda q: call_cost(judge, [q[1], q[2]], q[0]),
                     submit=None if engine is None else engine.submit)


def call_cost(judge: Any, texts: list[str], question: str) -> float:
    """USD one question about ``texts`` is expected to cost (0 without a price)."""
    price = getattr(getattr(judge, "backend", None), "price", None)
    if price is None:
        return 0.0
    return price.cost(*estimate_call(judge, texts, question))


def threaded_lookahead(judge: Any, store: Any, items: Sequence[tuple[str, str, Callable[[], Any]]],
                       meter: CostMeter | None = None) -> Lookahead[Callable[[], Any]]:
    """A :class:`Lookahead` whose payloads are blocking calls (``judge.score``, ``judge.rank``), run in threads.

    Each call blocks on the backend's own event loop, so the threads only wait; the backend's
    concurrency limit still bounds the requests in flight.
    """
    workers = concurrent_backend(judge)

    def fetch(calls: list[Callable[[], Any]]) -> list[Any]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda call: call(), calls))

    return Lookahead(store, items, fetch if workers > 1 else None, 4 * workers, meter=meter)
