"""Pointwise judges: one candidate at a time.

- :class:`RubricJudge`: a score on a declared integer scale plus structured diagnoses (error
  type from a configurable taxonomy, quoted span, severity, explanation), INSTRUCTSCORE/MedVAL
  style. Output is constrained by a JSON schema (a llama.cpp grammar in process,
  ``response_format`` on servers) and validated with pydantic; anything that fails validation
  is ``unparseable`` with the raw text kept.
- :class:`YesProbabilityJudge`: P(Yes) to "Does this response correctly and fully answer the
  prompt?" from the next-token probabilities: cheap and free of position bias.

Both expose ``score(question, response, reference=None) -> ScoredAnswer``; the verdicts go to the
store with ``mode="pointwise"`` and become pairwise outcomes in :mod:`referee.judge._modes`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, ValidationError

from ..backends import as_generator
from ..errors import BackendError
from ._common import ScoredAnswer, fit_texts, judge_id_for, text_sha256, yes_answer
from ._truncate import default_candidate_cap

DEFAULT_TAXONOMY = ("factual error", "incorrect answer", "incomplete", "irrelevant", "instruction not followed",
                    "reasoning error", "unclear", "unsafe", "other")

RUBRIC_SYSTEM = (
    "You are a strict, careful grader of AI assistant responses. You read a user's question and one "
    "response, list the errors in the response, then give it a score. Correctness comes first, then "
    "completeness, relevance and clarity. Quote each error's exact span from the response."
)
RUBRIC_USER = (
    "[Question]\n{question}\n\n{reference_block}"
    "[Response]\n{response}\n[End of Response]\n\n"
    "List up to {max_diagnoses} errors in the response. Each error has a type (one of: {taxonomy}), the exact "
    "span of the response it concerns, a severity (minor or major) and a one-sentence explanation. "
    "An excellent response has no errors. Then score the response from {lo} (useless) to {hi} (perfect).\n"
    'Answer in JSON only: {{"diagnoses": [{{"type": ..., "span": ..., "severity": ..., "explanation": ...}}], '
    '"score": ...}}'
)


class Diagnosis(BaseModel):
    """One error the judge found."""

    model_config = ConfigDict(extra="forbid")
    type: str
    span: str
    severity: Literal["minor", "major"]
    explanation: str


class RubricOutput(BaseModel):
    """The judge's whole answer: diagnoses first (reasons before the score), then the score."""

    model_config = ConfigDict(extra="forbid")
    diagnoses: list[Diagnosis]
    score: StrictInt | StrictFloat


