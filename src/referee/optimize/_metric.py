"""A referee judge as DSPy's metric: every verdict through the verdict store, every call logged."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

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
        p = self.prompts[pid]
        if self.pairwise:
            base = self.baseline[pid]
            if text.strip() == base.strip():
                return 0.5
            return self._pairwise(p, text, base)
        v = ask_via_store(self.store, self.judge, self.judge.mode, pid, p.text, [text_name(text)], [text],
                          lambda: self.judge.score(p.text, text, p.reference), self.progress, None)
        if v.status != "ok" or v.score is None:
            self.counts[v.status] += 1
            return 0.0
        return float(v.score)

    def _pairwise(self, p: Prompt, text: str, base: str) -> float:
        new, old = text_name(text), text_name(base)
        ps = []
        for names, texts in (([new, old], [text, base]), ([old, new], [base, text])):
            v = ask_via_store(self.store, self.judge, self.judge.mode, p.id, p.text, names, texts,
                              lambda t=texts: self.judge.judge(p.text, t[0], t[1]), self.progress, None)
            if v.status == "ok" and v.p_first is not None:
                ps.append(v.p_first if names[0] == new else 1.0 - v.p_first)
            else:
                self.counts[v.status] += 1
        return sum(ps) / len(ps) if ps else 0.0
