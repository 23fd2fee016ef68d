"""DSPy's side of an optimization: the system as a one-step program, and the engine that answers
DSPy's requests from referee's generation store.

The program is one ``dspy.Predict`` over :func:`system_signature`. :class:`SystemAdapter` renders
it the way ``referee generate`` runs a system -- the instruction as the system prompt, each demo
as a user/assistant turn, the prompt as the last user turn -- and reads the whole reply as the
response, so an optimized instruction means the same thing in DSPy and in a candidates file.
Other signatures (the optimizers' own: proposing instructions) go through DSPy's ChatAdapter.

:class:`StoreEngine` is a DSPy engine (``dspy.LM(engine=...)``): every request is keyed on the
model's identity, the messages, the sampling and a sample index, read from the store if it was
asked before and committed as soon as it is answered, so a rerun resumes and a trial already
scored costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage

from ..generate import StoredChat
from ..store import GenerationStore

PROMPT_DESC = "the user's prompt (referee system)"
RESPONSE_DESC = "the system's reply to the prompt"
FINISH = {"stop": "stop", "length": "length"}


def system_signature(instruction: str) -> type[dspy.Signature]:
    """The signature of a system: ``prompt -> response``, with ``instruction`` as its instructions."""
    return dspy.Signature({"prompt": dspy.InputField(desc=PROMPT_DESC),
                           "response": dspy.OutputField(desc=RESPONSE_DESC)}, instruction)


def is_system(signature: type[dspy.Signature]) -> bool:
    """Is this (a variant an optimizer made of) the system's signature?"""
    ins, outs = signature.input_fields, signature.output_fields
    return (list(ins) == ["prompt"] and list(outs) == ["response"]
            and (ins["prompt"].json_schema_extra or {}).get("desc") == PROMPT_DESC)


def system_messages(instruction: str, demos: list[dict[str, str]], prompt: str) -> list[dict[str, str]]:
    """What the model is sent: the instruction as system prompt, the demos as earlier turns, the prompt."""
    msgs = [{"role": "system", "content": instruction}] if instruction.strip() else []
    for d in demos:
        msgs += [{"role": "user", "content": d["prompt"]}, {"role": "assistant", "content": d["response"]}]
    return msgs + [{"role": "user", "content": prompt}]


def program_id(instruction: str, demos: list[dict[str, str]]) -> str:
    """A stable id of one candidate program (its instruction and demos)."""
    body = json.dumps({"instruction": instruction, "demos": demos}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:12]


@dataclass
class Seen:
    """The candidate programs DSPy ran, in the order first seen, and which one each thread runs now."""

    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    local: threading.local = field(default_factory=threading.local)

    def enter(self, instruction: str, demos: list[dict[str, str]]) -> str:
        pid = program_id(instruction, demos)
        self.programs.setdefault(pid, {"instruction": instruction, "demos": demos})
        self.local.current = pid
        return pid

    def current(self) -> str | None:
        return getattr(self.local, "current", None)


