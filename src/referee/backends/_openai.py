"""OpenAI-compatible HTTP backend: chat completions, with logprobs when the server offers them.

Works with vLLM, SGLang, Ollama, llama.cpp's and llama-cpp-python's servers and hosted APIs.
Requests run on one event loop in a background thread, behind a concurrency limit; 429, 5xx,
timeouts and dropped connections are retried with exponential backoff (``Retry-After`` is
honoured). Every failure ends as a :class:`~referee.errors.BackendError`.

The API key is read from the environment only (``REFEREE_API_KEY``, then ``OPENAI_API_KEY``, or
a variable you name) at request time; it is never part of :meth:`OpenAIBackend.describe`, of
error messages, or of anything stored.
"""

from __future__ import annotations

import asyncio
import sys
import json
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from ..errors import BackendError
from ._text import CONTROL_TOKENS_POLICY, inert_control_tokens
from ._protocol import ChoiceProbs, Generation

API_KEY_ENV = ("REFEREE_API_KEY", "OPENAI_API_KEY")
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ServerUnreachableError(BackendError):
    """The server could not be reached (refused, DNS, dropped) even after the retries."""


class ServerResponseError(BackendError):
    """The server answered with an error status or a body that is not a chat completion.

    Attributes:
        status: the HTTP status (0 when the body, not the status, was wrong).
    """

    def __init__(self, message: str, status: int = 0) -> None:
        self.status = status
        super().__init__(message)


