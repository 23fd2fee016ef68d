"""Test helpers: the real llama-cpp-python server, a fault-injecting proxy, a canned responder.

Not a test module: imported by tests/test_backend_openai.py and bench/server_overhead.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from pathlib import Path

import httpx

from referee.backends import LocalServer, free_port


class LlamaServer(LocalServer):
    """``python -m llama_cpp.server`` on 127.0.0.1 with a GGUF file (model name ``smol``); always stop() it."""

    def __init__(self, model_path: str | Path, *, n_ctx: int = 2048, n_threads: int = 2, log: Path | None = None):
        super().__init__(model_path, alias="smol", n_ctx=n_ctx, n_threads=n_threads, log=log)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await reader.readexactly(n) if n else b""
    return request_line, headers, body


def _response(status: int, body: bytes, extra: dict[str, str] | None = None) -> bytes:
    reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
              401: "Unauthorized"}.get(status, "X")
    hdr = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    for k, v in (extra or {}).items():
        hdr += f"{k}: {v}\r\n"
    return hdr.encode() + b"\r\n" + body


class _ThreadServer:
    """An asyncio TCP server on its own loop in a daemon thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=512))
        self._ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:
        async def shut():
            self.server.close()
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class FaultProxy(_ThreadServer):
    """Forwards to ``upstream`` (an API root like http://127.0.0.1:PORT/v1), after injecting faults.

    ``faults`` is a queue consumed one per request: ``"429"``, ``"500"``, ``"drop"`` (close the
    connection without answering), ``("slow", seconds)`` (wait, then forward), ``("hang", seconds)``
    (wait, then close without answering), ``"no-logprobs"`` (forward, then strip the reply's
    logprobs, as a server started without them answers) or ``"pass"``;
    when empty, requests pass. ``seen`` records (path, headers, body) of every request.
    """

    def __init__(self, upstream: str, *, forward_root: bool = False) -> None:
        self.upstream = upstream.rstrip("/")
        # paths outside /v1 (a server's /extras/tokenize) go to the upstream's root when asked to
        self.forward_root = forward_root
        self.faults: deque = deque()
        self.seen: list[tuple[str, dict[str, str], dict]] = []
        super().__init__()

    async def _handle(self, reader, writer) -> None:
        async with httpx.AsyncClient(timeout=300) as client:
            try:
                while True:
                    try:
                        req = await _read_request(reader)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        return
                    request_line, headers, body = req
                    method, path, _ = request_line.split(" ", 2)
                    try:
                        payload = json.loads(body) if body else {}
                    except ValueError:
                        payload = {}
                    self.seen.append((path, headers, payload))
                    fault = self.faults.popleft() if self.faults else "pass"
                    if fault == "drop":
                        writer.close()
                        return
                    if fault in ("429", "500"):
                        writer.write(_response(int(fault), b'{"error": {"message": "injected"}}',
                                               {"Retry-After": "0"} if fault == "429" else None))
                        await writer.drain()
                        continue
                    if isinstance(fault, tuple) and fault[0] == "hang":  # no answer, then a closed connection
                        await asyncio.sleep(fault[1])
                        writer.close()
                        return
                    if isinstance(fault, tuple) and fault[0] == "slow":
                        await asyncio.sleep(fault[1])
                    sub = path[len("/v1"):] if path.startswith("/v1") else path
                    target = self.upstream + sub
                    if self.forward_root and not path.startswith("/v1"):
                        target = self.upstream.removesuffix("/v1") + path
                    fwd = {k: v for k, v in headers.items() if k in ("content-type", "authorization")}
                    r = await client.request(method, target, content=body, headers=fwd)
                    content = r.content
                    if fault == "no-logprobs" and r.status_code == 200:
                        reply = json.loads(content)
                        for choice in reply.get("choices", []):
                            choice["logprobs"] = None
                        content = json.dumps(reply).encode()
                    writer.write(_response(r.status_code, content))
                    await writer.drain()
            finally:
                try:
                    writer.close()
                except Exception:  # noqa: BLE001
                    pass


CANNED = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop",
                       "logprobs": {"content": [{"token": "A", "logprob": -0.1,
                                                 "top_logprobs": [{"token": "A", "logprob": -0.1},
                                                                  {"token": "B", "logprob": -2.4}]}]}}],
          "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}


class CannedServer(_ThreadServer):
    """Answers every request at once with the same chat completion (or ``reply`` bytes)."""

    def __init__(self, reply: dict | None = None, *, delay: float = 0.0) -> None:
        self.body = json.dumps(reply or CANNED).encode()
        self.count = 0
        self.delay = delay
        self.inflight = 0
        self.max_inflight = 0
        super().__init__()

    async def _handle(self, reader, writer) -> None:
        resp = _response(200, self.body)
        try:
            while True:
                try:
                    await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.count += 1
                if self.delay:
                    self.inflight += 1
                    self.max_inflight = max(self.max_inflight, self.inflight)
                    await asyncio.sleep(self.delay)
                    self.inflight -= 1
                writer.write(resp)
                await writer.drain()
        finally:
            writer.close()
