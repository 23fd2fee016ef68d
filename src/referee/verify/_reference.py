"""Reference metrics (sacrebleu BLEU/chrF, exact match) and pattern checks (regex, length, JSON schema)."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from ..types import ScoredAnswer
from ._base import Verifier, passed


class Bleu(Verifier):
    """Sentence BLEU (sacrebleu, 0–100) of the response against the prompt's reference."""

    kind = "bleu"
    use_reference = True

    def __init__(self, *, tokenize: str = "13a", lowercase: bool = False, name: str | None = None) -> None:
        import sacrebleu

        self._metric = sacrebleu.metrics.BLEU(tokenize=tokenize, lowercase=lowercase, effective_order=True)
        self._identify({"tokenize": tokenize, "lowercase": lowercase, "sacrebleu": sacrebleu.__version__}, name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        s = self._metric.sentence_score(response, [reference or ""])
        return ScoredAnswer(status="ok", score=float(s.score), detail={"signature": str(self._metric.get_signature())})


class Chrf(Verifier):
    """Sentence chrF (sacrebleu, 0–100; ``word_order=2`` gives chrF++) against the reference."""

    kind = "chrf"
    use_reference = True

    def __init__(self, *, word_order: int = 0, name: str | None = None) -> None:
        import sacrebleu

        self._metric = sacrebleu.metrics.CHRF(word_order=word_order)
        self._identify({"word_order": word_order, "sacrebleu": sacrebleu.__version__}, name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        s = self._metric.sentence_score(response, [reference or ""])
        return ScoredAnswer(status="ok", score=float(s.score), detail={"signature": str(self._metric.get_signature())})


def normalize(text: str, *, casefold: bool = True, strip_punct: bool = True) -> str:
    """NFKC, case-folded, punctuation removed, whitespace collapsed (SQuAD-style answer normalisation)."""
    t = unicodedata.normalize("NFKC", text)
    if casefold:
        t = t.casefold()
    if strip_punct:
        t = "".join(ch for ch in t if not unicodedata.category(ch).startswith("P"))
    return " ".join(t.split())


class ExactMatch(Verifier):
    """1 if the normalised response equals the normalised reference (``contains``: includes it)."""

    kind = "exact"
    use_reference = True

    def __init__(self, *, casefold: bool = True, strip_punct: bool = True, contains: bool = False,
                 name: str | None = None) -> None:
        self.casefold, self.strip_punct, self.contains = casefold, strip_punct, contains
        self._identify({"casefold": casefold, "strip_punct": strip_punct, "contains": contains}, name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        r = normalize(response, casefold=self.casefold, strip_punct=self.strip_punct)
        ref = normalize(reference or "", casefold=self.casefold, strip_punct=self.strip_punct)
        return passed(ref in r if self.contains else r == ref, binary=True)


class RegexMatch(Verifier):
    """1 if ``pattern`` (or, without one, the prompt's reference read as a regex) is found in the response.

    ``fullmatch`` requires the whole (stripped) response to match.
    """

    kind = "regex"

    def __init__(self, pattern: str | None = None, *, fullmatch: bool = False, ignore_case: bool = False,
                 name: str | None = None) -> None:
        self.use_reference = pattern is None
        self.flags = re.IGNORECASE if ignore_case else 0
        self.fullmatch = fullmatch
        self._rx = re.compile(pattern, self.flags) if pattern is not None else None
        self._identify({"pattern": pattern, "fullmatch": fullmatch, "ignore_case": ignore_case}, name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        rx = self._rx or re.compile(reference or "", self.flags)
        m = rx.fullmatch(response.strip()) if self.fullmatch else rx.search(response)
        return passed(m is not None, binary=True, match=m.group(0)[:200] if m else None)


class LengthCheck(Verifier):
    """1 if the response's characters and words are within the limits."""

    kind = "length"

    def __init__(self, *, min_chars: int = 0, max_chars: int | None = None, min_words: int = 0,
                 max_words: int | None = None, name: str | None = None) -> None:
        self.limits = {"min_chars": min_chars, "max_chars": max_chars, "min_words": min_words, "max_words": max_words}
        self._identify(dict(self.limits), name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        c, w = len(response), len(response.split())
        L = self.limits
        ok = (c >= L["min_chars"] and (L["max_chars"] is None or c <= L["max_chars"]) and w >= L["min_words"]
              and (L["max_words"] is None or w <= L["max_words"]))
        return passed(ok, binary=True, chars=c, words=w)


_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n?```", re.DOTALL)


class JsonSchemaCheck(Verifier):
    """1 if the response is JSON (whole, or in one ```json fence) valid under ``schema`` (jsonschema)."""

    kind = "json-schema"

    def __init__(self, schema: dict[str, Any], *, name: str | None = None) -> None:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        self._validator = cls(schema)
        from importlib.metadata import version

        self._identify({"schema": schema, "jsonschema": version("jsonschema")}, name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        text = response.strip()
        try:
            data = json.loads(text)
        except ValueError:
            m = _FENCE.search(text)
            try:
                data = json.loads(m.group(1)) if m else None
            except ValueError:
                m = None
            if m is None:
                return passed(False, binary=True, errors=["not JSON"])
        errors = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"[:200]
                  for e in self._validator.iter_errors(data)]
        return passed(not errors, binary=True, errors=errors[:10])