def clean_url(url: str) -> str:
    """``url`` without user:password and without a query string (safe to record)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """``openai:MODEL@URL`` -> ``(model, base_url)``; the URL is the API root (``.../v1``).

    The last ``@`` splits, so model names may contain ``@``; a URL without ``/v1`` gets it.
    """
    body = spec.split(":", 1)[1] if spec.startswith("openai:") else spec
    if "@" not in body:
        raise BackendError(f"judge spec {spec!r}: expected openai:MODEL@URL, e.g. openai:gpt-4o-mini@https://api.openai.com/v1")
    model, url = body.rsplit("@", 1)
    if not model or not url.startswith(("http://", "https://")):
        raise BackendError(f"judge spec {spec!r}: expected openai:MODEL@http(s)://HOST[:PORT][/v1]")
    url = url.rstrip("/")
    if not urlsplit(url).path.rstrip("/").endswith("/v1"):
        url += "/v1"
    return model, url


class OpenAIBackend:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: the model name the server expects.
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: environment variables to take the key from, first set wins. No key is fine
            for local servers.
        concurrency: the most requests in flight at once.
        timeout: seconds for one request (connect, read, write).
        max_retries: retries after the first attempt on 429/5xx/timeouts/dropped connections.
        backoff: first retry delay in seconds (doubles, with jitter, capped at ``max_backoff``).
        n_ctx: the judge model's context window (used to budget candidate lengths).
        top_logprobs: how many alternatives to ask for per generated token.
        chars_per_token: the estimate used to count ASCII text when the server offers no tokenizer
            (3 is conservative for English and code); any other character counts as one token.
        seed: sent with every request (servers that honour it become reproducible).
        tokenizer: ``auto`` counts tokens with the server's own tokenizer when it has one
            (llama-cpp-python's ``/extras/tokenize``; llama.cpp's and vLLM's ``/tokenize``), else
            estimates; ``estimate`` never asks.
    """

    def __init__(self, model: str, base_url: str, *, api_key_env: Sequence[str] = API_KEY_ENV,
                 concurrency: int = 8, timeout: float = 60.0, max_retries: int = 4, backoff: float = 0.5,
                 max_backoff: float = 20.0, n_ctx: int = 4096, top_logprobs: int = 10,
                 chars_per_token: float = 3.0, seed: int | None = 0, tokenizer: str = "auto") -> None:
        if concurrency < 1:
            raise BackendError("concurrency must be at least 1")
        if tokenizer not in ("auto", "estimate"):
            raise BackendError(f"tokenizer must be 'auto' or 'estimate', not {tokenizer!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = tuple(api_key_env)
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.n_ctx = n_ctx
        self.top_logprobs = top_logprobs
        self.chars_per_token = chars_per_token
        self.seed = seed
        self._logprobs: bool | None = None
        self._auth: dict[str, str] | None = None
        self._schema_style: str | None = None  # "json_schema" or "json_object", found on first use
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self._urls: dict[str, httpx.URL] = {}
        self.tokenizer = tokenizer
        # None: not probed yet; "" : the server has none; else the route that answered
        self._tok_route: str | None = None if tokenizer == "auto" else ""
        self._tok_cache: dict[str, int] = {}
        self._probe_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0}
        # USD per 1M tokens (referee.judge._cost.Price), set from a price table or judge config;
        # not in describe(): what a verdict costs never changes which judge gave it
        self.price: Any = None

    # -- identity ------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        # No key, no concurrency/timeouts: they change how, not what, the judge answers.
        # How tokens are counted decides where long texts are cut, so it is part of the judge's identity,
        # as configured: what a probe found must not change the id (a transient failure would make a
        # resumed run pay for every question again). capabilities() records what was found.
        tokens = f"{self.tokenizer}:{self.chars_per_token:g}"
        return {"backend": "openai-http", "model": self.model, "base_url": clean_url(self.base_url),
                "n_ctx": self.n_ctx, "seed": self.seed, "tokens": tokens,
                "control_tokens": CONTROL_TOKENS_POLICY}

    def capabilities(self) -> dict[str, Any]:
        """What the server was found to offer (for provenance, never for identity): the tokenizer
        route that counts tokens (``None``: estimates) and whether replies carry ``top_logprobs``;
        ``"not probed"`` when it was never asked."""
        route: Any = "not probed" if self._tok_route is None else (self._tok_route or None)
        logprobs: Any = "not probed" if self._logprobs is None else self._logprobs
        return {"tokenizer": route, "logprobs": logprobs}

    @property
    def context_size(self) -> int:
        return self.n_ctx

    # -- tokens --------------------------------------------------------------------------------
    def _estimate(self, text: str) -> int:
        ascii_chars = len(text.encode("ascii", "ignore"))
        return math.ceil(ascii_chars / self.chars_per_token + (len(text) - ascii_chars))

    @property
    def remote_tokenizer(self) -> bool:
        """Whether tokens are counted by the server (found on first use)."""
        if self._tok_route is None:
            self._probe_tokenizer()
        return bool(self._tok_route)

    @property
    def may_block(self) -> bool:
        """Whether counting tokens may send a request (server tokenizer, or not probed yet)."""
        return self._tok_route is None or bool(self._tok_route)

    def _server_root(self) -> str:
        root = self.base_url
        return root[: -len("/v1")] if root.endswith("/v1") else root

    async def _atokenize(self, route: str, text: str, *, probe: bool = False) -> int | None:
        """Token count from the server's tokenizer ``route`` (at the server root, not under ``/v1``).

        Asked like any request (retries, backoff, one error type). A probe takes only a definite
        answer as "no tokenizer here": an error status that is not retried (404, 405, ...) or a
        reply without tokens. A transient failure (429, 5xx, timeouts) that outlasts the retries
        is a :class:`BackendError`, so the question is asked again instead of silently counting
        by estimate from then on."""
        body = {"model": self.model, "input": text} if route.startswith("/extras") else \
            {"model": self.model, "prompt": text, "content": text, "add_special_tokens": False}
        try:
            data = await self.apost(route, body, root=True)
        except ServerResponseError:
            if not probe:
                raise
            data = None
        tokens = data.get("tokens") if isinstance(data, dict) else None
        return len(tokens) if isinstance(tokens, list) else None

    def _probe_tokenizer(self) -> None:
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError("the tokenizer probe blocks on the backend's loop: call it from another thread")
        with self._probe_lock:  # concurrent verdicts may all find the tokenizer unprobed
            if self._tok_route is not None:
                return
            for route in ("/extras/tokenize", "/tokenize"):
                try:
                    n = self._run(self._atokenize(route, "referee", probe=True))
                except ServerUnreachableError:
                    raise
                except BackendError as e:
                    raise BackendError(f"the server's tokenizer could not be asked: {e}. Token counts decide "
                                       "where long texts are cut, so referee does not guess; run again, or set "
                                       "tokenizer = \"estimate\" in a judge config file") from None
                if n:
                    self._tok_route = route
                    return
            self._tok_route = ""

    def count_tokens(self, text: str) -> int:
        if not self.remote_tokenizer:
            return self._estimate(text)
        n = self._tok_cache.get(text)
        if n is None:
            if threading.current_thread() is self._thread:
                raise RuntimeError("count_tokens blocks on the backend's loop: use off_loop()")
            n = self._run(self._atokenize(self._tok_route or "", text))
            if n is None:
                raise ServerResponseError(f"{clean_url(self._server_root() + (self._tok_route or ''))} stopped "
                                          "answering token counts")
            if len(self._tok_cache) > 20000:  # the same prompts and candidates recur; bound the memory anyway
                self._tok_cache.clear()
            self._tok_cache[text] = n
        return n

    def truncate(self, text: str, max_tokens: int, marker: str, *, tail: float = 0.0) -> tuple[str, bool]:
        n = self.count_tokens(text)
        if n <= max_tokens:
            return text, False
        keep = max(0, max_tokens - self.count_tokens(marker))
        # cut where the count says, then shrink until the pieces fit (a cut can merge tokens)
        cut = int(len(text) * keep / n)
        for _ in range(20):
            n_tail = int(cut * tail)
            head, end = text[:cut - n_tail], text[len(text) - n_tail:] if n_tail else ""
            if cut <= 0 or self.count_tokens(head) + (self.count_tokens(end) if end else 0) <= keep:
                return head + marker + end, True
            cut = int(cut * 0.95)
        return marker, True

    # -- event loop ----------------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="referee-http", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
                limits = httpx.Limits(max_connections=max(self.concurrency, 1),
                                      max_keepalive_connections=max(self.concurrency, 1))

                async def make() -> None:
                    # the key (if any) rides on the client's default headers: no per-request merge
                    self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits,
                                                     headers={**self._headers(), "content-type": "application/json"})
                    self._sem = asyncio.Semaphore(self.concurrency)

                asyncio.run_coroutine_threadsafe(make(), loop).result()
            return self._loop

    def _run(self, coro: Awaitable[Any]) -> Any:
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result()  # type: ignore[arg-type]

    def close(self) -> None:
        """Close connections and stop the background loop (the backend restarts it if used again)."""
        with self._lock:
            loop, self._loop = self._loop, None
            if loop is None:
                return
            client, self._client = self._client, None

            async def shut() -> None:
                if client is not None:
                    await client.aclose()

            try:
                asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=5)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        if sys.is_finalizing():  # the daemon loop thread dies with the interpreter
            return
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # -- requests ------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        # Read from the environment on first use, then kept in memory only (never described,
        # logged or stored).
        if self._auth is None:
            self._auth = {}
            for name in self.api_key_env:
                key = os.environ.get(name)
                if key:
                    self._auth = {"Authorization": f"Bearer {key}"}
                    break
        return self._auth

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff, max(0.0, float(retry_after)))
            except ValueError:
                pass
        base = min(self.max_backoff, self.backoff * (2 ** attempt))
        return base * (0.5 + random.random() / 2)

    async def apost(self, path: str, body: dict[str, Any], *,
                    retry_status: frozenset[int] = RETRY_STATUS, root: bool = False) -> dict[str, Any]:
        """POST ``body`` to ``base_url + path`` (the server root + ``path`` with ``root``) with the
        concurrency limit and retries; the JSON reply.

        Must run on the backend's loop (use :meth:`post` or :meth:`map` from other threads).
        """
        assert self._client is not None and self._sem is not None
        url = (self._server_root() if root else self.base_url) + path
        # Parsed once per path and bodies encoded by orjson: at one request in flight against a fast
        # server, URL parsing and stdlib JSON were most of the client's own cost (bench/server_overhead.py).
        target = self._urls.get(url)
        if target is None:
            target = self._urls[url] = httpx.URL(url)
        content = orjson.dumps(body)
        last = ""
        unreachable = False
        async with self._sem:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    self.stats["retries"] += 1
                self.stats["requests"] += 1
                retry_after = None
                try:
                    r = await self._client.post(target, content=content)
                except httpx.TimeoutException:
                    last, unreachable = f"no answer within {self.timeout:g} s", False
                except httpx.ConnectError as e:
                    last, unreachable = f"cannot connect ({_short(e)})", True
                except httpx.TransportError as e:  # dropped connection, protocol error
                    last, unreachable = f"connection failed ({_short(e)})", False
                else:
                    if r.status_code == 200:
                        try:
                            return orjson.loads(r.content)
                        except ValueError:
                            raise ServerResponseError(
                                f"{clean_url(url)} answered 200 with a body that is not JSON: {r.text[:200]!r}") from None
                    if r.status_code not in retry_status:
                        raise ServerResponseError(f"{clean_url(url)} answered HTTP {r.status_code}: "
                                                  f"{_body_message(r)}", r.status_code)
                    last, unreachable = f"HTTP {r.status_code}: {_body_message(r)}", False
                    retry_after = r.headers.get("retry-after")
                if attempt < self.max_retries:
                    await asyncio.sleep(self._delay(attempt, retry_after))
        where = clean_url(url)
        if unreachable:
            raise ServerUnreachableError(f"server {where} is unreachable after {self.max_retries + 1} attempts: {last}. "
                                         "Is it running, and is the URL right?")
        raise BackendError(f"{where} failed after {self.max_retries + 1} attempts: {last}")

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Synchronous :meth:`apost`."""
        return self._run(self.apost(path, body))

    def map(self, fn: Callable[..., Awaitable[Any]], items: Iterable[Any]) -> list[Any]:
        """Run ``await fn(item)`` for every item on the backend's loop (at most ``concurrency`` requests
        in flight) and return the results in order; an exception is returned in place of its result."""
        items = list(items)

        async def all_of() -> list[Any]:
            return await asyncio.gather(*(fn(it) for it in items), return_exceptions=True)

        return self._run(all_of())

    # -- chat ----------------------------------------------------------------------------------
    def _body(self, messages: Sequence[dict[str, str]], *, max_tokens: int, temperature: float,
              logprobs: bool, response_format: dict[str, Any] | None = None, top_p: float | None = None,
              stop: Sequence[str] | None = None, seed: int | None = None) -> dict[str, Any]:
        # The server parses special tokens in the rendered prompt (llama.cpp, vLLM do): texts must
        # not be able to end a turn there.
        msgs = [{**m, "content": inert_control_tokens(m["content"])} if isinstance(m.get("content"), str) else m
                for m in messages]
        body: dict[str, Any] = {"model": self.model, "messages": msgs, "max_tokens": max_tokens,
                                "temperature": temperature}
        if seed is not None or self.seed is not None:
            body["seed"] = self.seed if seed is None else seed
        if top_p is not None:
            body["top_p"] = top_p
        if stop:
            body["stop"] = list(stop)
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        if response_format is not None:
            body["response_format"] = response_format
        return body

    async def achat(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
                    logprobs: bool = False, json_schema: dict[str, Any] | None = None, top_p: float | None = None,
                    stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """One chat completion. With ``json_schema`` the server is asked to constrain its output to it."""
        t0 = time.perf_counter()
        rf = None
        if json_schema is not None:
            rf = self._response_format(json_schema, self._schema_style or "json_schema")
        body = self._body(messages, max_tokens=max_tokens, temperature=temperature, logprobs=logprobs,
                          response_format=rf, top_p=top_p, stop=stop, seed=seed)
        probing = json_schema is not None and self._schema_style is None
        try:
            # While probing, a 500 is not retried: llama-cpp-python answers 500 to a format it does not know.
            data = await self.apost("/chat/completions", body,
                                    retry_status=RETRY_STATUS - {500} if probing else RETRY_STATUS)
        except ServerResponseError as e:
            # Servers that do not know {"type": "json_schema"} (llama-cpp-python) take json_object + schema.
            if not probing or e.status not in (400, 422, 500) or "response_format" not in str(e):
                raise
            body["response_format"] = self._response_format(json_schema, "json_object")
            data = await self.apost("/chat/completions", body)
            self._schema_style = "json_object"
        else:
            if json_schema is not None and self._schema_style is None:
                self._schema_style = "json_schema"
        return _generation(data, time.perf_counter() - t0)

    @staticmethod
    def _response_format(schema: dict[str, Any], style: str) -> dict[str, Any]:
        if style == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema, "strict": True}}

    def generate(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
                 json_schema: dict[str, Any] | None = None, logprobs: bool = False, top_p: float | None = None,
                 stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """Synchronous :meth:`achat`."""
        return self._run(self.achat(messages, max_tokens=max_tokens, temperature=temperature,
                                    json_schema=json_schema, logprobs=logprobs, top_p=top_p, stop=stop, seed=seed))

    def generate_many(self, requests: Sequence[dict[str, Any]]) -> list[Generation | BaseException]:
        """Several :meth:`achat` calls at once (at most ``concurrency`` in flight), each given as its
        keyword arguments; a failed one is its exception, in its place."""
        async def all_of() -> list[Any]:
            return await asyncio.gather(*(self.achat(**r) for r in requests), return_exceptions=True)
        return self._run(all_of())

    def supports_logprobs(self) -> bool:
        """Whether the server returns ``top_logprobs`` for chat completions (asked once, remembered).

        For checks and provenance only: a judge's identity never depends on the answer."""
        if self._logprobs is None:
            g = self.generate([{"role": "user", "content": "Say OK."}], max_tokens=1, logprobs=True)
            self._logprobs = bool(g.logprobs and g.logprobs[0].get("top_logprobs"))
        return self._logprobs

    # -- choices from logprobs -----------------------------------------------------------------
    async def achoice_probs(self, messages: Sequence[dict[str, str]], prefill: str,
                            choices: Sequence[str]) -> ChoiceProbs:
        t0 = time.perf_counter()
        msgs = with_prefill_instruction(messages, prefill, choices)
        g = await self.achat(msgs, max_tokens=8, logprobs=True)
        if not any(isinstance(s, dict) and s.get("top_logprobs") for s in g.logprobs or []):
            # Without them the letters' mass would read as 0: an unparseable verdict, kept for good.
            # A server that stopped sending them is a failure, asked again on resume.
            raise ServerResponseError(f"{clean_url(self.base_url)} answered without top_logprobs, which a logprob "
                                      "judge reads (was the server restarted without logprobs support? "
                                      "--mode pairwise-generate judges without them, under another judge id)")
        return read_choice_probs(g, choices, time.perf_counter() - t0)

    def choice_probs(self, messages: Sequence[dict[str, str]], prefill: str,
                     choices: Sequence[str]) -> ChoiceProbs:
        """P(each choice) read from ``top_logprobs`` at the first generated token that spells one.

        Chat servers cannot continue an assistant prefill, so the prefill becomes an instruction
        to answer with the choice alone; a model that writes words first is still read at the
        position of its answer letter (recorded in ``top``).
        """
        return self._run(self.achoice_probs(messages, prefill, choices))


