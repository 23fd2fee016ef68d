"""Custom judges from a user's Jinja template file with declared variables and answer format.

The file starts with a Jinja comment holding a JSON header, then the user message template::

    {#- referee
    {"mode": "pairwise", "variables": ["question", "first", "second"],
     "system": "You are a strict judge.",
     "answer": {"type": "choice", "choices": ["A", "B"], "prefill": "Better response:"}}
    -#}
    Question: {{ question }}
    A: {{ first }}
    B: {{ second }}
    Which is better, A or B?

Modes and answer types:

- ``pairwise`` (variables from question, first, second): ``choice`` reads P(choice) from logprobs
  after ``prefill``; ``verdict`` generates and parses ``[[A]]``/``[[B]]``/``[[TIE]]`` strictly.
- ``pointwise`` (variables from question, response, reference): ``yesno`` reads P(first choice) of
  two (default Yes/No); ``score`` generates and needs exactly one match of ``pattern`` (default
  ``Score: N``) with N within ``[min, max]``.

Every variable the template uses must be declared, and only the mode's variables can be; the
template is rendered with ``StrictUndefined``. The judge id hashes the file's content. Texts are
rendered as they are; the ``defang`` filter (``{{ first | defang }}``) makes the delimiters that
judges' templates use (``</response_a>``, ``[End of Response A]``) inert inside them; the ``form``
filter (``{{ first | form }}``) gives how a text is built in one line (words, lines, list items, a
code block, its first and last sentence quoted and cut), for a small judge that does not notice
form by reading.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta

from ..backends import as_generator
from ..errors import BackendError, InputError
from ._common import ScoredAnswer, fit_texts, judge_id_for, text_sha256, yes_answer
from ._truncate import default_candidate_cap
from ._form import form_summary
from ._generate import parse_pairwise_verdict
from ._pairwise import defang, logprob_answer

_HEADER = re.compile(r"^\s*\{#-?\s*referee\s*(\{.*?\})\s*-?#\}", re.DOTALL)
MODE_VARIABLES = {"pairwise": ("question", "first", "second"), "pointwise": ("question", "response", "reference")}
ANSWER_TYPES = {"pairwise": ("choice", "verdict"), "pointwise": ("yesno", "score")}
DEFAULT_SCORE_PATTERN = r"(?i)score\s*[:=]\s*(-?\d+(?:\.\d+)?)"


def parse_score(text: str, pattern: str, lo: float, hi: float) -> float | None:
    """The one number ``pattern`` captures in ``text`` (all matches must agree), within ``[lo, hi]``."""
    if not isinstance(text, str):
        return None
    try:
        vals = {float(m.group(1)) for m in re.finditer(pattern, text)}
    except (ValueError, IndexError, re.error):
        return None
    if len(vals) != 1:
        return None
    v = vals.pop()
    if not (lo <= v <= hi):  # also refuses NaN
        return None
    return v


class CustomJudge:
    """A judge defined by a template file (see the module notes).

    Args:
        path: the template file.
        backend: what runs the model (llama.cpp or an OpenAI-compatible server).
        source: the template's text, when it is made rather than read (``path`` then names it in
            errors and in the judge's name).
    """

    def __init__(self, path: str | Path, backend: Any, *, max_tokens: int = 256, min_mass: float = 0.5,
                 max_candidate_tokens: int | None = None, name: str | None = None, source: str | None = None) -> None:
        path = Path(path)
        try:
            source = path.read_text(encoding="utf-8") if source is None else source
        except OSError as e:
            raise InputError(f"cannot read the judge template: {e}", path=path) from None
        m = _HEADER.match(source)
        if m is None:
            raise InputError("a judge template starts with a {#- referee {...JSON...} -#} header", path=path)
        try:
            header = json.loads(m.group(1))
        except ValueError as e:
            raise InputError(f"the template header is not JSON: {e}", path=path) from None
        mode = header.get("mode")
        if mode not in MODE_VARIABLES:
            raise InputError(f"mode must be one of {list(MODE_VARIABLES)}, not {mode!r}", path=path, field="mode")
        answer = dict(header.get("answer") or {})
        if answer.get("type") not in ANSWER_TYPES[mode]:
            raise InputError(f"answer type for {mode} must be one of {list(ANSWER_TYPES[mode])}", path=path,
                             field="answer.type")
        declared = list(header.get("variables") or [])
        allowed = MODE_VARIABLES[mode]
        if not set(declared) <= set(allowed):
            raise InputError(f"variables {sorted(set(declared) - set(allowed))} are not available in {mode} mode "
                             f"(available: {list(allowed)})", path=path, field="variables")
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
        env.filters["defang"] = defang  # `{{ first | defang }}`: forged delimiters in a text made inert
        env.filters["form"] = form_summary  # `{{ first | form }}`: how the text is built, in one line
        body = source[m.end():].lstrip("\n")
        try:
            used = meta.find_undeclared_variables(env.parse(body))
            self._template = env.from_string(body)
        except jinja2.TemplateSyntaxError as e:
            raise InputError(f"template syntax error: {e}", path=path, line=e.lineno) from None
        if not used <= set(declared):
            raise InputError(f"the template uses undeclared variables {sorted(used - set(declared))}", path=path,
                             field="variables")
        self.mode = mode
        self.answer = answer
        self.declared = declared
        self.system = str(header.get("system") or "")
        self.min_mass = min_mass
        self.max_tokens = int(answer.get("max_tokens", max_tokens))
        if max_candidate_tokens is None:
            max_candidate_tokens = default_candidate_cap(backend.context_size)
        self.max_candidate_tokens = max_candidate_tokens
        kind = answer["type"]
        if kind in ("choice", "yesno"):
            default = ["A", "B"] if kind == "choice" else ["Yes", "No"]
            self.choices = tuple(answer.get("choices") or default)
            self.prefill = str(answer.get("prefill", ""))
            self.backend = backend
            check = getattr(backend, "check_choices", None)
            if check is not None:
                try:
                    check(self.prefill, self.choices)
                except BackendError as e:
                    raise InputError(str(e), path=path, field="answer.prefill") from None
        else:
            self.choices = ("A", "B")
            self.prefill = ""
            self.backend = as_generator(backend)
            if kind == "score":
                self.pattern = str(answer.get("pattern", DEFAULT_SCORE_PATTERN))
                try:
                    if re.compile(self.pattern).groups < 1:
                        raise InputError("the score pattern needs one capture group", path=path, field="answer.pattern")
                except re.error as e:
                    raise InputError(f"bad score pattern: {e}", path=path, field="answer.pattern") from None
                self.lo, self.hi = float(answer.get("min", 1)), float(answer.get("max", 10))
        desc = self.backend.describe()
        self.name = name or f"{path.stem}:{desc.get('model', 'judge')}"
        self.use_reference = "reference" in declared
        self.spec: dict[str, Any] = {"mode": mode, "method": f"custom template, answer {kind}", "backend": desc,
                                     "template_sha256": text_sha256(source), "template_file": path.name,
                                     "answer": answer, "min_mass": min_mass, "use_reference": self.use_reference,
                                     "sampling": {"temperature": 0.0, "max_tokens": 0 if kind in ("choice", "yesno")
                                                  else self.max_tokens}}
        # Left out of the spec at 1536, the cap these judges always had, so their ids stay as they were;
        # any other cap cuts other texts and so makes another judge.
        if self.max_candidate_tokens != 1536:
            self.spec["max_candidate_tokens"] = self.max_candidate_tokens
        self.judge_id = judge_id_for("cu", self.spec)
        self._frame = self.backend.count_tokens(self.system + body) + 64 + (
            0 if kind in ("choice", "yesno") else self.max_tokens)

    def render(self, **values: str) -> list[dict[str, str]]:
        """The chat messages for these variable values."""
        text = self._template.render(**{k: v for k, v in values.items() if k in self.declared})
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": text}]

    def _probs(self, messages: list[dict[str, str]]) -> tuple[ScoredAnswer | None, Any]:
        try:
            res = self.backend.choice_probs(messages, self.prefill, self.choices)
        except BackendError as e:
            return ScoredAnswer(status="error", error=str(e)), None
        return None, res

    def judge(self, question: str, first: str, second: str) -> ScoredAnswer:
        if self.mode != "pairwise":
            raise TypeError("this custom judge is pointwise: call score()")
        question, (first, second), cut = fit_texts(self.backend, self._frame, question, [first, second],
                                                   self.max_candidate_tokens)
        msgs = self.render(question=question, first=first, second=second)
        if self.answer["type"] == "choice":
            err, res = self._probs(msgs)
            if err is not None:
                return err
            return logprob_answer(res, *self.choices, self.min_mass, cut)
        try:
            g = self.backend.generate(msgs, max_tokens=self.max_tokens)
        except BackendError as e:
            return ScoredAnswer(status="error", error=str(e), detail={"truncated": cut})
        v = parse_pairwise_verdict(g.text, tuple(self.choices))  # type: ignore[arg-type]
        common = dict(raw=g.text, prompt_tokens=g.prompt_tokens, latency_s=g.latency_s,
                      completion_tokens=g.completion_tokens)
        if v is None:
            return ScoredAnswer(status="unparseable", error="no single verdict tag", detail={"truncated": cut}, **common)
        return ScoredAnswer(status="ok", p_first={"first": 1.0, "second": 0.0, "tie": 0.5}[v],
                            detail={"truncated": cut, "verdict": v}, **common)

    def score(self, question: str, response: str, reference: str | None = None) -> ScoredAnswer:
        if self.mode != "pointwise":
            raise TypeError("this custom judge is pairwise: call judge()")
        texts = [response] + ([reference] if reference else [])
        question, fitted, cut = fit_texts(self.backend, self._frame, question, texts, self.max_candidate_tokens,
                                          ["response", "reference"][:len(texts)])
        msgs = self.render(question=question, response=fitted[0], reference=fitted[1] if reference else "")
        if self.answer["type"] == "yesno":
            err, res = self._probs(msgs)
            if err is not None:
                return err
            return yes_answer(res, *self.choices, self.min_mass, cut)
        try:
            g = self.backend.generate(msgs, max_tokens=self.max_tokens)
        except BackendError as e:
            return ScoredAnswer(status="error", error=str(e), detail={"truncated": cut})
        common = dict(raw=g.text, prompt_tokens=g.prompt_tokens, latency_s=g.latency_s,
                      completion_tokens=g.completion_tokens)
        s = parse_score(g.text, self.pattern, self.lo, self.hi)
        detail = {"truncated": cut, "scale": [self.lo, self.hi], "score_kind": "scale"}
        if s is None:
            return ScoredAnswer(status="unparseable", error=f"no single score in [{self.lo:g}, {self.hi:g}]",
                                detail=detail, **common)
        return ScoredAnswer(status="ok", score=s, detail=detail, **common)
