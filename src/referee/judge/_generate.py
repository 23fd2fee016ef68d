"""Generate-then-parse pairwise judge: for servers without logprobs.

The judge writes a short justification and ends with a verdict tag, ``[[A]]``, ``[[B]]`` or
``[[TIE]]``. Parsing is strict: one tag (repeats of the same tag are fine), or a bare answer that
is nothing but the letter; anything else, including two different tags, is ``unparseable``
with the raw text kept. An explicit tie is ``p_first = 0.5`` with status ``ok``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..backends import as_generator, off_loop
from ..errors import BackendError
from ._common import ScoredAnswer, fit_texts, judge_id_for
from ._truncate import default_candidate_cap
from ._pairwise import CAREFUL_TEMPLATE, PairwiseTemplate

_TAG = re.compile(r"\[\[\s*([A-Za-z]+)\s*\]\]")
# Words must end where they end: "ResponseA" is no bare "A".
_BARE = re.compile(r"^\s*(?:(?:the\s+)?(?:better\s+)?(?:response|answer|verdict)\b\s*(?:is\b)?\s*:?\s*)?"
                   r"\**\s*([A-Za-z]+)\s*\**\s*\.?\s*$", re.IGNORECASE)
TIE_WORDS = ("TIE", "C")


def parse_pairwise_verdict(text: str, choices: tuple[str, str] = ("A", "B")) -> str | None:
    """``"first"``, ``"second"``, ``"tie"`` or ``None`` (unparseable) for a generated verdict.

    Accepted: exactly one distinct ``[[X]]`` tag anywhere in the text, X one of the two choices
    or TIE (any case); or a whole answer that is only the choice (``"A"``, ``"Response B."``,
    ``"Tie"``). Two different tags, an unknown tag, or prose without a tag are ``None``.
    """
    if not isinstance(text, str):
        return None
    a, b = (c.upper() for c in choices)
    tags = {t.upper() for t in _TAG.findall(text)}
    if tags:
        if len(tags) != 1:
            return None
        tag = tags.pop()
    else:
        # whitespace collapsed first: runs of spaces cannot make the regex backtrack
        m = _BARE.match(" ".join(text.split())) if len(text) <= 2_000 else None  # a bare answer is short
        if m is None:
            return None
        tag = m.group(1).upper()
    if tag == a:
        return "first"
    if tag == b:
        return "second"
    if tag in TIE_WORDS and tag not in (a, b):
        return "tie"
    return None


GENERATE_USER = (
    "[Question]\n{question}\n\n"
    "[Response A]\n{first}\n[End of Response A]\n\n"
    "[Response B]\n{second}\n[End of Response B]\n\n"
    "Which response is better? Explain briefly in one or two sentences, then give your final verdict "
    "on its own line, strictly in this format: [[A]] if Response A is better, [[B]] if Response B is "
    "better, [[TIE]] if they are equally good."
)


@dataclass(frozen=True)
class GenerateTemplate:
    """Words of the generate-then-parse judge (``user`` formatted with question, first, second)."""

    system: str = CAREFUL_TEMPLATE.system
    user: str = GENERATE_USER
    choices: tuple[str, str] = ("A", "B")

    @property
    def sha256(self) -> str:
        return PairwiseTemplate(self.system, self.user, "", self.choices).sha256


class GeneratePairwiseJudge:
    """Pairwise judge that generates a verdict and parses it strictly.

    Same interface as :class:`~referee.judge.PairwiseLogprobJudge` (``judge_id``, ``spec``,
    ``mode``, ``name``, :meth:`judge`), so the rank pipeline uses it unchanged.

    Args:
        backend: anything with ``generate`` (:class:`~referee.backends.OpenAIBackend`), or a
            llama.cpp backend (wrapped to generate).
        template: the judge's words.
        max_tokens: the most tokens the judge may write.
        max_candidate_tokens: the most tokens of one response (``None``: see
            :func:`~referee.judge._truncate.default_candidate_cap`); longer ones are cut.
    """

    mode = "pairwise"

    def __init__(self, backend: Any, *, template: GenerateTemplate = GenerateTemplate(), max_tokens: int = 200,
                 max_candidate_tokens: int | None = None, name: str | None = None) -> None:
        self.backend = as_generator(backend)
        self.template = template
        self.max_tokens = max_tokens
        if max_candidate_tokens is None:
            max_candidate_tokens = default_candidate_cap(self.backend.context_size)
        self.max_candidate_tokens = max_candidate_tokens
        desc = self.backend.describe()
        self.name = name or str(desc.get("model", "judge"))
        self.spec: dict[str, Any] = {
            "mode": self.mode,
            "method": "generate then parse [[A]]/[[B]]/[[TIE]] (strict)",
            "backend": desc,
            "template_sha256": template.sha256,
            "choices": list(template.choices),
            "sampling": {"temperature": 0.0, "max_tokens": max_tokens},
            "max_candidate_tokens": max_candidate_tokens,
        }
        self.judge_id = judge_id_for("pg", self.spec)
        self._frame = self.backend.count_tokens(template.system + template.user) + max_tokens + 64

    def messages(self, question: str, first: str, second: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.template.system},
                {"role": "user", "content": self.template.user.format(question=question, first=first, second=second)}]

    def judge(self, question: str, first: str, second: str) -> ScoredAnswer:
        question, (first, second), cut = fit_texts(self.backend, self._frame, question, [first, second],
                                                   self.max_candidate_tokens)
        try:
            g = self.backend.generate(self.messages(question, first, second), max_tokens=self.max_tokens)
        except BackendError as e:
            return ScoredAnswer(status="error", error=str(e), detail={"truncated": cut})
        return self._answer(g, cut)

    async def ajudge(self, question: str, first: str, second: str) -> ScoredAnswer:
        """:meth:`judge` as a coroutine (HTTP backends: see :func:`referee.judge._concurrent.judge_many`)."""
        cut: list[bool] = []
        try:
            question, (first, second), cut = await off_loop(self.backend, fit_texts, self.backend, self._frame,
                                                            question, [first, second], self.max_candidate_tokens)
            g = await self.backend.achat(self.messages(question, first, second), max_tokens=self.max_tokens)
        except BackendError as e:
            return ScoredAnswer(status="error", error=str(e), detail={"truncated": cut})
        return self._answer(g, cut)

    def _answer(self, g: Any, cut: list[bool]) -> ScoredAnswer:
        detail = {"truncated": cut, "finish_reason": g.finish_reason, "completion_tokens": g.completion_tokens}
        verdict = parse_pairwise_verdict(g.text, self.template.choices)
        common = dict(raw=g.text, prompt_tokens=g.prompt_tokens, latency_s=g.latency_s,
                      completion_tokens=g.completion_tokens)
        if verdict is None:
            return ScoredAnswer(status="unparseable", detail=detail, error="no single [[A]]/[[B]]/[[TIE]] verdict",
                                **common)
        p = {"first": 1.0, "second": 0.0, "tie": 0.5}[verdict]
        return ScoredAnswer(status="ok", p_first=p, detail={**detail, "verdict": verdict}, **common)
