"""Judge specs (``--judge``, ``--mode``, ``--template``) to judges: what :func:`make_judge` builds.

``--judge`` forms:

- ``qwen2.5-coder-1.5b``, ``smollm2-135m``, ``/path/model.gguf``: llama.cpp in process;
- ``openai:MODEL@URL``: an OpenAI-compatible server (key from ``$REFEREE_API_KEY`` or
  ``$OPENAI_API_KEY``); pairwise mode reads logprobs and refuses a server that returns no
  ``top_logprobs`` (``--mode pairwise-generate`` generates and parses a ``[[A]]``/``[[B]]``/``[[TIE]]``
  verdict instead);
- ``replay:FILE.jsonl[#annotator]``: recorded verdicts played back (pairwise only);
- ``verify:NAME[:ARG]``: a verifier (bleu, chrf, exact, regex:PATTERN, length:MAX_WORDS,
  json-schema:SCHEMA.json, python-tests[:TIMEOUT], examples[:TIMEOUT], perplexity[:MODEL]);
- ``FILE.json`` / ``FILE.toml``: a judge config file (see :func:`load_judge_config`).

``--mode``: ``pairwise`` (default), ``pairwise-generate``, ``pointwise`` (rubric score + diagnoses),
``pyes`` (pointwise P(Yes)), ``listwise``. ``--template FILE`` makes a :class:`CustomJudge`
(its header declares the mode); ``--template constitution.json`` (from ``referee principles``) a
:class:`~referee.judge._principled.ConstitutionJudge`, which decides by its principles' votes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError

MODES = ("pairwise", "pairwise-generate", "pointwise", "pyes", "listwise")


def make_backend(spec: str, *, n_ctx: int = 4096, seed: int = 0, **options: Any) -> Any:
    """The backend named by a ``--judge`` spec (llama.cpp model or ``openai:MODEL@URL``); ``options``
    go to :class:`~referee.backends.OpenAIBackend`."""
    if spec.startswith("openai:"):
        from ..backends import OpenAIBackend, parse_openai_spec

        model, url = parse_openai_spec(spec)
        if isinstance(options.get("api_key_env"), str):
            options["api_key_env"] = (options["api_key_env"],)
        return OpenAIBackend(model, url, n_ctx=n_ctx, seed=seed, **options)
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
    if name == "examples":
        return verify.PublicExamples(timeout=float(arg) if arg else 10.0)
    cls = {"bleu": verify.Bleu, "chrf": verify.Chrf, "exact": verify.ExactMatch}.get(name)
    if cls is None:
        raise InputError(f"unknown verifier {name!r}: one of {sorted(verify.VERIFIERS)}", field="--judge")
    return cls()


BACKEND_KEYS = ("concurrency", "timeout", "max_retries", "backoff", "max_backoff", "top_logprobs", "api_key_env",
                "chars_per_token", "tokenizer")
JUDGE_KEYS = {"pointwise": ("scale", "taxonomy", "max_diagnoses", "max_tokens", "max_chars", "use_reference"),
              "pyes": ("use_reference",), "listwise": ("max_k", "max_tokens"),
              "pairwise-generate": ("max_tokens",), "pairwise": ()}


def read_config_file(path: Path, what: str, field: str | None = None) -> Any:
    """The contents of a ``.toml`` or (otherwise) JSON file, or one :class:`InputError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {what}: {e}", path=path, field=field) from None


def load_judge_config(path: str | Path) -> dict[str, Any]:
    """A judge config file (JSON or TOML): ``judge`` (a spec), optional ``mode``, ``template``,
    ``n_ctx``, ``min_mass``, backend settings (``concurrency``, ``timeout``, ``max_retries``,
    ``backoff``, ``top_logprobs``, ``api_key_env`` = the NAME of the variable holding the key) and
    judge settings (``scale``, ``taxonomy``, ``max_diagnoses``, ``max_tokens``, ``max_k``, ...).
    A key itself is refused: keys live in the environment only."""
    path = Path(path)
    cfg = read_config_file(path, "the judge config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("judge"), str):
        raise InputError("a judge config needs a 'judge' spec string", path=path, field="judge")
    for k in cfg:
        if k.lower() in ("api_key", "key", "token", "authorization", "password", "secret"):
            raise InputError(f"'{k}' in a config file: put the API key in an environment variable "
                             "($REFEREE_API_KEY or one named by api_key_env)", path=path, field=k)
    allowed = {"judge", "mode", "template", "n_ctx", "min_mass", "seed", "price", *BACKEND_KEYS,
               *(k for ks in JUDGE_KEYS.values() for k in ks)}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise InputError(f"unknown judge config keys {unknown}; known: {sorted(allowed)}", path=path)
    return cfg


def judge_kind(spec: str) -> str:
    """What a ``--judge`` spec runs on: ``openai``, ``replay``, ``verify`` or ``llama`` (in process);
    a judge config file is looked through to its ``judge``."""
    if spec.endswith((".json", ".toml")) and Path(spec).is_file():
        spec = load_judge_config(spec)["judge"]
    for kind in ("openai", "replay", "verify"):
        if spec.startswith(kind + ":"):
            return kind
    return "llama"


def build_judge(spec: str, *, n_ctx: int = 4096, seed: int = 0, min_mass: float = 0.5, mode: str = "pairwise",
                template: str | Path | None = None, max_candidate_tokens: int | None = None,
                concurrency: int | None = None, probe: bool = True) -> Any:
    """Build the judge for ``--judge spec --mode mode [--template FILE]`` (see the module notes).

    ``spec`` may also be a judge config file (``.json``/``.toml``, see :func:`load_judge_config`);
    its settings win over the arguments, except ``max_candidate_tokens`` and ``concurrency``,
    which are only ever given on purpose. ``max_candidate_tokens`` (``None``: the judge's own
    default) applies to LLM judges, ``concurrency`` to ``openai:`` judges; given to any other
    judge, either is an :class:`InputError` rather than ignored. ``probe=False`` skips asking the
    server whether it returns logprobs (a one-token completion; ``rank --dry-run`` asks nothing).
    """
    if spec.endswith((".json", ".toml")) and Path(spec).is_file():
        cfg = load_judge_config(spec)
        mode = cfg.get("mode", mode)
        template = cfg.get("template", template)
        n_ctx, seed, min_mass = cfg.get("n_ctx", n_ctx), cfg.get("seed", seed), cfg.get("min_mass", min_mass)
        inner = cfg["judge"]
        backend_opts = {k: cfg[k] for k in BACKEND_KEYS if k in cfg}
        if "price" in cfg:
            from ._cost import parse_price

            backend_opts["price"] = parse_price(cfg["price"], where=f"{spec}: price")
        if backend_opts and not inner.startswith("openai:"):
            raise InputError(f"{sorted(backend_opts)} apply to openai: judges only", path=spec)
        judge_opts = {k: cfg[k] for k in JUDGE_KEYS.get(mode, ()) if k in cfg}
        if "scale" in judge_opts:
            judge_opts["scale"] = tuple(judge_opts["scale"])
        return _build(inner, n_ctx=n_ctx, seed=seed, min_mass=min_mass, mode=mode, template=template,
                      backend_opts=backend_opts, judge_opts=judge_opts, max_candidate_tokens=max_candidate_tokens,
                      concurrency=concurrency, probe=probe)
    return _build(spec, n_ctx=n_ctx, seed=seed, min_mass=min_mass, mode=mode, template=template,
                  max_candidate_tokens=max_candidate_tokens, concurrency=concurrency, probe=probe)


def _build(spec: str, *, n_ctx: int, seed: int, min_mass: float, mode: str, template: str | Path | None,
           backend_opts: dict[str, Any] | None = None, judge_opts: dict[str, Any] | None = None,
           max_candidate_tokens: int | None = None, concurrency: int | None = None, probe: bool = True) -> Any:
    judge_opts = dict(judge_opts or {})
    backend_opts = dict(backend_opts or {})
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}: one of {', '.join(MODES)}", field="--mode")
    kind = judge_kind(spec)
    if concurrency is not None:
        if kind != "openai":
            raise InputError(f"--concurrency applies to openai: judges only, not to {spec}", field="--concurrency")
        backend_opts["concurrency"] = concurrency
    if max_candidate_tokens is not None:
        if kind in ("replay", "verify"):
            raise InputError(f"--max-candidate-tokens applies to LLM judges only; {spec} reads whole texts",
                             field="--max-candidate-tokens")
        judge_opts["max_candidate_tokens"] = max_candidate_tokens
    if spec.startswith("replay:"):
        from ..backends import ReplayJudge

        if mode != "pairwise":
            raise InputError("replayed verdicts are pairwise: use --mode pairwise", field="--mode")
        path, _, annotator = spec[len("replay:"):].partition("#")
        return ReplayJudge(path, annotator=annotator or None)
    if spec.startswith("verify:"):
        return make_verifier(spec, n_ctx=n_ctx)
    price = backend_opts.pop("price", None)
    backend = make_backend(spec, n_ctx=n_ctx, seed=seed, **backend_opts)
    if price is not None:
        backend.price = price
    cut = {k: judge_opts.pop(k) for k in ("max_candidate_tokens",) if k in judge_opts}
    if template is not None and str(template).endswith(".json"):
        from ._principled import ConstitutionJudge

        return ConstitutionJudge(template, backend, min_mass=min_mass, **cut)
    if template is not None:
        from ._custom import CustomJudge

        return CustomJudge(template, backend, min_mass=min_mass, **cut)
    if mode in ("pairwise", "pairwise-generate"):
        from ._generate import GeneratePairwiseJudge
        from ._pairwise import PairwiseLogprobJudge

        if mode == "pairwise-generate":
            return GeneratePairwiseJudge(backend, **judge_opts, **cut)
        # What the server can do decides whether this judge works, never which judge it is: a
        # switch to generated verdicts here would give another judge id, and a resumed run would
        # pay for every question again.
        if probe and callable(getattr(backend, "supports_logprobs", None)) and not backend.supports_logprobs():
            raise InputError(f"{backend.describe().get('base_url', spec)} returns no top_logprobs for chat "
                             "completions, which the logprob judge reads; use --mode pairwise-generate to "
                             "generate and parse verdicts instead", field="--mode")
        return PairwiseLogprobJudge(backend, min_mass=min_mass, **cut)
    if mode == "pointwise":
        from ._pointwise import RubricJudge

        return RubricJudge(backend, **judge_opts, **cut)
    if mode == "pyes":
        from ._pointwise import YesProbabilityJudge

        return YesProbabilityJudge(backend, min_mass=min_mass, **judge_opts, **cut)
    from ._listwise import ListwiseJudge

    return ListwiseJudge(backend, **judge_opts, **cut)
