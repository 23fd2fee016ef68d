"""What verdicts cost: prices per model, the run's spending, and a limit on it.

A price table (TOML or JSON) maps a model name, as the judge sends it to the server, to USD per
1M input and output tokens::

    ["gpt-4o-mini"]
    input = 0.15
    output = 0.60

Prices change how much a verdict costs, never what the judge answers: they are not part of any
judge id, so a run priced later (or differently) keeps its verdicts.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CostLimitError, InputError

CostLimitReached = CostLimitError  # the name the judging loops catch


@dataclass(frozen=True)
class Price:
    """USD per 1M input (prompt) and output (completion) tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6

    def to_dict(self) -> dict[str, float]:
        return {"input_per_1m": self.input, "output_per_1m": self.output}


def parse_price(value: Any, *, where: str) -> Price:
    """``{"input": USD, "output": USD}`` (per 1M tokens) -> :class:`Price`."""
    if not isinstance(value, dict) or set(value) - {"input", "output"} or "input" not in value:
        raise InputError(f"{where}: a price is a table with 'input' and 'output', USD per 1M tokens, "
                         f"e.g. {{input = 0.15, output = 0.6}}; got {value!r}", field="prices")
    out: list[float] = []
    for k in ("input", "output"):
        x = value.get(k, 0.0)
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
            raise InputError(f"{where}: {k} must be a non-negative number of USD per 1M tokens, not {x!r}",
                             field="prices")
        out.append(float(x))
    return Price(*out)


def load_prices(path: str | Path) -> dict[str, Price]:
    """A price table file (``.toml`` or ``.json``): model name -> :class:`Price`."""
    from ._make import read_config_file

    path = Path(path)
    data = read_config_file(path, "the price table", "--prices")
    if not isinstance(data, dict) or not data:
        raise InputError("a price table maps model names to {input, output} USD per 1M tokens", path=path,
                         field="--prices")
    return {str(model): parse_price(v, where=f"{path}: {model}") for model, v in data.items()}


def backend_kind(judge: Any) -> str:
    """``local`` (llama.cpp in process: costs nothing), ``hosted`` (an HTTP server: may cost), or
    ``none`` (replay, verifiers: no model is asked)."""
    backend = getattr(judge, "backend", None)
    if backend is None:
        return "none"
    desc = backend.describe() if callable(getattr(backend, "describe", None)) else {}
    return "hosted" if desc.get("backend") == "openai-http" else "local"


def apply_prices(judge: Any, table: dict[str, Price] | None) -> Price | None:
    """Give the judge's backend its price from ``table`` unless a judge config already set one;
    the price in force (``None``: not priced). Set on the backend so that every judge asking
    that model (the independence screen's too) pays the same."""
    backend = getattr(judge, "backend", None)
    if backend is None or backend_kind(judge) != "hosted":
        return None
    if getattr(backend, "price", None) is None and table:
        price = table.get(str(getattr(backend, "model", "")))
        if price is not None:
            backend.price = price
    return getattr(backend, "price", None)


def verdict_cost(judge: Any, prompt_tokens: int, completion_tokens: int) -> float:
    price = getattr(getattr(judge, "backend", None), "price", None)
    return price.cost(prompt_tokens, completion_tokens) if price is not None else 0.0


def estimate_call(judge: Any, texts: list[str], question: str = "") -> tuple[int, int]:
    """(prompt, completion) tokens one question about ``texts`` is expected to take, from the
    backend's own token counts: the judge's fixed frame, the question, each text up to the judge's
    cap; the judge's ``max_tokens`` (1 letter for logprob judges) as the answer."""
    backend = getattr(judge, "backend", None)
    if backend is None:
        return 0, 0
    frame = int(getattr(judge, "_frame_tokens", 0) or getattr(judge, "_frame", 0) or 0)
    cap = getattr(judge, "max_candidate_tokens", None)
    n = frame + backend.count_tokens(question)
    for t in texts:
        k = backend.count_tokens(t)
        n += min(k, cap) if cap else k
    out = int(getattr(judge, "max_tokens", 0) or 1)
    return min(n, int(getattr(backend, "context_size", n) or n)), out


@dataclass
class CostMeter:
    """A run's spending on judge calls and its limit, shared by every judge of the run.

    ``spent`` adds the cost of each answer the judges were actually asked (an answer reused from
    the store costs nothing); a question is asked only if ``spent`` plus its estimate stays within
    ``max_usd``.
    """

    max_usd: float | None = None
    spent: float = 0.0
    largest: float = 0.0  # the dearest call so far: the estimate when the texts are not at hand
    stopped: str | None = None
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, cost: float) -> None:
        with self._lock:
            self.spent += cost
            self.largest = max(self.largest, cost)
            self.calls += 1

    def each(self, estimate: float | None) -> float:
        # texts' token estimates can be short of what the server bills: the dearest real call is a floor
        return self.largest if estimate is None else max(estimate, self.largest)

    def room(self, estimate: float | None, n: int) -> int:
        """How many of ``n`` further calls of ``estimate`` USD each fit under the limit."""
        if self.max_usd is None:
            return n
        each = self.each(estimate)
        left = self.max_usd - self.spent
        if each <= 0:
            return n if left >= 0 else 0
        return max(0, min(n, int(math.floor(left / each + 1e-9))))

    def check(self, estimate: float | None) -> None:
        if self.room(estimate, 1) < 1:
            self.stopped = (f"stopped asking at ${self.spent:.4f} spent: the next call would pass "
                            f"--max-cost ${self.max_usd:g}")
            raise CostLimitReached(self.stopped)
