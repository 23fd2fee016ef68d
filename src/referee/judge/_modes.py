"""Running pointwise, listwise and verifier judges through the store, and turning their verdicts
into pairwise outcomes for rating.

- Pointwise (and verifier) scores: on each prompt, every two systems with usable scores make one
  outcome. Scores on a scale compare hard (1, 0, or 0.5 within ``tie_margin``); probabilities
  (P(Yes)) compare as independent Bernoulli draws: P(a wins) + P(tie)/2 =
  ``pa (1 - pb) + (pa pb + (1 - pa)(1 - pb)) / 2``.
- Listwise rankings are broken into all their pairs (full rank breaking, which keeps the
  Plackett–Luce ordering information usable by Bradley–Terry); the forward and the reversed
  presentation play the role of the two orders of a pairwise comparison, so ``p_ab`` is "the
  pair member shown earlier wins" and ``consistent`` says whether both presentations agreed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..load import CandidateSet
from ..store import PairOutcome, Verdict, VerdictStore, question_key, verdict_id
from ._concurrent import threaded_lookahead
from ._cost import CostLimitReached
from ._run import JudgeProgress
from ._run import ask_via_store as _ask
from ._run import check_error_streak as _guard

POINTWISE_MODES = ("pointwise", "verifier")


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


def pointwise_outcomes(verdicts: Iterable[Verdict], *, tie_margin: float = 0.0) -> list[PairOutcome]:
    """Pairwise outcomes from pointwise/verifier scores: every two scored systems of a prompt.

    ``p_ab`` carries the outcome (there is no presentation order); scores of kind
    ``"probability"`` compare as Bernoulli draws, others hard with ties within ``tie_margin``.
    """
    groups: dict[tuple[str, str], dict[str, Verdict]] = {}
    for v in verdicts:
        if v.mode in POINTWISE_MODES and v.status == "ok" and v.score is not None and len(v.systems) == 1:
            groups.setdefault((v.judge_id, v.prompt_id), {}).setdefault(v.systems[0], v)
    out = []
    for (jid, pid), by_sys in groups.items():
        names = list(by_sys)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                va, vb = by_sys[a], by_sys[b]
                p = compare_scores(va.score, vb.score, probability=va.detail.get("score_kind") == "probability",
                                   tie_margin=tie_margin)
                out.append(PairOutcome(judge_id=jid, prompt_id=pid, system_a=a, system_b=b, p_a=p, p_ab=p,
                                       verdict_ids=[va.verdict_id, vb.verdict_id]))
    return out


def compare_scores(sa: float, sb: float, *, probability: bool = False, tie_margin: float = 0.0) -> float:
    """P(a beats b) from two pointwise scores (see the module notes)."""
    if probability:
        sa, sb = min(1.0, max(0.0, sa)), min(1.0, max(0.0, sb))
        return sa * (1 - sb) + 0.5 * (sa * sb + (1 - sa) * (1 - sb))
    if abs(sa - sb) <= tie_margin:
        return 0.5
    return 1.0 if sa > sb else 0.0


def listwise_outcomes(verdicts: Iterable[Verdict]) -> list[PairOutcome]:
    """Pairwise outcomes from listwise rankings by full rank breaking, forward/reversed as the two orders."""
    groups: dict[tuple[str, str, frozenset[str]], list[Verdict]] = {}
    for v in verdicts:
        if v.mode == "listwise" and v.status == "ok" and v.detail.get("ranking") is not None:
            groups.setdefault((v.judge_id, v.prompt_id, frozenset(v.systems)), []).append(v)
    out = []
    for (jid, pid, _), vs in groups.items():
        ref = vs[0].systems
        for i, a in enumerate(ref):
            for b in ref[i + 1:]:
                ab, ba = [], []  # a shown before b: did a win? / b shown before a: did b win?
                for v in vs:
                    shown = {s: k for k, s in enumerate(v.systems)}
                    place = {v.systems[pos]: r for r, pos in enumerate(v.detail["ranking"])}
                    a_wins = place[a] < place[b]
                    if shown[a] < shown[b]:
                        ab.append(1.0 if a_wins else 0.0)
                    else:
                        ba.append(0.0 if a_wins else 1.0)
                p_ab = sum(ab) / len(ab) if ab else None
                p_ba = sum(ba) / len(ba) if ba else None
                wins = ([p_ab] if p_ab is not None else []) + ([1.0 - p_ba] if p_ba is not None else [])
                consistent = None if p_ab is None or p_ba is None else (p_ab - 0.5) * (p_ba - 0.5) < 0
                out.append(PairOutcome(judge_id=jid, prompt_id=pid, system_a=a, system_b=b,
                                       p_a=sum(wins) / len(wins), p_ab=p_ab, p_ba=p_ba, consistent=consistent,
                                       verdict_ids=[v.verdict_id for v in vs]))
    return out


def outcome_arrays(systems: Sequence[str], outcomes: Sequence[PairOutcome]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a_idx, b_idx, p_a)`` arrays for :func:`referee.rate.rate_pairwise`."""
    index = {s: i for i, s in enumerate(systems)}
    a = np.array([index[o.system_a] for o in outcomes], dtype=np.int64)
    b = np.array([index[o.system_b] for o in outcomes], dtype=np.int64)
    p = np.array([o.p_a for o in outcomes], dtype=np.float64)
    return a, b, p


def judge_by_mode(candidates: CandidateSet, judge: Any, store: VerdictStore, verdicts: list[Verdict], *,
                  progress: JudgeProgress | None = None, on_verdict: Callable[[Verdict, bool], None] | None = None,
                  seed: int = 0) -> list[PairOutcome]:
    """Run a non-pairwise judge over the whole candidate set (appending to ``verdicts``) and return
    its pairwise outcomes; what ``referee rank --mode pointwise|pyes|listwise|verify`` runs."""
    if judge.mode in POINTWISE_MODES:
        got = score_candidates(candidates, judge, store, progress=progress, on_verdict=on_verdict)
        verdicts.extend(got)
        return pointwise_outcomes(got)
    if judge.mode == "listwise":
        got = rank_lists(candidates, judge, store, seed=seed, progress=progress, on_verdict=on_verdict)
        verdicts.extend(got)
        return listwise_outcomes(got)
    raise ValueError(f"judge mode {judge.mode!r} is not pointwise, verifier or listwise")
