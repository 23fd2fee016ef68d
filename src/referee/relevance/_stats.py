"""Prompt independence from numbers: how much of a system's outputs is specific to each prompt,
and how much better they fit their own prompts than other prompts. Pure functions over arrays and
strings; no models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def strip_quotes(output: str, prompt: str, span: int = 4) -> list[str]:
    """The words of ``output`` (lower-cased) without any run of ``span`` or more consecutive words that
    is quoted from ``prompt``: a fixed text that pastes in each question is as fixed as it is, while
    an answer that reuses three of the question's words ("the capital of Canada is ...") keeps them."""
    words, pw = _words(output), _words(prompt)
    grams = {tuple(pw[i:i + span]) for i in range(len(pw) - span + 1)}
    drop = [False] * len(words)
    for i in range(len(words) - span + 1):
        if tuple(words[i:i + span]) in grams:
            for k in range(i, i + span):
                drop[k] = True
    return [w for w, d in zip(words, drop) if not d]


@dataclass
class TextProfile:
    """How much of a system's outputs is specific to each prompt, in words.

    ``specific`` is the median, over prompts, of the number of distinct words of the output that
    are neither quoted from the prompt (:func:`strip_quotes`) nor used in at least half of the
    system's outputs on the other prompts; ``length`` the median output length in words, ``n``
    the number of non-empty outputs.
    """

    specific: float
    length: float
    n: int


def text_profile(outputs: Sequence[str], prompts: Sequence[str]) -> TextProfile:
    """The :class:`TextProfile` of one system's outputs (``outputs[i]`` answers ``prompts[i]``).

    A constant text, or a template around a pasted-in question, has no specific word on most
    prompts; an answer has at least one (Ottawa, 144, Mars). Empty outputs are skipped.
    """
    bags = [strip_quotes(o, p) for o, p in zip(outputs, prompts)]
    bags = [b for b in bags if b]
    n = len(bags)
    if n < 2:
        return TextProfile(float("nan"), float("nan"), n)
    sets = [set(b) for b in bags]
    df: dict[str, int] = {}
    for st in sets:
        for w in st:
            df[w] = df.get(w, 0) + 1
    # a word used in at least half of the *other* outputs is the system's boilerplate
    common = (n - 1) / 2
    specific = [sum(df[w] - 1 < common for w in st) for st in sets]
    return TextProfile(float(np.median(specific)), float(np.median([len(b) for b in bags])), n)


@dataclass
class RelevanceGap:
    """How much better a system's outputs answer their own prompts than unrelated ones.

    ``own`` and ``other`` are mean P(answers the question) of the outputs shown with their own
    prompt and with another prompt; ``gap`` is the mean paired difference, ``lower`` its one-sided
    95% lower bound (normal, over prompts), ``n`` the number of prompts with both scores.
    """

    own: float
    other: float
    gap: float
    lower: float
    n: int


def relevance_gap(own: np.ndarray, other: np.ndarray) -> RelevanceGap:
    """The paired gap between scores on own prompts and on other prompts (NaN entries are skipped)."""
    own, other = np.asarray(own, float), np.asarray(other, float)
    ok = ~(np.isnan(own) | np.isnan(other))
    d = own[ok] - other[ok]
    n = int(ok.sum())
    if n == 0:
        return RelevanceGap(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return RelevanceGap(float(own[ok].mean()), float(other[ok].mean()), float(d.mean()),
                        float(d.mean() - 1.645 * se), n)


@dataclass
class IndependenceFinding:
    """One system's verdict: ``flagged`` with the ``reasons`` for it, and the numbers behind them."""

    system: str
    flagged: bool
    reasons: list[str] = field(default_factory=list)
    text: TextProfile | None = None
    relevance: RelevanceGap | None = None

    def to_dict(self) -> dict:
        out: dict = {"system": self.system, "flagged": self.flagged, "reasons": list(self.reasons)}
        for name in ("text", "relevance"):
            part = getattr(self, name)
            out[name] = None if part is None else {
                k: (None if np.isnan(v) else round(v, 4)) if isinstance(v, float) else v for k, v in vars(part).items()}
        return out


def decide(system: str, profile: TextProfile | None, relevance: RelevanceGap | None, *, min_words: int = 8,
           min_gap: float = 0.3) -> IndependenceFinding:
    """Flag a system whose outputs say nothing specific to their prompts (on most prompts not one
    word beyond the system's boilerplate and the quoted prompt, in outputs of at least
    ``min_words`` words) or answer other prompts about as well as their own (mean relevance gap
    below ``min_gap``).

    Short outputs (labels, numbers) are left to the relevance gap: "Positive" on every review is
    what a classifier says. The gap is judged on its mean, not its lower bound: with a handful of
    prompts the bound is wide for honest systems too, while a gamer's mean gap sits near 0 and an
    honest system's near 1 (bench/judge_fidelity.py, part b).
    """
    reasons = []
    if profile is not None and profile.n >= 2 and profile.specific < 1 and profile.length >= min_words:
        reasons.append(f"outputs say nothing specific to their prompts (median {profile.specific:g} words "
                       f"beyond boilerplate and the quoted prompt, in {profile.length:g}-word outputs)")
    if relevance is not None and relevance.n and relevance.gap < min_gap:
        reasons.append(f"outputs answer unrelated prompts about as well as their own "
                       f"(P(answers) {relevance.own:.2f} own vs {relevance.other:.2f} other)")
    return IndependenceFinding(system, bool(reasons), reasons, profile, relevance)
