"""Putting planned comparisons to a judge, in both orders, through the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendError, WorkersLostError
from ..load import CandidateSet
from ..plan import Comparison
from ..store import Verdict, VerdictStore, question_key, verdict_id
from ._cost import CostLimitReached, CostMeter, verdict_cost
from ._pairwise import Answer, PairwiseLogprobJudge


@dataclass
class JudgeProgress:
    """Counters of a judging loop, updated as each verdict lands.

    ``cache_hits`` counts verdicts taken from the store (this run's earlier attempt, or the same
    question asked about other systems with identical texts) instead of the judge.
    """

    planned: int = 0
    done: int = 0
    cache_hits: int = 0
    asked: int = 0
    status: dict[str, int] = field(default_factory=lambda: {"ok": 0, "unparseable": 0, "error": 0})
    judge_seconds: float = 0.0
    # usage of the questions asked (not of answers taken from the store), as the server reported it
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    meter: CostMeter | None = None


def make_judge(spec: str = "qwen2.5-coder-1.5b", *, n_ctx: int = 4096, seed: int = 0,
               min_mass: float = 0.5, mode: str = "pairwise", template: str | None = None,
               max_candidate_tokens: int | None = None, concurrency: int | None = None,
               probe: bool = True) -> PairwiseLogprobJudge:
    """Build the judge named by ``spec``: a packaged model name or a GGUF path (llama.cpp),
    ``openai:MODEL@URL``, ``replay:FILE``, ``verify:NAME``; ``mode`` and ``template`` pick the
    judge kind (see :mod:`referee.judge._make`). ``max_candidate_tokens`` (LLM judges; ``None``:
    the judge's default) and ``concurrency`` (``openai:`` judges; ``None``: the backend's default)
    are refused by judges they do not apply to.

    Raises:
        ModelNotInstalledError: the model's package is missing (the message says what to install).
        BackendError: the server is unreachable. InputError: a bad spec, mode or template.
    """
    from ._make import build_judge

    return build_judge(spec, n_ctx=n_ctx, seed=seed, min_mass=min_mass, mode=mode, template=template,
                       max_candidate_tokens=max_candidate_tokens, concurrency=concurrency, probe=probe)


def ordered_requests(comparisons: Iterable[Comparison], systems: list[str]) -> list[tuple[str, str, str]]:
    """Both presentation orders of each comparison, grouped so consecutive requests share a prefix.

    Within a prompt, requests are sorted by the system shown first: then the KV cache holds the
    instructions, the question and the first response from one request to the next.
    """
    rank = {s: i for i, s in enumerate(systems)}
    reqs: list[tuple[str, str, str]] = []
    prompt_order: dict[str, int] = {}
    for c in comparisons:
        prompt_order.setdefault(c.prompt_id, len(prompt_order))
        reqs.append((c.prompt_id, c.system_a, c.system_b))
        reqs.append((c.prompt_id, c.system_b, c.system_a))
    reqs = list(dict.fromkeys(reqs))  # a comparison planned twice is asked once
    reqs.sort(key=lambda r: (prompt_order[r[0]], rank.get(r[1], 0), rank.get(r[2], 0)))
    return reqs


def judge_comparisons(comparisons: Iterable[Comparison], candidates: CandidateSet, judge: PairwiseLogprobJudge,
                      store: VerdictStore, *, progress: JudgeProgress | None = None,
                      on_verdict: Callable[[Verdict, bool], None] | None = None,
                      max_consecutive_errors: int = 5, engine: Any = None) -> list[Verdict]:
    """Judge every comparison in both orders; each verdict is committed to ``store`` as it lands.

    A question already answered in the store is not asked again (errors are: they are no answer).

    Args:
        comparisons: the planned comparisons.
        candidates: where the texts come from.
        judge: the pairwise judge.
        store: the run's verdict store.
        progress: counters to update (for a progress bar).
        on_verdict: called with each verdict and whether it came from the store.
        max_consecutive_errors: stop with :class:`BackendError` after this many errors in a row,
            rather than filling the store with errors from a dead backend.
        engine: where the questions are asked (:class:`referee.engine.RayEngine`); ``None``: here.

    Returns:
        The verdicts, one per (comparison, order), in the order judged.
    """
    progress = progress or JudgeProgress()
    reqs = ordered_requests(comparisons, candidates.systems)
    progress.planned += len(reqs)
    out: list[Verdict] = []
    streak = 0
    from ._concurrent import pairwise_lookahead  # HTTP judges: the next questions go out concurrently
    ahead = pairwise_lookahead(judge, store, candidates, reqs, meter=progress.meter, engine=engine)
    for prompt_id, first, second in reqs:
        prompt = candidates.prompts[prompt_id]
        c1, c2 = candidates.candidates[(prompt_id, first)], candidates.candidates[(prompt_id, second)]
        vid = verdict_id(question_key(judge.judge_id, judge.mode, prompt.text, [c1.output, c2.output]),
                         prompt_id, [first, second])
        try:
            verdict = ask_via_store(store, judge, judge.mode, prompt_id, prompt.text, [first, second],
                                    [c1.output, c2.output],
                                    lambda: ahead.get(vid, lambda: judge.judge(prompt.text, c1.output, c2.output)),
                                    progress, on_verdict)
        except CostLimitReached:
            break  # progress.meter.stopped says why; what was stored stays
        out.append(verdict)
        streak = check_error_streak(streak, verdict, max_consecutive_errors)
    return out


def ask_via_store(store: VerdictStore, judge: Any, mode: str, prompt_id: str, prompt_text: str, systems: list[str],
         key_texts: list[str], ask: Callable[[], Any], progress: JudgeProgress,
         on_verdict: Callable[[Verdict, bool], None] | None) -> Verdict:
    """One question through the store: the stored answer if there is one (an ``error`` row is no
    answer; the same question about other systems with identical texts is reused), else ``ask()``,
    committed at once. Updates ``progress`` and calls ``on_verdict(verdict, from_store)``."""
    q = question_key(judge.judge_id, mode, prompt_text, key_texts)
    vid = verdict_id(q, prompt_id, systems)
    hit = store.get(vid)
    if hit is not None and hit.status == "error":
        hit = None
    if hit is None:
        earlier = store.answer_to(q)
        if earlier is not None:
            # nothing was asked: the copy costs nothing, and its tokens stay counted once, on the original
            hit = earlier.model_copy(update={"verdict_id": vid, "prompt_id": prompt_id, "systems": systems,
                                             "created_at": "", "cost": 0.0, "prompt_tokens": 0,
                                             "completion_tokens": 0, "latency_s": 0.0,
                                             "detail": {**earlier.detail, "reused_from": earlier.verdict_id}})
            store.put(hit)
    if hit is not None:
        verdict, cached = hit, True
        progress.cache_hits += 1
    else:
        t0 = time.perf_counter()
        try:
            ans = ask()
        except WorkersLostError:
            raise
        except BackendError as e:
            # A failure before the judge's own request (a server tokenizer that stopped answering
            # while the texts were fitted) is an error verdict like any other: asked again on resume.
            ans = Answer(status="error", error=str(e))
        progress.judge_seconds += time.perf_counter() - t0
        progress.asked += 1
        completion = getattr(ans, "completion_tokens", 0)
        cost = verdict_cost(judge, ans.prompt_tokens, completion)
        progress.prompt_tokens += ans.prompt_tokens
        progress.completion_tokens += completion
        progress.cost += cost
        if progress.meter is not None:
            progress.meter.add(cost)
        verdict = Verdict(verdict_id=vid, question=q, judge_id=judge.judge_id, mode=mode, prompt_id=prompt_id,
                          systems=systems, status=ans.status, p_first=ans.p_first,
                          score=getattr(ans, "score", None), detail=ans.detail, raw=ans.raw, error=ans.error,
                          prompt_tokens=ans.prompt_tokens, completion_tokens=completion,
                          latency_s=ans.latency_s, cost=cost)
        store.put(verdict)
        cached = False
    progress.done += 1
    progress.status[verdict.status] = progress.status.get(verdict.status, 0) + 1
    if on_verdict is not None:
        on_verdict(verdict, cached)
    return verdict


def check_error_streak(streak: int, verdict: Verdict, limit: int) -> int:
    """The error streak after ``verdict``; raises once it reaches ``limit`` rather than filling the
    store with errors from a dead backend."""
    streak = streak + 1 if verdict.status == "error" else 0
    if streak >= limit:
        raise BackendError(f"stopping after {streak} judge errors in a row; last: {verdict.error}. "
                           "Verdicts so far are stored; fix the backend and run again to resume.")
    return streak
