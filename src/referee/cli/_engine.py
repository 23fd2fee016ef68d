"""The ``--engine ray`` options of the commands that generate (``generate``, ``revise``), and the
models they then use."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Optional

import typer

from ._rank import EngineKind

ENGINE = typer.Option(EngineKind.local, "--engine", help="ray: Ray actors, each holding the model, generate; the "
                      "store stays here (needs referee[ray])")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="an existing Ray cluster (auto, ray://HOST:PORT); default: "
                           "start a local instance")
WORKERS = typer.Option(2, "--workers", min=1, help="Ray actors per model (--engine ray)")
WORKER_THREADS = typer.Option(1, "--worker-threads", min=1, help="CPUs and llama.cpp threads per actor")


def model_maker(stack: ExitStack, engine: EngineKind, *, ray_address: Optional[str], workers: int,
                worker_threads: int, n_ctx: int, concurrency: int, models: int = 1) -> Callable[[str], Any] | None:
    """``None`` in process; on Ray, the factory of :class:`~referee.engine.RayGenerator` models,
    whose Ray instance ``stack`` closes."""
    if engine is not EngineKind.ray:
        return None
    from ..engine import ray_generators

    return stack.enter_context(ray_generators(workers=workers, threads=worker_threads, address=ray_address,
                                              n_ctx=n_ctx, concurrency=concurrency, models=models))
