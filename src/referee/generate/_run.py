"""Generating candidates: every generation stored as it arrives, a rerun continues where one stopped."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._jsonl import write_jsonl
from .._version import __version__
from ..errors import BackendError, InputError
from ..load import Prompt
from ..store import Generated, GenerationStore, generation_key
from ._spec import SystemSpec


@dataclass
class GenerateResult:
    """What ``generate`` produced: the candidate rows (as written), and what it cost."""

    rows: list[dict[str, Any]]
    output: Path
    store: Path
    asked: int = 0
    reused: int = 0
    truncated: int = 0
    failed: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


def store_path_for(output: Path) -> Path:
    """Where the generations behind ``output`` are kept: ``out.jsonl`` -> ``out.generations.sqlite``."""
    return beside_output(output, ".generations.sqlite")


def beside_output(output: Path, suffix: str) -> Path:
    """A file kept beside ``output``: ``out.jsonl`` + ``.x.json`` -> ``out.x.json``."""
    return output.with_name(output.name.split(".")[0] + suffix)


class GeneratorModel:
    """One loaded model (llama.cpp in process, or an OpenAI-compatible server) and its identity.

    What :func:`generate` needs of a model (a Ray pool of them offers the same): ``identity``,
    ``chunk`` (generations to send at once) and ``submit(requests)``, which returns the function
    that waits for the answers (each a generation or its failure).
    """

    def __init__(self, spec: str, *, n_ctx: int, threads: int | None, concurrency: int) -> None:
        if spec.startswith("openai:"):
            from ..backends import OpenAIBackend, parse_openai_spec

            model, url = parse_openai_spec(spec)
            self.backend: Any = OpenAIBackend(model, url, n_ctx=n_ctx, seed=None, concurrency=concurrency)
            self.http = True
            self.template_sha256 = None  # the server renders its own chat template
        else:
            from ..backends import LlamaCppBackend, LlamaGenerator

            llama = LlamaCppBackend(spec, n_ctx=n_ctx, n_threads=threads)
            self.backend = LlamaGenerator(llama)
            self.http = False
            template = (getattr(llama.llm, "metadata", None) or {}).get("tokenizer.chat_template") or ""
            self.template_sha256 = hashlib.sha256(template.encode()).hexdigest()
        self.identity = {**self.backend.describe(), "chat_template_sha256": self.template_sha256}
        # In process, one generation at a time, each committed before the next is asked.
        self.chunk = max(1, self.backend.concurrency) if self.http else 1

    def generate_many(self, requests: Sequence[dict[str, Any]]) -> list[Any]:
        """Each request's generation, or its failure (a :class:`BackendError`), in order."""
        if self.http:
            return self.backend.generate_many(list(requests))
        out: list[Any] = []
        for r in requests:
            try:
                out.append(self.backend.generate(**r))
            except BackendError as e:
                out.append(e)
        return out

    def submit(self, requests: Sequence[dict[str, Any]]) -> Callable[[], list[Any]]:
        return lambda: self.generate_many(requests)


def generate(prompts: dict[str, Prompt], systems: Sequence[SystemSpec], output: str | Path, *,
             n_ctx: int = 4096, threads: int | None = None, concurrency: int = 8,
             on_generation: Callable[[Generated, bool], None] | None = None,
             on_start: Callable[[int], None] | None = None, prompts_source: str = "",
             make_model: Callable[[str], Any] | None = None) -> GenerateResult:
    """Generate ``n`` samples per prompt for each system and write them as a candidates file.

    Every generation is committed to ``store_path_for(output)`` as it arrives, keyed by the system's
    model identity, system prompt and sampling, the prompt text, the sample index and its seed: a
    rerun (after Ctrl-C or ``kill -9``) asks only what is missing. The candidates file (JSONL, read
    by ``rank``, ``select`` and ``export`` as it is) gets one row per generation: ``system`` is
    ``NAME`` (or ``NAME#k`` with several samples), with ``sample``, tokens, finish reason,
    ``truncated`` (stopped at ``max_tokens``), latency and the generation's provenance.

    Models are loaded one at a time, each for all the systems that use it. ``make_model(spec)``
    builds them (default: :class:`GeneratorModel` in process; ``referee.engine.ray_generators``
    gives Ray actors); a model with ``close()`` is closed when its systems are done.

    Raises:
        InputError: no systems, or two with one name. BackendError: a model cannot be loaded or
        fails (generations stored so far are kept).
    """
    output = Path(output)
    if not systems:
        raise InputError("give at least one --system NAME=SPEC (or --systems FILE)", field="--system")
    names = [s.name for s in systems]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"system name(s) {', '.join(dup)} given twice", field="--system")
    t0 = time.perf_counter()
    total = sum(s.n for s in systems) * len(prompts)
    if on_start is not None:
        on_start(total)
    res = GenerateResult(rows=[], output=output, store=store_path_for(output))
    make_model = make_model or (lambda m: GeneratorModel(m, n_ctx=n_ctx, threads=threads, concurrency=concurrency))
    identities: dict[str, dict[str, Any]] = {}
    engines: dict[str, dict[str, Any]] = {}
    with GenerationStore(res.store, lock=True) as store:
        for name in dict.fromkeys(s.model for s in systems):
            model = make_model(name)
            try:
                identities[name] = model.identity
                for spec in systems:
                    if spec.model == name:
                        _generate_system(spec, model, prompts, store, res, on_generation)
            finally:
                if callable(getattr(model, "close", None)):
                    model.close()
                engines[name] = getattr(model, "engine", {"kind": "local"})
    order = {pid: i for i, pid in enumerate(prompts)}
    res.rows.sort(key=lambda r: (order[r["prompt_id"]], names.index(r["base_system"]), r["sample"]))
    res.truncated = sum(r["truncated"] for r in res.rows)
    res.provenance = {
        "referee_version": __version__, "prompts": {"source": prompts_source, "count": len(prompts)},
        "systems": [{**s.model_dump(), "model_identity": identities[s.model],
                     "engine": engines[s.model]} for s in systems],
        "generations": len(res.rows), "asked": res.asked, "reused": res.reused, "truncated": res.truncated,
        "failed": res.failed, "elapsed_s": round(time.perf_counter() - t0, 3), "store": str(res.store),
    }
    write_jsonl(output, res.rows)
    beside_output(output, ".generate.json").write_text(json.dumps(res.provenance, indent=2, default=str) + "\n", encoding="utf-8")
    return res


