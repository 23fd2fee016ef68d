"""Running pointwise, listwise and verifier judges through the store: every candidate scored, or
every prompt's candidates ranked (forward and reversed). :mod:`referee.outcomes` turns their
verdicts into pairwise outcomes."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..load import CandidateSet
from ..store import POINTWISE_MODES, Verdict, VerdictStore, question_key, verdict_id
from ._concurrent import threaded_lookahead
from ._cost import CostLimitReached
from ._run import JudgeProgress
from ._run import ask_via_store as _ask
from ._run import check_error_streak as _guard

def score_candidates(candidates: CandidateSet, judge: Any, store: VerdictStore, *,
                     prompt_ids: Iterable[str] | None = None, progress: JudgeProgress | None = None,
                     on_verdict: Callable[[Verdict, bool], None] | None = None,
                     max_consecutive_errors: int = 5) -> list[Verdict]:
    """Ask a pointwise judge or a verifier (``judge.score(question, response, reference)``) about
    every candidate; each verdict is committed as it lands and never asked twice.

    A judge whose spec says ``use_reference`` sees the prompt's reference; the reference is then
    part of the question's content address.
    """
    progress = progress or JudgeProgress()
    store.register_judge(judge.judge_id, judge.spec)
    mode = judge.mode
    pids = list(prompt_ids) if prompt_ids is not None else list(candidates.prompts)
    jobs = [(pid, s) for pid in pids for s in candidates.systems_for(pid)]
    progress.planned += len(jobs)
    uses_ref = bool(judge.spec.get("use_reference", True))
    calls = []
    for pid, system in jobs:
        prompt = candidates.prompts[pid]
        output = candidates.candidates[(pid, system)].output
        ref = prompt.reference if uses_ref else None
        key = [output] + ([f"\x00reference\x00{ref}"] if ref else [])
        q = question_key(judge.judge_id, mode, prompt.text, key)
        fn = (lambda t=prompt.text, o=output, r=ref: judge.score(t, o, r))
        calls.append((pid, system, prompt.text, key, verdict_id(q, pid, [system]), q, fn))
    ahead = threaded_lookahead(judge, store, [(vid, q, fn) for *_, vid, q, fn in calls],
                               meter=progress.meter)
    out, streak = [], 0
    for pid, system, text, key, vid, _, fn in calls:
        try:
            v = _ask(store, judge, mode, pid, text, [system], key, lambda vid=vid, fn=fn: ahead.get(vid, fn),
                     progress, on_verdict)
        except CostLimitReached:
            break  # progress.meter.stopped says why
        out.append(v)
        streak = _guard(streak, v, max_consecutive_errors)
    return out


def list_groups(systems: Sequence[str], max_k: int, rng: random.Random) -> list[list[str]]:
    """``systems`` in groups of at most ``max_k`` (and at least 2), shuffled when splitting is needed."""
    systems = list(systems)
    if len(systems) <= max_k:
        return [systems] if len(systems) >= 2 else []
    rng.shuffle(systems)
    n = -(-len(systems) // max_k)
    groups = [systems[i::n] for i in range(n)]
    return [g for g in groups if len(g) >= 2]


def rank_lists(candidates: CandidateSet, judge: Any, store: VerdictStore, *, seed: int = 0,
               prompt_ids: Iterable[str] | None = None, progress: JudgeProgress | None = None,
               on_verdict: Callable[[Verdict, bool], None] | None = None,
               max_consecutive_errors: int = 5) -> list[Verdict]:
    """Ask a listwise judge to rank the candidates of each prompt, forward and reversed.

    Prompts with more than ``judge.max_k`` systems are split into random groups (seeded).
    ``Verdict.systems`` is the presentation order; ``detail["ranking"]`` the 0-based positions
    best first and ``detail["ranked_systems"]`` the systems best first.
    """
    progress = progress or JudgeProgress()
    store.register_judge(judge.judge_id, judge.spec)
    rng = random.Random(seed)
    pids = list(prompt_ids) if prompt_ids is not None else list(candidates.prompts)
    jobs = []
    for pid in pids:
        for g in list_groups(candidates.systems_for(pid), judge.max_k, rng):
            jobs.append((pid, g))
            jobs.append((pid, g[::-1]))
    progress.planned += len(jobs)
    calls = []
    for pid, shown in jobs:
        prompt = candidates.prompts[pid]
        texts = [candidates.candidates[(pid, s)].output for s in shown]

        def ask(texts=texts, shown=shown, q=prompt.text):
            ans = judge.rank(q, texts)
            if ans.status == "ok":
                ans.detail["ranked_systems"] = [shown[i] for i in ans.detail["ranking"]]
            return ans

        q = question_key(judge.judge_id, "listwise", prompt.text, texts)
        calls.append((pid, shown, prompt.text, texts, verdict_id(q, pid, list(shown)), q, ask))
    ahead = threaded_lookahead(judge, store, [(vid, q, fn) for *_, vid, q, fn in calls],
                               meter=progress.meter)
    out, streak = [], 0
    for pid, shown, text, texts, vid, _, fn in calls:
        try:
            v = _ask(store, judge, "listwise", pid, text, list(shown), texts, lambda vid=vid, fn=fn: ahead.get(vid, fn),
                     progress, on_verdict)
        except CostLimitReached:
            break  # progress.meter.stopped says why
        out.append(v)
        streak = _guard(streak, v, max_consecutive_errors)
    return out


def judge_by_mode(candidates: CandidateSet, judge: Any, store: VerdictStore, verdicts: list[Verdict], *,
                  progress: JudgeProgress | None = None, on_verdict: Callable[[Verdict, bool], None] | None = None,
                  seed: int = 0) -> list[Verdict]:
    """Run a non-pairwise judge over the whole candidate set (appending to ``verdicts``) and return
    its verdicts; what ``referee rank --mode pointwise|pyes|listwise|verify`` runs."""
    if judge.mode in POINTWISE_MODES:
        got = score_candidates(candidates, judge, store, progress=progress, on_verdict=on_verdict)
    elif judge.mode == "listwise":
        got = rank_lists(candidates, judge, store, seed=seed, progress=progress, on_verdict=on_verdict)
    else:
        raise ValueError(f"judge mode {judge.mode!r} is not pointwise, verifier or listwise")
    verdicts.extend(got)
    return got