def rubric_schema(scale: tuple[int, int], taxonomy: Sequence[str], max_diagnoses: int = 5,
                  max_chars: int = 200) -> dict[str, Any]:
    """The JSON schema the judge's output is constrained to (llama.cpp grammars know ``enum``, not ``minimum``)."""
    lo, hi = scale
    text = {"type": "string", "maxLength": max_chars}
    return {
        "type": "object",
        "properties": {
            "diagnoses": {"type": "array", "maxItems": max_diagnoses, "items": {
                "type": "object",
                "properties": {"type": {"enum": list(taxonomy)}, "span": text,
                               "severity": {"enum": ["minor", "major"]}, "explanation": text},
                "required": ["type", "span", "severity", "explanation"],
                "additionalProperties": False}},
            "score": {"enum": list(range(lo, hi + 1))},
        },
        "required": ["diagnoses", "score"],
        "additionalProperties": False,
    }


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?```\s*$", re.DOTALL)


def parse_rubric(text: str, scale: tuple[int, int], taxonomy: Sequence[str],
                 max_diagnoses: int | None = None) -> tuple[RubricOutput | None, str | None]:
    """Validate a rubric answer: ``(output, None)`` or ``(None, why it is unparseable)``.

    The text must be one JSON object (optionally in a single ```json fence) with exactly the
    keys ``diagnoses`` and ``score``; the score a finite number within ``scale``; every
    diagnosis a known type and severity.
    """
    if not isinstance(text, str):
        return None, "not text"
    m = _FENCE.match(text)
    body = m.group(1) if m else text
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as e:
        return None, f"not JSON: {str(e)[:120]}"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    try:
        out = RubricOutput.model_validate(data)
    except ValidationError as e:
        return None, f"invalid: {e.errors()[0]['loc']} {e.errors()[0]['msg']}"[:300]
    lo, hi = scale
    s = float(out.score)
    if not math.isfinite(s) or not lo <= s <= hi:
        return None, f"score {out.score!r} outside the scale {lo}..{hi}"
    known = set(taxonomy)
    for d in out.diagnoses:
        if d.type not in known:
            return None, f"diagnosis type {d.type!r} is not in the taxonomy"
    if max_diagnoses is not None and len(out.diagnoses) > max_diagnoses:
        return None, f"{len(out.diagnoses)} diagnoses, at most {max_diagnoses} allowed"
    return out, None


class RubricJudge:
    """Score plus structured diagnoses for one response, with enforced structured output.

    Args:
        backend: an OpenAI-compatible backend (``response_format``) or a llama.cpp backend (grammar).
        scale: the inclusive integer score range.
        taxonomy: the allowed error types.
        max_diagnoses: the most errors listed.
        use_reference: show the prompt's reference answer to the judge when there is one.
    """

    mode = "pointwise"

    def __init__(self, backend: Any, *, scale: tuple[int, int] = (1, 10), taxonomy: Sequence[str] = DEFAULT_TAXONOMY,
                 max_diagnoses: int = 5, max_tokens: int = 512, system: str = RUBRIC_SYSTEM, user: str = RUBRIC_USER,
                 use_reference: bool = True, max_candidate_tokens: int | None = None, max_chars: int = 200,
                 name: str | None = None) -> None:
        if scale[0] >= scale[1]:
            raise ValueError(f"scale {scale}: the low end must be below the high end")
        self.backend = as_generator(backend)
        self.scale = (int(scale[0]), int(scale[1]))
        self.taxonomy = tuple(taxonomy)
        self.max_diagnoses = max_diagnoses
        self.max_tokens = max_tokens
        self.system, self.user = system, user
        self.use_reference = use_reference
        if max_candidate_tokens is None:
            max_candidate_tokens = default_candidate_cap(self.backend.context_size)
        self.max_candidate_tokens = max_candidate_tokens
        self.schema = rubric_schema(self.scale, self.taxonomy, max_diagnoses, max_chars)
        desc = self.backend.describe()
        self.name = name or str(desc.get("model", "judge"))
        self.spec: dict[str, Any] = {
            "mode": self.mode, "method": "rubric score + diagnoses, schema-constrained JSON, pydantic-validated",
            "backend": desc, "template_sha256": text_sha256(json.dumps([system, user])),
            "scale": list(self.scale), "taxonomy": list(self.taxonomy), "max_diagnoses": max_diagnoses,
            # in declared order, the order the grammar writes the fields in: a reordered schema is another judge
            "schema_sha256": text_sha256(json.dumps(self.schema)),
            "sampling": {"temperature": 0.0, "max_tokens": max_tokens}, "use_reference": use_reference,
            "max_candidate_tokens": max_candidate_tokens,
        }
        self.judge_id = judge_id_for("pt", self.spec)
        self._frame = self.backend.count_tokens(system + user) + max_tokens + 64

    def messages(self, question: str, response: str, reference: str | None = None) -> list[dict[str, str]]:
        ref = f"[Reference answer]\n{reference}\n[End of Reference answer]\n\n" if reference else ""
        lo, hi = self.scale
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user.format(
                    question=question, response=response, reference_block=ref, lo=lo, hi=hi,
                    max_diagnoses=self.max_diagnoses, taxonomy=", ".join(self.taxonomy))}]

    def score(self, question: str, response: str, reference: str | None = None) -> ScoredAnswer:
        reference = reference if self.use_reference else None
        texts = [response] + ([reference] if reference else [])
        question, fitted, cut = fit_texts(self.backend, self._frame, question, texts, self.max_candidate_tokens,
                                          ["response", "reference"][:len(texts)])
        response = fitted[0]
        reference = fitted[1] if reference else None
        try:
            g = self.backend.generate(self.messages(question, response, reference), max_tokens=self.max_tokens,
                                      json_schema=self.schema)
        except BackendError as e:
            return ScoredAnswer(status="error", error=str(e), detail={"truncated": cut[:2]})
        common = dict(raw=g.text, prompt_tokens=g.prompt_tokens, latency_s=g.latency_s,
                      completion_tokens=g.completion_tokens)
        out, why = parse_rubric(g.text, self.scale, self.taxonomy, self.max_diagnoses)
        detail: dict[str, Any] = {"truncated": cut[:2], "finish_reason": g.finish_reason, "scale": list(self.scale),
                                  "score_kind": "scale"}
        if out is None:
            return ScoredAnswer(status="unparseable", error=why, detail=detail, **common)
        diags = [{**d.model_dump(), "span_found": bool(d.span) and d.span in response} for d in out.diagnoses]
        detail.update(diagnoses=diags, n_major=sum(d.severity == "major" for d in out.diagnoses),
                      n_minor=sum(d.severity == "minor" for d in out.diagnoses))
        return ScoredAnswer(status="ok", score=float(out.score), detail=detail, **common)


YES_SYSTEM = "You are a careful, impartial judge of AI assistant responses."
YES_USER = (
    "[Question]\n{question}\n\n{reference_block}[Response]\n{response}\n[End of Response]\n\n"
    "Does this response correctly and fully answer the question? Answer Yes or No."
)


class YesProbabilityJudge:
    """P(Yes) / (P(Yes) + P(No)) for "does this response correctly and fully answer the prompt?".

    One forward pass, no sampling. Below ``min_mass`` of Yes+No probability the verdict is
    ``unparseable`` (the model was not answering the question).
    """

    mode = "pointwise"

    def __init__(self, backend: Any, *, system: str = YES_SYSTEM, user: str = YES_USER, prefill: str = "Answer:",
                 choices: tuple[str, str] = ("Yes", "No"), min_mass: float = 0.5, use_reference: bool = True,
                 max_candidate_tokens: int | None = None, name: str | None = None) -> None:
        self.backend = backend
        self.system, self.user, self.prefill, self.choices = system, user, prefill, tuple(choices)
        self.min_mass = min_mass
        self.use_reference = use_reference
        if max_candidate_tokens is None:
            max_candidate_tokens = default_candidate_cap(backend.context_size)
        self.max_candidate_tokens = max_candidate_tokens
        desc = backend.describe()
        self.name = name or str(desc.get("model", "judge"))
        self.spec: dict[str, Any] = {
            "mode": self.mode, "method": "P(Yes) from next-token logprobs after prefill",
            "backend": desc, "template_sha256": text_sha256(json.dumps([system, user, prefill])),
            "prefill": prefill, "choices": list(self.choices), "min_mass": min_mass,
            "sampling": {"temperature": 0.0, "max_tokens": 0}, "use_reference": use_reference,
            "max_candidate_tokens": max_candidate_tokens,
        }
        self.judge_id = judge_id_for("py", self.spec)
        self._frame = backend.count_tokens(system + user + prefill) + 64

    def messages(self, question: str, response: str, reference: str | None = None) -> list[dict[str, str]]:
        ref = f"[Reference answer]\n{reference}\n[End of Reference answer]\n\n" if reference else ""
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user.format(question=question, response=response,
                                                             reference_block=ref)}]

    def score(self, question: str, response: str, reference: str | None = None) -> ScoredAnswer:
        reference = reference if self.use_reference else None
        texts = [response] + ([reference] if reference else [])
        question, fitted, cut = fit_texts(self.backend, self._frame, question, texts, self.max_candidate_tokens,
                                          ["response", "reference"][:len(texts)])
        try:
            res = self.backend.choice_probs(self.messages(question, fitted[0], fitted[1] if reference else None),
                                            self.prefill, self.choices)
        except BackendError as e:
            return ScoredAnswer(status="error", error=str(e), detail={"truncated": cut[:2]})
        return yes_answer(res, *self.choices, self.min_mass, cut[:2])