def _generate_system(spec: SystemSpec, model: Any, prompts: dict[str, Prompt], store: GenerationStore,
                     res: GenerateResult, on_generation: Callable[[Generated, bool], None] | None) -> None:
    system_prompt = spec.resolved_system_prompt()
    identity = {"model": model.identity, "system_prompt": system_prompt, **spec.sampling()}
    todo: list[tuple[str, int, int, str]] = []
    for pid, prompt in prompts.items():
        for k in range(spec.n):
            seed = spec.seed + k
            key = generation_key(identity, prompt.text, k, seed)
            got = store.get(key)
            if got is not None:
                res.reused += 1
                res.rows.append(_row(spec, prompt, got))
                if on_generation is not None:
                    on_generation(got, True)
            else:
                todo.append((pid, k, seed, key))
    provenance = {"model": model.identity, "system_prompt_sha256": None if system_prompt is None else
                  hashlib.sha256(system_prompt.encode()).hexdigest(), "sampling": spec.sampling(),
                  "referee_version": __version__}

    def request(pid: str, seed: int) -> dict[str, Any]:
        msgs = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + \
            [{"role": "user", "content": prompts[pid].text}]
        return {"messages": msgs, "max_tokens": spec.max_tokens, "temperature": spec.temperature,
                "top_p": spec.top_p, "stop": spec.stop or None, "seed": seed}

    def keep(pid: str, k: int, seed: int, key: str, g: Any) -> None:
        rec = Generated(key=key, system=spec.name, prompt_id=pid, sample=k, seed=seed, text=g.text,
                        prompt_tokens=g.prompt_tokens, completion_tokens=g.completion_tokens,
                        finish_reason=g.finish_reason, latency_s=round(g.latency_s, 4),
                        provenance={**provenance, "seed": seed})
        store.put(rec)  # committed before the next one is asked
        res.asked += 1
        res.rows.append(_row(spec, prompts[pid], rec))
        if on_generation is not None:
            on_generation(rec, False)

    # The next batch goes out before the current one is committed: a pool of workers answers it
    # meanwhile (in process, submit only defers the call).
    requests = [request(pid, seed) for pid, _, seed, _ in todo]

    def send(start: int) -> tuple[int, int, Callable[[], list[Any]]]:
        end = min(len(todo), start + max(1, model.chunk))
        return start, end, model.submit(requests[start:end])

    pending = send(0) if todo else None
    while pending is not None:
        start, end, wait = pending
        outs = wait()
        pending = send(end) if end < len(todo) else None
        for (pid, k, seed, key), g in zip(todo[start:end], outs):
            if isinstance(g, BaseException):
                res.failed.append(f"{spec.name} on {pid} (sample {k}): {g}")
            else:
                keep(pid, k, seed, key, g)


def _row(spec: SystemSpec, prompt: Prompt, g: Generated) -> dict[str, Any]:
    row = {"prompt_id": prompt.id, "prompt": prompt.text, "system": spec.candidate_name(g.sample), "output": g.text,
           "base_system": spec.name, "sample": g.sample, "tokens": g.completion_tokens,
           "prompt_tokens": g.prompt_tokens, "finish_reason": g.finish_reason, "truncated": g.truncated,
           "latency_s": g.latency_s, "generation": g.provenance}
    if prompt.reference is not None:
        row["reference"] = prompt.reference
    return row
