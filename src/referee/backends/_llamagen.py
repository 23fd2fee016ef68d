"""Generation (optionally grammar-constrained) on the in-process llama.cpp backend.

:class:`LlamaCppBackend` scores choices in one forward pass; judges that need text (rubric scores
with diagnoses, rankings) wrap it in :class:`LlamaGenerator`, which adds :meth:`generate` with a
JSON schema turned into a llama.cpp grammar (``LlamaGrammar.from_json_schema``). Both share the
model and its KV cache.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..errors import BackendError
from ._protocol import Generation


@runtime_checkable
class GenerateBackend(Protocol):
    """A backend that generates text, optionally constrained to a JSON schema."""

    def describe(self) -> dict[str, Any]: ...

    def count_tokens(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int, marker: str, *, tail: float = 0.0) -> tuple[str, bool]: ...

    @property
    def context_size(self) -> int: ...

    def generate(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
                 json_schema: dict[str, Any] | None = None, top_p: float | None = None,
                 stop: Sequence[str] | None = None, seed: int | None = None) -> Generation: ...


class LlamaGenerator:
    """:class:`~referee.backends.LlamaCppBackend` plus greedy generation with grammars.

    Every other method (``choice_probs``, ``count_tokens``, ...) is the wrapped backend's.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._grammars: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def describe(self) -> dict[str, Any]:
        return self.backend.describe()

    @property
    def context_size(self) -> int:
        return self.backend.context_size

    def _grammar(self, schema: dict[str, Any]) -> Any:
        # in the schema's own order: the grammar writes properties in it, and what a model writes
        # first (a verdict, or the reasoning before it) changes what it writes next
        key = json.dumps(schema)
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar

            try:
                self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception as e:  # noqa: BLE001 - llama.cpp raises ValueError/RuntimeError
                raise BackendError(f"llama.cpp cannot turn the JSON schema into a grammar: {e}") from None
        return self._grammars[key]

    def generate(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
                 json_schema: dict[str, Any] | None = None, prefill: str = "", top_p: float | None = None,
                 stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """Greedy (or sampled, with ``temperature``, ``top_p`` and ``seed``; default: the backend's
        seed) generation after the model's chat template, ending at any of ``stop``."""
        t0 = time.perf_counter()
        # token ids, not a string: llama-cpp-python would parse special tokens in the texts
        prompt = self.backend.encode(messages, prefill)
        n_prompt = len(prompt)
        if n_prompt + 8 >= self.backend.context_size:
            raise BackendError(f"prompt of ~{n_prompt} tokens does not fit the context of {self.backend.context_size}")
        max_tokens = max(1, min(max_tokens, self.backend.context_size - n_prompt - 8))
        grammar = self._grammar(json_schema) if json_schema is not None else None
        try:
            self.backend.prime(prompt)
            extra: dict[str, Any] = {} if top_p is None else {"top_p": top_p}
            out = self.backend.llm.create_completion(prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                                                     top_k=1 if temperature == 0 else 40, grammar=grammar,
                                                     seed=self.backend.seed if seed is None else seed,
                                                     stop=list(stop) if stop else None, **extra)
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001
            self.backend.reset()
            raise BackendError(f"llama.cpp failed to generate: {e}") from None
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Generation(text=choice.get("text") or "", prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0),
                          latency_s=time.perf_counter() - t0, finish_reason=choice.get("finish_reason"))


def as_generator(backend: Any) -> Any:
    """``backend`` if it can generate, else the llama.cpp backend wrapped in :class:`LlamaGenerator`."""
    if callable(getattr(backend, "generate", None)):
        return backend
    if hasattr(backend, "llm") and hasattr(backend, "render"):
        return LlamaGenerator(backend)
    raise BackendError(f"backend {type(backend).__name__} cannot generate text")
