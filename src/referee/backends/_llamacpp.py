"""llama.cpp in-process backend (llama-cpp-python): one forward pass, logits read directly."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError
from ._models import resolve_model
from ._protocol import ChoiceProbs

DEFAULT_N_CTX = 4096
# Prompt tokens are evaluated in batches that start at multiples of this (see _forward). On 24
# AlpacaEval verdicts with Qwen, 64 cost 4.85 s a verdict against 4.65 s for one batch from the
# cached prefix on; 32 cost 5.37 s (small batches), 512 4.79 s (but reuses nothing under 512).
_BLOCK = 64
# Where each message's text goes in the rendered chat template (private-use characters).
_SLOT = re.compile("\ue000(\\d+)\ue001")


class LlamaCppBackend:
    """A GGUF model run by llama.cpp in this process.

    Consecutive calls reuse the KV cache for their longest common token prefix, so verdicts
    that share instructions and a prompt only pay for the tokens that differ.

    Args:
        model: a packaged model name or a path to a GGUF file (see :func:`resolve_model`).
        n_ctx: context window in tokens.
        n_threads: CPU threads (default: ``REFEREE_THREADS`` if set, which a Ray actor sets to the
            CPUs it holds, else all cores).
        seed: llama.cpp's seed (no sampling happens; recorded for provenance).
    """

    def __init__(self, model: str, *, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None,
                 seed: int = 0) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise BackendError("the embedded judge needs llama-cpp-python: pip install llama-cpp-python") from None
        self._lib = llama_cpp
        self.model_spec = model
        self.path, self.sha256, self.model_name = resolve_model(model)
        self.n_threads = n_threads or int(os.environ.get("REFEREE_THREADS") or 0) or os.cpu_count() or 1
        self.seed = seed
        # Prefill threads too: llama-cpp-python's default for them is every core, so two 1-thread Ray
        # actors on 2 cores would run 4 spinning threads and slow each other down.
        try:
            self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=self.n_threads,
                                       n_threads_batch=self.n_threads, n_batch=512, seed=seed, logits_all=False,
                                       verbose=False)
        except Exception as e:  # llama.cpp reports load failures as ValueError/RuntimeError
            raise BackendError(f"llama.cpp could not load {self.path}: {e}") from None
        self._n_vocab = self.llm.n_vocab()
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{self.path} has no chat template: it is not an instruction-tuned chat model")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._template = template
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self.llm.token_eos()),
            bos_token=self._token_text(self.llm.token_bos()),
            add_generation_prompt=True,
        )
        self._choice_ids: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self._spaced: dict[str, bool] = {}  # choice -> has a single-token " c" spelling
        self._pieces_cache: dict[str, list[int | str]] = {}

    # -- identity ------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "backend": "llama.cpp",
            "model": self.model_spec if not Path(self.model_spec).suffix else Path(self.model_spec).name,
            "model_name": self.model_name,
            "model_sha256": self.sha256,
            "n_ctx": self.context_size,
            "llama_cpp_python": getattr(self._lib, "__version__", "?"),
        }

    @property
    def context_size(self) -> int:
        return self.llm.n_ctx()

    # -- tokens --------------------------------------------------------------------------------
    def _token_text(self, tok: int) -> str:
        if tok < 0:
            return ""
        return self.llm.detokenize([tok], special=True).decode("utf-8", errors="replace")

    def _plain(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def _template_pieces(self, text: str) -> list[int | str]:
        """``text`` (rendered by the chat template, no untrusted text in it) as plain strings and the
        ids of the control tokens it spells, in order."""
        got = self._pieces_cache.get(text)
        if got is None:
            specials = {self._token_text(t) for t in self.llm.tokenize(text.encode("utf-8"), add_bos=False,
                                                                       special=True) if self._is_control(t)}
            specials.discard("")
            got = []
            if specials:
                for part in re.split("(" + "|".join(map(re.escape, sorted(specials, key=len, reverse=True))) + ")",
                                     text):
                    if part in specials:
                        got.append(self.llm.tokenize(part.encode("utf-8"), add_bos=False, special=True)[0])
                    elif part:
                        got.append(part)
            elif text:
                got.append(text)
            self._pieces_cache[text] = got
        return got

    def _is_control(self, tok: int) -> bool:
        # llama.cpp writes a control token's text only when asked for special pieces
        return not self.llm.detokenize([tok], special=False) and bool(self.llm.detokenize([tok], special=True))

    def encode(self, messages: Sequence[dict[str, str]], prefill: str = "") -> list[int]:
        """The token ids the model sees for ``messages`` and the assistant ``prefill``.

        Only the chat template's own markers become control tokens. Message texts (which carry
        prompts and candidates) and the prefill are tokenized as plain text, so a candidate that
        writes ``<|im_end|>`` shows those characters to the model instead of ending its turn.
        The plain text on either side of a message is tokenized together with it, which is what
        llama.cpp does for a prompt without special strings in its texts.
        """
        marked = [{**m, "content": f"\ue000{i}\ue001"} for i, m in enumerate(messages)]
        rendered = self._formatter(messages=marked).prompt
        parts = _SLOT.split(rendered)
        seq: list[int | str] = []
        for k, part in enumerate(parts):
            if k % 2:
                seq.append(str(messages[int(part)].get("content") or ""))
            else:
                seq.extend(self._template_pieces(part))
        seq.append(prefill)
        ids: list[int] = []
        if self._needs_bos(rendered):
            ids.append(self.llm.token_bos())
        text = ""
        for piece in seq:
            if isinstance(piece, str):
                text += piece
            else:
                ids += self._plain(text)
                text = ""
                ids.append(piece)
        return ids + self._plain(text)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def truncate(self, text: str, max_tokens: int, marker: str, *, tail: float = 0.0) -> tuple[str, bool]:
        toks = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(toks) <= max_tokens:
            return text, False
        keep = max(0, max_tokens - self.count_tokens(marker))
        if not tail:
            head = self.llm.detokenize(toks[:keep]).decode("utf-8", errors="ignore")
            return head + marker, True
        # Tokens can merge across the seams once the pieces are joined: shrink until the whole fits.
        for _ in range(8):
            n_tail = int(keep * tail)
            head = self.llm.detokenize(toks[:keep - n_tail]).decode("utf-8", errors="ignore")
            end = self.llm.detokenize(toks[len(toks) - n_tail:]).decode("utf-8", errors="ignore") if n_tail else ""
            out = head + marker + end
            over = self.count_tokens(out) - max_tokens
            if over <= 0 or keep <= 0:
                return out, True
            keep = max(0, keep - over)
        return out, True

    def render(self, messages: Sequence[dict[str, str]], prefill: str) -> str:
        """The exact text the model sees: its own chat template, then the assistant prefill."""
        return self._formatter(messages=list(messages)).prompt + prefill

    def _ids_for(self, choices: Sequence[str]) -> dict[str, list[int]]:
        # Every single token that spells a choice, with or without a leading space: after
        # "...Response" the model may emit " A" or "A" and both mean the same answer.
        key = tuple(choices)
        if key not in self._choice_ids:
            ids: dict[str, list[int]] = {}
            for c in choices:
                found = set()
                for variant in (c, " " + c):
                    toks = self.llm.tokenize(variant.encode("utf-8"), add_bos=False, special=False)
                    if len(toks) == 1:
                        found.add(toks[0])
                        if variant != c:
                            self._spaced[c] = True
                self._spaced.setdefault(c, False)
                if not found:
                    raise BackendError(f"answer choice {c!r} is not a single token for {self.model_name}")
                ids[c] = sorted(found)
            self._choice_ids[key] = ids
        return self._choice_ids[key]

    def check_choices(self, prefill: str, choices: Sequence[str]) -> dict[str, list[int]]:
        """The token ids of ``choices``, refusing a prefill they cannot follow in one token.

        Raises:
            BackendError: a choice is not a single token, or the prefill ends in a word and a choice
                has no single-token spelling with a leading space (Qwen's digits): after
                "...Response" the model would have to write the space first, the choices' mass is
                near 0 and every verdict unreadable. Ending the prefill with a space fixes it.
        """
        ids = self._ids_for(choices)
        lone = [c for c in choices if self._spaced.get(c) is False]
        if prefill[-1:].isalnum() and lone:
            raise BackendError(f"answer choice(s) {', '.join(map(repr, lone))} have no single token with a "
                               f"leading space for {self.model_name}: end the prefill with a space "
                               f"({prefill[-24:]!r} + ' ')")
        return ids

    # -- scoring -------------------------------------------------------------------------------
    def choice_probs(self, messages: Sequence[dict[str, str]], prefill: str,
                     choices: Sequence[str]) -> ChoiceProbs:
        t0 = time.perf_counter()
        ids = self.check_choices(prefill, choices)
        tokens = self.encode(messages, prefill)
        n_ctx = self.context_size
        if len(tokens) >= n_ctx:
            raise BackendError(f"prompt of {len(tokens)} tokens does not fit the context of {n_ctx}")
        logits = self._forward(tokens)
        # log-softmax in float64: the probabilities of unlikely letters matter for the mass check
        logits = logits.astype(np.float64)
        m = logits.max()
        logz = m + np.log(np.exp(logits - m).sum())
        probs = {c: float(np.exp(logits[idx] - logz).sum()) for c, idx in ids.items()}
        top_idx = np.argpartition(-logits, 10)[:10]
        top_idx = top_idx[np.argsort(-logits[top_idx])]
        top = [(self._token_text(int(i)), float(logits[i] - logz)) for i in top_idx]
        return ChoiceProbs(probs=probs, top=top, prompt_tokens=len(tokens),
                           evaluated_tokens=self._last_evaluated, latency_s=time.perf_counter() - t0)

    def _needs_bos(self, rendered: str) -> bool:
        bos = self.llm.token_bos()
        if bos < 0 or not self.llm._model.add_bos_token():  # noqa: SLF001 - the only place llama-cpp exposes it
            return False
        return not rendered.startswith(self._token_text(bos))

    def _forward(self, tokens: list[int], *, step: bool = False) -> np.ndarray:
        """The next-token logits after ``tokens``, reusing the KV cache where that changes nothing.

        llama.cpp's sums depend on how the tokens were split into batches: evaluating from
        wherever the cached prefix happened to end made the same prompt score differently after
        different predecessors (P(A) 0.688 vs 0.705 on Qwen). So prompts are evaluated in batches
        that start at multiples of ``_BLOCK``, and only whole blocks computed that way are reused.
        ``step`` evaluates just the last token when the cache holds the rest (the perplexity
        verifier walking a response): reproducible too, but nothing after it is reused later.
        """
        llm = self.llm
        n = llm.n_tokens
        if step and n == len(tokens) - 1 and np.array_equal(llm.input_ids[:n], tokens[:-1]):
            starts = [n]
        else:
            cached = llm.input_ids[: min(n, self._canonical)]
            prefix = 0
            limit = min(len(cached), len(tokens) - 1)  # the last token is evaluated for its logits
            while prefix < limit and cached[prefix] == tokens[prefix]:
                prefix += 1
            prefix -= prefix % _BLOCK
            llm.n_tokens = prefix  # eval() drops the KV cache past n_tokens before decoding
            starts = list(range(prefix, len(tokens), _BLOCK))
            self._canonical = len(tokens)
        try:
            for start in starts:
                llm.eval(tokens[start:start + _BLOCK])
        except Exception as e:
            self.reset()
            raise BackendError(f"llama.cpp failed to evaluate the prompt: {e}") from None
        self._last_evaluated = len(tokens) - starts[0]
        ptr = self._lib.llama_get_logits_ith(llm._ctx.ctx, -1)  # noqa: SLF001
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()

    def reset(self) -> None:
        """Forget the KV cache (after a failed call, whose state is unknown)."""
        self.llm.reset()
        self._canonical = 0

    def prime(self, tokens: list[int]) -> None:
        """Leave ``tokens`` in the KV cache as :meth:`_forward` computes them, for a generation to
        continue from: llama-cpp-python's own prefix reuse would make generated text depend on the
        previous prompt, as the scores did."""
        self._forward(tokens)
        # create_completion may evaluate the last token again, alone, and then its own tokens
        self._canonical = len(tokens) - 1

    _canonical = 0  # the cached tokens whose whole blocks _forward computed (the rest is never reused)
    _last_evaluated = 0
