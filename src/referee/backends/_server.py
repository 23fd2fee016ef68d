"""A local OpenAI-compatible server: ``python -m llama_cpp.server`` on 127.0.0.1, started and stopped by us.

For what must talk to a model over HTTP (DSPy's optimizers) when the model is a local GGUF file.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

from ..errors import BackendError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``llama_cpp.server`` serving one GGUF file on a free port of 127.0.0.1; ``stop()`` it (or use ``with``).

    Args:
        model_path: the GGUF file.
        alias: the model name the server answers to (``openai:ALIAS@URL``).
        log: where the server's output goes (default: discarded).
    """

    def __init__(self, model_path: str | Path, *, alias: str = "local", n_ctx: int = 4096, n_threads: int | None = None,
                 log: Path | None = None) -> None:
        import os

        self.model_path, self.alias = Path(model_path), alias
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._log: IO[bytes] | int = open(log, "wb") if log else subprocess.DEVNULL
        threads = n_threads or os.cpu_count() or 1
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
             "--n_threads_batch", str(threads), "--model_alias", alias],
            stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def spec(self) -> str:
        """The ``openai:`` spec that reaches this server."""
        return f"openai:{self.alias}@{self.url}"

    def wait_ready(self, timeout: float = 120.0) -> LocalServer:
        """Block until the server answers ``/v1/models``.

        Raises:
            BackendError: it exited, or did not answer within ``timeout`` seconds (then it is stopped).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BackendError(f"llama_cpp.server for {self.model_path.name} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise BackendError(f"llama_cpp.server for {self.model_path.name} not ready within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if not isinstance(self._log, int):
            self._log.close()

    def __enter__(self) -> LocalServer:
        return self.wait_ready()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
