"""Judge specs (``--judge``, ``--mode``, ``--template``) to judges: what :func:`make_judge` builds.

``--judge`` forms:

- ``qwen2.5-coder-1.5b``, ``smollm2-135m``, ``/path/model.gguf``: llama.cpp in process;
- ``openai:MODEL@URL``: an OpenAI-compatible server (key from ``$REFEREE_API_KEY`` or
  ``$OPENAI_API_KEY``); pairwise mode reads logprobs when the server returns ``top_logprobs``,
  otherwise it generates and parses a ``[[A]]``/``[[B]]``/``[[TIE]]`` verdict;
- ``replay:FILE.jsonl[#annotator]``: recorded verdicts played back (pairwise only);
- ``verify:NAME[:ARG]``: a verifier (bleu, chrf, exact, regex:PATTERN, length:MAX_WORDS,
  json-schema:SCHEMA.json, python-tests, perplexity[:MODEL]).

``--mode``: ``pairwise`` (default), ``pairwise-generate``, ``pointwise`` (rubric score + diagnoses),
``pyes`` (pointwise P(Yes)), ``listwise``. ``--template FILE`` makes a :class:`CustomJudge`
(its header declares the mode).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError

MODES = ("pairwise", "pairwise-generate", "pointwise", "pyes", "listwise")


def make_backend(spec: str, *, n_ctx: int = 4096, seed: int = 0) -> Any:
    """The backend named by a ``--judge`` spec (llama.cpp model or ``openai:MODEL@URL``)."""
    if spec.startswith("openai:"):
        from ..backends._openai import OpenAIBackend, parse_openai_spec

        model, url = parse_openai_spec(spec)
        return OpenAIBackend(model, url, n_ctx=n_ctx, seed=seed)
    from ..backends import LlamaCppBackend

    return LlamaCppBackend(spec, n_ctx=n_ctx, seed=seed)


def make_verifier(spec: str, *, n_ctx: int = 4096) -> Any:
    """``verify:NAME[:ARG]`` -> a verifier."""
    from .. import verify

    body = spec.split(":", 1)[1] if spec.startswith("verify:") else spec
    name, _, arg = body.partition(":")
    if name == "regex":
        return verify.RegexMatch(arg or None)
    if name == "length":
        return verify.LengthCheck(max_words=int(arg)) if arg else verify.LengthCheck()
    if name == "json-schema":
        if not arg:
            raise InputError("verify:json-schema needs a schema file: verify:json-schema:SCHEMA.json", field="--judge")
        try:
            schema = json.loads(Path(arg).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the JSON schema: {e}", path=arg) from None
        return verify.JsonSchemaCheck(schema)
    if name == "perplexity":
        return verify.Perplexity(arg or "smollm2-135m", n_ctx=n_ctx)
    if name == "python-tests":
        return verify.PythonTests(None, timeout=float(arg) if arg else 10.0)
    cls = {"bleu": verify.Bleu, "chrf": verify.Chrf, "exact": verify.ExactMatch}.get(name)
    if cls is None:
        raise InputError(f"unknown verifier {name!r}: one of {sorted(verify.VERIFIERS)}", field="--judge")
    return cls()


def build_judge(spec: str, *, n_ctx: int = 4096, seed: int = 0, min_mass: float = 0.5, mode: str = "pairwise",
                template: str | Path | None = None) -> Any:
    """Build the judge for ``--judge spec --mode mode [--template FILE]`` (see the module notes)."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}: one of {', '.join(MODES)}", field="--mode")
    if spec.startswith("replay:"):
        from ..backends._replay import ReplayJudge

        if mode != "pairwise":
            raise InputError("replayed verdicts are pairwise: use --mode pairwise", field="--mode")
        path, _, annotator = spec[len("replay:"):].partition("#")
        return ReplayJudge(path, annotator=annotator or None)
    if spec.startswith("verify:"):
        return make_verifier(spec, n_ctx=n_ctx)
    backend = make_backend(spec, n_ctx=n_ctx, seed=seed)
    if template is not None:
        from ._custom import CustomJudge

        return CustomJudge(template, backend, min_mass=min_mass)
    if mode in ("pairwise", "pairwise-generate"):
        from ._generate import GeneratePairwiseJudge
        from ._pairwise import PairwiseLogprobJudge

        generate = mode == "pairwise-generate"
        if not generate and callable(getattr(backend, "supports_logprobs", None)):
            generate = not backend.supports_logprobs()
        return GeneratePairwiseJudge(backend) if generate else PairwiseLogprobJudge(backend, min_mass=min_mass)
    if mode == "pointwise":
        from ._pointwise import RubricJudge

        return RubricJudge(backend)
    if mode == "pyes":
        from ._pointwise import YesProbabilityJudge

        return YesProbabilityJudge(backend, min_mass=min_mass)
    from ._listwise import ListwiseJudge

    return ListwiseJudge(backend)