class SystemAdapter(dspy.JSONAdapter):
    """The system's signature as plain chat turns (see the module notes); any other as DSPy's JSON,
    constrained to the signature's schema (a grammar on llama.cpp), so a small model's proposal
    always parses -- or is a failure DSPy sees, never a guess."""

    def __init__(self, seen: Seen, **kw: Any) -> None:
        super().__init__(**kw)
        self.seen = seen
        self.unparseable = 0  # optimizer replies (proposals) that did not parse: counted, then DSPy's to handle

    def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any], signature: Any) -> None:
        if is_system(signature):
            return
        from dspy.adapters.json_adapter import _get_structured_outputs_response_format

        lm_kwargs["response_format"] = _get_structured_outputs_response_format(signature, False)

    def format(self, signature: Any, demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
        if not is_system(signature):
            return super().format(signature, demos, inputs)
        # a demo without a response (an unlabelled example the optimizer offers) has nothing to show
        shown = [{"prompt": str(d["prompt"]), "response": str(d["response"])} for d in demos
                 if d.get("prompt") and d.get("response")]
        self.seen.enter(signature.instructions, shown)
        return system_messages(signature.instructions, shown, str(inputs["prompt"]))

    def parse(self, signature: Any, completion: str) -> dict[str, Any]:
        if not is_system(signature):
            from dspy.utils.exceptions import AdapterParseError

            try:
                return super().parse(signature, completion)
            except AdapterParseError:
                self.unparseable += 1
                raise
        return {"response": completion}


class StoreEngine:
    """A DSPy engine whose every answer goes through a :class:`~referee.store.GenerationStore`.

    Args:
        role: what the model does here (``system``, ``proposer``): part of every key.
        model: a :class:`~referee.generate.GeneratorModel` (an ``openai:`` one: a server).
        store: the generation store.
        defaults: sampling for requests that set none (``max_tokens``, ``temperature``, ``top_p``,
            ``stop``, ``seed``).

    A request repeated at a temperature above 0 is a new sample (index counted per request, in
    call order, so a rerun in the same order reads the same samples back); at temperature 0 it is
    the same answer.
    """

    def __init__(self, role: str, model: Any, store: GenerationStore, defaults: dict[str, Any],
                 on_answer: Callable[[str, bool], None] | None = None, lock: Any = None) -> None:
        self.role, self.model, self.store, self.defaults = role, model, store, defaults
        self.on_answer = on_answer
        self.failed = 0
        self._truncated: set[str] = set()  # answers (keys) that stopped at max_tokens
        self._chats: dict[str, StoredChat] = {}
        self._draws: Counter[str] = Counter()
        # DSPy calls from its worker threads: one call at a time through the store (and the model)
        self._lock = lock or threading.RLock()

    def _chat(self, sampling: dict[str, Any], schema: dict[str, Any] | None) -> StoredChat:
        key = json.dumps([sampling, schema], sort_keys=True)
        if key not in self._chats:
            self._chats[key] = StoredChat(self.role, self.model, "", self.store, json_schema=schema, **sampling)
        return self._chats[key]

    @property
    def truncated(self) -> int:
        """Distinct answers that stopped at ``max_tokens``."""
        return len(self._truncated)

    @property
    def asked(self) -> int:
        return sum(c.asked for c in self._chats.values())

    @property
    def reused(self) -> int:
        return sum(c.reused for c in self._chats.values())

    def complete(self, request: Any) -> Response:
        msgs: list[dict[str, str]] = []
        if request.system is not None:
            system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
            msgs.append({"role": "system", "content": system})
        msgs += [{"role": m.role, "content": m.text or ""} for m in request.messages]
        cfg = request.config
        d = self.defaults
        sampling = {"max_tokens": cfg.max_tokens or d["max_tokens"],
                    "temperature": d["temperature"] if cfg.temperature is None else cfg.temperature,
                    "top_p": cfg.top_p if cfg.top_p is not None else d.get("top_p"),
                    "stop": list(cfg.stop) or list(d.get("stop") or []),
                    "seed": d["seed"] if cfg.seed is None else cfg.seed}
        schema = _schema(cfg.response_format)
        with self._lock:
            chat = self._chat(sampling, schema)
            ident = json.dumps([msgs, sampling, schema], sort_keys=True)
            sample = self._draws[ident] if sampling["temperature"] > 0 else 0
            self._draws[ident] += 1
            before = chat.reused
            got = chat.ask_all([(self.role, msgs)], samples=[sample])[0]
            if isinstance(got, BaseException):
                # DSPy scores a failed call as a failure and goes on: counted here, reported
                self.failed += 1
                raise got
            if got.truncated:
                self._truncated.add(got.key)
            if self.on_answer is not None:
                self.on_answer(self.role, chat.reused > before)
        return Response(id=got.key, model=str(self.model.identity.get("model") or self.role),
                        message=Message.assistant([TextPart(got.text)]),
                        finish_reason=FINISH.get(got.finish_reason or "", "stop"),
                        usage=Usage(input_tokens=got.prompt_tokens, output_tokens=got.completion_tokens,
                                    total_tokens=got.prompt_tokens + got.completion_tokens))

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


def _schema(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    if not fmt:
        return None
    if fmt.get("type") == "json_schema":
        # lm15's canonical form holds the schema itself; OpenAI's wire form nests it
        return fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    return None


def make_lm(engine: StoreEngine, name: str) -> dspy.LM:
    """A ``dspy.LM`` over ``engine``: no DSPy cache (the store is the cache) and no DSPy retries
    (the backend retries what can be retried)."""
    return dspy.LM(f"referee/{name}", engine=engine, cache=False, num_retries=0)