async def off_loop(backend: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` from a coroutine on the backend's loop, in a worker thread when it may block on
    the backend itself (token counts asked of the server, or the tokenizer not probed yet), else
    directly (no thread hop)."""
    if getattr(backend, "may_block", False):
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


def with_prefill_instruction(messages: Sequence[dict[str, str]], prefill: str,
                             choices: Sequence[str]) -> list[dict[str, str]]:
    """The messages with the last user turn asking for one of ``choices`` and nothing else."""
    msgs = [dict(m) for m in messages]
    ask = f"\n\nReply with exactly one of: {', '.join(choices)}. Nothing else."
    for m in reversed(msgs):
        if m.get("role") == "user":
            m["content"] = m["content"] + ask
            break
    return msgs


def read_choice_probs(g: Generation, choices: Sequence[str], latency_s: float) -> ChoiceProbs:
    """Choice probabilities from a generation's per-token ``top_logprobs``.

    The position read is the first generated token that is (after stripping spaces and
    punctuation) one of the choices; if none is, the first token (so the mass is ~0 and the
    judge records the verdict as unparseable).
    """
    steps = [s for s in (g.logprobs or []) if isinstance(s, dict)]
    pos = 0
    for i, step in enumerate(steps):
        if _norm(step.get("token")) in choices:
            pos = i
            break
    probs = {c: 0.0 for c in choices}
    top: list[tuple[str, float]] = []
    if steps:
        alts = steps[pos].get("top_logprobs")
        seen: set[str] = set()
        for alt in alts if isinstance(alts, list) else []:
            if not isinstance(alt, dict):
                continue
            tok, lp = alt.get("token"), alt.get("logprob")
            # a log-probability is finite and at most 0; anything else is a broken reply, not evidence
            if (not isinstance(tok, str) or isinstance(lp, bool) or not isinstance(lp, (int, float))
                    or not math.isfinite(lp) or lp > 1e-6 or tok in seen):
                continue
            seen.add(tok)
            top.append((tok, float(lp)))
            c = _norm(tok)
            if c in probs and tok.strip() == c:  # " A" and "A" count, "A." does not double-count
                probs[c] = min(1.0, probs[c] + math.exp(min(0.0, lp)))
        top.insert(0, (f"@token {pos}", 0.0))
    return ChoiceProbs(probs=probs, top=top, prompt_tokens=g.prompt_tokens, evaluated_tokens=g.prompt_tokens,
                       latency_s=latency_s, completion_tokens=g.completion_tokens)


def _norm(tok: object) -> str:
    return tok.strip().strip(".:*()[]\"'") if isinstance(tok, str) else ""


def _short(e: Exception) -> str:
    return (str(e) or type(e).__name__)[:200]


def _body_message(r: httpx.Response) -> str:
    try:
        data = r.json()
    except ValueError:
        return r.text[:200]
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:300]
    return str(data)[:300]


def _count(x: Any) -> int:
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else 0


def _generation(data: Any, latency_s: float) -> Generation:
    """A chat completion reply -> :class:`Generation`; anything else is a :class:`ServerResponseError`."""
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise TypeError("content is not text")
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        lp = choice.get("logprobs")
        content = lp.get("content") if isinstance(lp, dict) else None
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ServerResponseError(f"the server's reply is not a chat completion: {json.dumps(data)[:300]}") from None
    return Generation(text=text, prompt_tokens=_count(usage.get("prompt_tokens")),
                      completion_tokens=_count(usage.get("completion_tokens")), latency_s=latency_s,
                      finish_reason=finish if isinstance(finish, str) else None,
                      logprobs=content if isinstance(content, list) else None)
