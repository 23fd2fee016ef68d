"""A referee judge as DSPy's metric: every verdict through the verdict store, every call logged."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import numpy as np

from ..combine import combine
from ..judge import JudgeProgress
from ..judge._run import ask_via_store
from ..load import Prompt
from ..store import VerdictStore
from ._dspy import Seen

PAIRWISE = ("pairwise", "pairwise-generate")


def text_name(text: str) -> str:
    """A candidate's name in the verdict store: the same text is the same candidate, in any trial."""
    return "out-" + hashlib.sha256(text.encode()).hexdigest()[:12]


class JudgeMetric:
    """``metric(example, prediction, trace=None)`` for DSPy's optimizers.

    With a pairwise judge: P(the prediction's response beats the baseline's on the same prompt),
    the two orders averaged (identical texts: 0.5, nothing asked). With a pointwise judge or a
    verifier: its score of the response. While an optimizer bootstraps demos (``trace`` given),
    the answer is whether the response is no worse than the baseline (P >= 0.5; pointwise: scores
    at least as high).

    A question the judge leaves unparseable or fails on is counted (``counts``) and the order is
    left out; with no readable order the response scores 0 -- the least, so that an optimizer can
    never gain by making the judge fail. Every call lands in ``log`` with the program DSPy ran
    (from :class:`Seen`), the example and the score.
    """

    def __init__(self, judge: Any, store: VerdictStore, prompts: dict[str, Prompt], baseline: dict[str, str],
                 seen: Seen, lock: Any = None) -> None:
        import threading

        self.judge, self.store, self.prompts, self.baseline, self.seen = judge, store, prompts, baseline, seen
        self.lock = lock or threading.RLock()
        self.pairwise = judge.mode in PAIRWISE
        self.progress = JudgeProgress()
        self.counts: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []
        store.register_judge(judge.judge_id, judge.spec)

    def __call__(self, example: Any, pred: Any, trace: Any = None, *_: Any) -> float | bool:
        pid = example.prompt_id
        text = str(getattr(pred, "response", "") or "")
        with self.lock:
            score = self.score(pid, text)
            self.log.append({"program": self.seen.current(), "prompt_id": pid, "score": score,
                             "bootstrap": trace is not None})
            if trace is None:
                return score
            # a demo: an output the judge finds no worse than the baseline's (the original
            # program's own outputs are its baseline, and can never beat themselves)
            return score >= 0.5 if self.pairwise else score >= self.score(pid, self.baseline[pid])

    def score(self, pid: str, text: str) -> float:
        """The metric of ``text`` as the answer to prompt ``pid`` (see the class notes)."""
        if self.pairwise:
            got = self.versus(pid, text)
            return 0.0 if got is None else got
        got = self._pointwise(pid, text)
        return 0.0 if got is None else got

    def versus(self, pid: str, text: str) -> float | None:
        """P(``text`` is a better answer to ``pid`` than the baseline's), ``None`` where unreadable.

        Pairwise: the two orders averaged. Pointwise: 1, 0 or 1/2 as its score is higher than, lower
        than or equal to the baseline's (a vote, as the label model reads every verifier)."""
        p, base = self.prompts[pid], self.baseline[pid]
        if text.strip() == base.strip():
            return 0.5
        if not self.pairwise:
            s_new, s_base = self._pointwise(pid, text), self._pointwise(pid, base)
            if s_new is None or s_base is None:
                return None
            return 1.0 if s_new > s_base else 0.0 if s_new < s_base else 0.5
        new, old = text_name(text), text_name(base)
        ps = []
        for names, texts in (([new, old], [text, base]), ([old, new], [base, text])):
            v = ask_via_store(self.store, self.judge, self.judge.mode, p.id, p.text, names, texts,
                              lambda t=texts: self.judge.judge(p.text, t[0], t[1]), self.progress, None)
            if v.status == "ok" and v.p_first is not None:
                ps.append(v.p_first if names[0] == new else 1.0 - v.p_first)
            else:
                self.counts[v.status] += 1
        return sum(ps) / len(ps) if ps else None

    def _pointwise(self, pid: str, text: str) -> float | None:
        p = self.prompts[pid]
        v = ask_via_store(self.store, self.judge, self.judge.mode, pid, p.text, [text_name(text)], [text],
                          lambda: self.judge.score(p.text, text, p.reference), self.progress, None)
        if v.status != "ok" or v.score is None:
            self.counts[v.status] += 1
            return None
        return float(v.score)

    def asked(self) -> tuple[int, int]:
        """(questions asked, answers reused from the store)."""
        return self.progress.asked, self.progress.cache_hits


class EnsembleMetric(JudgeMetric):
    """Several judges' verdicts on the same comparison, combined by weights learnt without labels.

    The score of an output is the label model's P(it beats the baseline's output): each member's
    :meth:`JudgeMetric.versus` is a vote, weighed by the accuracy the label model estimated for that
    member. The weights are learnt once, by :meth:`fit`, on warm-up comparisons made before the
    optimizer starts (the baseline against other outputs of the same system), and then stay fixed:
    DSPy keeps the best score it has seen, so a score must not move when later candidates arrive.
    With no readable vote an output scores 0, as with one judge.
    """

    def __init__(self, members: list[JudgeMetric], names: list[str], seen: Seen, lock: Any = None) -> None:
        import threading

        self.members, self.names, self.seen = members, names, seen
        self.lock = lock or threading.RLock()
        self.prompts, self.baseline = members[0].prompts, members[0].baseline
        self.pairwise = True
        self.counts: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []
        self.ensemble: Any = None
        self.warmup: list[dict[str, Any]] = []

    def votes(self, pid: str, text: str) -> list[float]:
        return [float("nan") if (v := m.versus(pid, text)) is None else v for m in self.members]

    def fit(self, items: list[tuple[str, str]], **combine_options: Any) -> Any:
        """Learn the members' weights from ``(prompt_id, text)`` comparisons against the baseline."""
        with self.lock:
            x = np.array([self.votes(pid, text) for pid, text in items], dtype=np.float64).reshape(len(items),
                                                                                                  len(self.members))
            self.ensemble = combine(x, self.names, **combine_options)
            self.warmup = [{"prompt_id": pid, "votes": [None if np.isnan(v) else round(float(v), 4) for v in row]}
                           for (pid, _), row in zip(items, x)]
        return self.ensemble

    def versus(self, pid: str, text: str) -> float | None:
        if self.ensemble is None:
            raise RuntimeError("EnsembleMetric.fit() must run before it scores")
        if text.strip() == self.baseline[pid].strip():
            return 0.5
        x = np.array([self.votes(pid, text)])
        if np.isnan(x).all():
            self.counts["no_vote"] += 1
            return None
        return float(self.ensemble.posterior(x)[0])

    def asked(self) -> tuple[int, int]:
        got = [m.asked() for m in self.members]
        return sum(a for a, _ in got), sum(r for _, r in got)
