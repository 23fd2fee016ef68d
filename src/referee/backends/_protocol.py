"""What a judge needs from whatever runs its model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class ChoiceProbs:
    """The next-token probabilities of a few answer choices after a prompt and a prefill.

    Attributes:
        probs: choice -> probability of the next token spelling it (all its tokenisations summed).
        top: the most likely next tokens, ``(text, logprob)``, for the raw record.
        prompt_tokens: tokens in the full prompt.
        evaluated_tokens: tokens actually computed (the rest came from the KV cache).
        completion_tokens: tokens the server generated and billed (HTTP; 0 in process).
        latency_s: wall time of the call.
    """

    probs: dict[str, float]
    top: list[tuple[str, float]] = field(default_factory=list)
    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    latency_s: float = 0.0
    completion_tokens: int = 0


@dataclass
class Generation:
    """Generated text and what it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None
    logprobs: list[dict[str, Any]] | None = None


@runtime_checkable
class ChoiceBackend(Protocol):
    """A backend that can score answer choices from logprobs in one forward pass."""

    def describe(self) -> dict[str, Any]:
        """Everything that identifies the model and its settings (goes into the judge id)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int, marker: str, *, tail: float = 0.0) -> tuple[str, bool]:
        """``text`` cut to at most ``max_tokens`` tokens, and whether it was cut. The cut keeps the head, then
        ``marker``, then the last ``tail`` share of the kept tokens (0: the marker ends the text)."""
        ...

    @property
    def context_size(self) -> int: ...

    def choice_probs(self, messages: Sequence[dict[str, str]], prefill: str,
                     choices: Sequence[str]) -> ChoiceProbs:
        """P(next token is each choice) after the chat ``messages`` and the assistant ``prefill``."""
        ...
