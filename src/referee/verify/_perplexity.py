"""Fluency: mean token log-likelihood (and perplexity) of a candidate under a local causal LM."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import BackendError
from ..types import ScoredAnswer
from ._base import Verifier


class Perplexity(Verifier):
    """Mean log-probability per token of the response given the prompt, under llama.cpp.

    The prompt is rendered as a user turn with the model's chat template (``condition=False``:
    no prompt, the response alone after BOS); the response's tokens are scored one by one. The
    score is the mean token log-likelihood (higher = more fluent/expected); ``detail`` has the
    perplexity and the tokenizer that counted the tokens.

    Args:
        backend: a :class:`~referee.backends.LlamaCppBackend` or a model spec to load one.
        max_tokens: responses are scored on their first ``max_tokens`` tokens.
    """

    kind = "perplexity"

    def __init__(self, backend: Any = "smollm2-135m", *, condition: bool = True, max_tokens: int = 512,
                 n_ctx: int = 2048, name: str | None = None) -> None:
        if isinstance(backend, str):
            from ..backends import LlamaCppBackend

            backend = LlamaCppBackend(backend, n_ctx=n_ctx)
        self.backend = backend
        self.condition = condition
        self.max_tokens = max_tokens
        llm = backend.llm
        meta = llm.metadata
        self.tokenizer = {"model_name": backend.model_name, "model_sha256": backend.sha256,
                          "tokenizer": meta.get("tokenizer.ggml.model"), "n_vocab": llm.n_vocab(),
                          "add_bos": bool(llm._model.add_bos_token())}  # noqa: SLF001
        self._identify({"backend": backend.describe(), "tokenizer": self.tokenizer, "condition": condition,
                        "max_tokens": max_tokens}, name or f"perplexity:{backend.describe().get('model')}")

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        b, llm = self.backend, self.backend.llm
        if self.condition:
            ctx = b.encode([{"role": "user", "content": question}], "")
        else:
            ctx = [llm.token_bos()] if llm.token_bos() >= 0 else []
        resp = llm.tokenize(response.encode("utf-8"), add_bos=False, special=False)[: self.max_tokens]
        if not resp:
            return ScoredAnswer(status="ok", score=0.0, detail={"n_tokens": 0, "perplexity": 1.0,
                                                                "tokenizer": self.tokenizer})
        if not ctx:
            ctx, resp = resp[:1], resp[1:]
        ctx = ctx[-(b.context_size - len(resp) - 1):] if len(ctx) + len(resp) >= b.context_size else ctx
        if len(ctx) + len(resp) >= b.context_size:
            raise BackendError("response does not fit the context")
        logits = b._forward(ctx)  # noqa: SLF001 - reuses the shared KV cache
        total = 0.0
        for i, tok in enumerate(resp):
            lg = logits.astype(np.float64)
            m = lg.max()
            total += float(lg[tok] - m - math.log(np.exp(lg - m).sum()))
            if i + 1 < len(resp):
                logits = b._forward(ctx + resp[: i + 1], step=True)  # noqa: SLF001
        mean = total / len(resp)
        return ScoredAnswer(status="ok", score=mean, prompt_tokens=len(ctx) + len(resp),
                            detail={"n_tokens": len(resp), "mean_logprob": mean, "perplexity": math.exp(-mean),
                                    "tokenizer": self.tokenizer})
