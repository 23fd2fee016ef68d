"""Judging on Ray: actors that each hold one judge, fed batches of questions by the driver.

The driver plans, keeps the store and commits every answer as the judging loop consumes it,
exactly as in-process; only the asking moves. The loop's look-ahead (:class:`referee.judge.Lookahead`)
hands the engine the next questions the store cannot answer; the engine cuts them into one
contiguous slice per actor (consecutive questions share a prompt prefix, which llama.cpp's KV
cache reuses), sends the slices at once and returns the answers in order. An actor that dies
(``kill -9``, a lost node) loses only its slice: the slice goes to another live actor, and Ray
restarts the dead one (``max_restarts``), which loads its model again. When no actor is left the
run stops with :class:`~referee.errors.BackendError`; every answer committed so far stays.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import BackendError, InputError, WorkersLostError

# How many times Ray brings back a dead actor before giving up on it.
MAX_RESTARTS = 3
# Questions (or generations) per actor in one batch, at least: enough to keep each busy while the
# driver commits. Fast judges get more, up to about BATCH_SECONDS of work per actor (a Ray round
# trip costs milliseconds) and at most MAX_PER_WORKER.
PER_WORKER = 8
BATCH_SECONDS = 0.5
MAX_PER_WORKER = 4096


def require_ray():
    """The ``ray`` module, or the InputError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install -e '.[ray]' (or pip install 'referee[ray]')",
                         field="--engine") from None
    return ray


class _JudgeWorker:
    """One judge in one Ray actor (a llama.cpp model loaded once, with its own threads, or an HTTP client)."""

    def __init__(self, spec: str, options: dict[str, Any], candidates: Any, threads: int) -> None:
        os.environ["REFEREE_THREADS"] = str(threads)
        from ..judge import make_judge

        self.judge = make_judge(spec, **options)
        if candidates is not None and callable(getattr(self.judge, "bind", None)):
            self.judge.bind(candidates)  # a replay judge looks texts up by the systems that wrote them

    def judge_id(self) -> str:
        return self.judge.judge_id

    def pid(self) -> int:
        return os.getpid()

    def judge_many(self, questions: list[tuple[str, str, str]]) -> tuple[list[Any], float]:
        """The answers, and the seconds they took here (the driver sizes its batches by them)."""
        from ..judge import judge_many

        t0 = time.perf_counter()
        answers = judge_many(self.judge, questions)
        return answers, time.perf_counter() - t0


class _GenerateWorker:
    """One generator model in one Ray actor (llama.cpp loaded once, or an HTTP client)."""

    def __init__(self, spec: str, options: dict[str, Any], threads: int) -> None:
        os.environ["REFEREE_THREADS"] = str(threads)
        from ..generate import GeneratorModel

        self.model = GeneratorModel(spec, threads=threads, **options)

    def identity(self) -> dict[str, Any]:
        return self.model.identity

    def pid(self) -> int:
        return os.getpid()

    def generate_many(self, requests: list[dict[str, Any]]) -> tuple[list[Any], float]:
        """Each generation, or the failure's message as :class:`Failed`, and the seconds they took here."""
        t0 = time.perf_counter()
        outs = self.model.generate_many(requests)
        # Exceptions travel as their message: a backend's own exception class may not unpickle.
        return [Failed(str(o)) if isinstance(o, BaseException) else o for o in outs], time.perf_counter() - t0


class Failed(str):
    """A generation that failed in a worker: its message."""


class RayPool:
    """``workers`` Ray actors of one kind, each holding one model, and the batches sent to them.

    A batch is cut into one contiguous slice per actor (consecutive questions share a prompt
    prefix, which llama.cpp's KV cache reuses); the answers come back in order. A slice lost
    with its actor goes to another one, and Ray restarts the dead actor (``MAX_RESTARTS``).

    Args:
        worker: the actor class; its constructor gets ``args`` and the threads.
        method: the actor method that answers a slice, returning ``(answers, seconds)``.
        workers: actors to start.
        threads: CPUs (and llama.cpp threads) per actor.
        address: an existing cluster (``auto``, ``ray://HOST:PORT``); ``None`` starts a local
            instance with ``workers * threads`` CPUs, stopped by :meth:`shutdown`. When Ray is
            already initialized in this process, the pool uses it and leaves it running.
        floor: questions per actor in a batch, at least.
    """

    def __init__(self, worker: type, args: tuple, method: str, *, workers: int, threads: int,
                 address: str | None, floor: int = PER_WORKER) -> None:
        ray = require_ray()
        if workers < 1 or threads < 1:
            raise InputError("--workers and --worker-threads must be at least 1", field="--workers")
        self._own = start_ray(address, workers * threads)
        actor = ray.remote(num_cpus=threads, max_restarts=MAX_RESTARTS, max_task_retries=0)(worker)
        self.actors = [actor.remote(*args, threads) for _ in range(workers)]
        self.workers = workers
        self._method = method
        self._floor = floor
        self._seconds_each: float | None = None  # one actor's seconds per question, as measured
        self.retried = 0

    def ask_all(self, method: str) -> list[Any]:
        """``method()`` of every actor (the first call waits for the actors to be built)."""
        ray = require_ray()
        return ray.get([getattr(a, method).remote() for a in self.actors])

    @property
    def chunk(self) -> int:
        """Questions to send at once: about :data:`BATCH_SECONDS` of work for every actor."""
        each = self._floor
        if self._seconds_each:
            each = min(MAX_PER_WORKER, max(each, int(BATCH_SECONDS / self._seconds_each)))
        return self.workers * each

    def run_batch(self, items: Sequence[Any]) -> list[Any]:
        """The answers to ``items``, in order, from the actors at once."""
        return self.submit(items)()

    def submit(self, items: Sequence[Any]) -> Callable[[], list[Any]]:
        """Send ``items`` to the actors now; returns the function that waits for their answers
        (in order), sending a lost slice to another actor."""
        ray = require_ray()
        items = list(items)
        if not items:
            return list
        n = min(len(self.actors), len(items))
        size = -(-len(items) // n)
        slices = [(i, items[i:i + size]) for i in range(0, len(items), size)]
        pending = {getattr(self.actors[k], self._method).remote(sl): (k, start, sl)
                   for k, (start, sl) in enumerate(slices)}
        return lambda: self._collect(ray, pending, len(items))

    def _collect(self, ray: Any, pending: dict[Any, tuple[int, int, list]], n: int) -> list[Any]:
        out: list[Any] = [None] * n
        failures = 0
        seconds = 0.0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            k, start, sl = pending.pop(ref)
            try:
                answers, took = ray.get(ref)
            except ray.exceptions.RayTaskError:
                raise  # the model itself failed: a bug, not a lost worker
            except ray.exceptions.RayError as e:
                failures += 1
                if failures > len(self.actors) * (MAX_RESTARTS + 1):
                    raise WorkersLostError(f"the Ray workers keep dying ({failures} lost slices; last: {_reason(e)}); "
                                       "every answer committed so far is kept, and running again continues") from e
                self.retried += len(sl)
                other = (k + failures) % len(self.actors)  # another actor; the dead one restarts meanwhile
                pending[getattr(self.actors[other], self._method).remote(sl)] = (other, start, sl)
                continue
            out[start:start + len(sl)] = answers
            seconds += took
        each = max(seconds, 1e-6) / n  # an actor's seconds per question
        self._seconds_each = each if self._seconds_each is None else 0.5 * (self._seconds_each + each)
        return out

    def worker_pids(self) -> list[int]:
        """The actors' process ids (for tests that kill one)."""
        return require_ray().get([a.pid.remote() for a in self.actors])

    def shutdown(self) -> None:
        ray = require_ray()
        for a in getattr(self, "actors", []):
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - an actor already gone is what we wanted
                pass
        self.actors = []
        if self._own and ray.is_initialized():
            ray.shutdown()


def start_ray(address: str | None, cpus: int) -> bool:
    """Connect to ``address``, or start a local instance with ``cpus`` CPUs; ``False`` when this
    process already has Ray (the caller then leaves it running)."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=cpus, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise BackendError(f"cannot reach the Ray cluster at {address or 'a new local instance'}: {e}") from e
    return True


class RayEngine(RayPool):
    """Pairwise questions answered by ``workers`` Ray actors, each holding the judge ``spec``.

    Args:
        spec: the judge spec (as ``--judge``), built in every actor with ``options`` (``make_judge``'s).
        judge_id: the driver's judge id; an actor whose judge differs (another model file on its node)
            is refused before anything is asked.
        candidates: the run's candidate set, for judges that are bound to one (replay); it is put in
            Ray's object store once and shared by the actors.
        workers, threads, address: as :class:`RayPool`'s.
    """

    def __init__(self, spec: str, options: dict[str, Any], judge_id: str, *, workers: int = 2, threads: int = 1,
                 address: str | None = None, candidates: Any = None) -> None:
        ray = require_ray()
        if workers < 1 or threads < 1:
            raise InputError("--workers and --worker-threads must be at least 1", field="--workers")
        own = start_ray(address, workers * threads)
        shared = None if candidates is None else ray.put(candidates)
        # An HTTP judge keeps `concurrency` requests in flight in each actor: give it four times that.
        super().__init__(_JudgeWorker, (spec, options, shared), "judge_many", workers=workers, threads=threads,
                         address=address, floor=max(PER_WORKER, 4 * int(options.get("concurrency") or 1)))
        self._own = own
        try:
            ids = self.ask_all("judge_id")
        except ray.exceptions.RayError as e:
            self.shutdown()
            raise BackendError(f"the Ray workers could not build judge {spec}: {_reason(e)}") from e
        wrong = {i for i in ids if i != judge_id}
        if wrong:
            self.shutdown()
            raise BackendError(f"a Ray worker's judge {sorted(wrong)[0]} is not the driver's {judge_id}: the nodes "
                               f"hold different model files or templates")
        self.judge_id = judge_id

    def judge_batch(self, questions: Sequence[tuple[str, str, str]]) -> list[Any]:
        """Answers to ``(question, first, second)`` triples, in order, from the actors at once."""
        return self.run_batch(questions)


class RayGenerator(RayPool):
    """Generations by ``workers`` Ray actors, each holding the generator model ``spec``.

    Args:
        spec: a packaged model, a GGUF path or ``openai:MODEL@URL``, loaded in every actor with
            ``options`` (:class:`~referee.generate.GeneratorModel`'s ``n_ctx``, ``concurrency``).
        workers, threads, address: as :class:`RayPool`'s.

    Attributes:
        identity: the model's identity as the actors report it (all the same, or refused): the
            generations' store keys are built from it.
    """

    def __init__(self, spec: str, options: dict[str, Any], *, workers: int = 2, threads: int = 1,
                 address: str | None = None) -> None:
        ray = require_ray()
        super().__init__(_GenerateWorker, (spec, options), "generate_many", workers=workers, threads=threads,
                         address=address, floor=max(1, int(options.get("concurrency") or 1)))
        try:
            ids = self.ask_all("identity")
        except ray.exceptions.RayError as e:
            self.shutdown()
            raise BackendError(f"the Ray workers could not load {spec}: {_reason(e)}") from e
        if any(i != ids[0] for i in ids):
            self.shutdown()
            raise BackendError(f"the Ray workers hold different models for {spec}: the nodes hold different "
                               f"model files or templates")
        self.identity = ids[0]
        self.engine: dict[str, Any] = {"kind": "ray", "workers": workers, "threads": threads, "address": address,
                                       "retried": 0}

    def submit(self, items: Sequence[Any]) -> Callable[[], list[Any]]:
        wait = super().submit(items)
        return lambda: [BackendError(o) if isinstance(o, Failed) else o for o in wait()]

    def generate_many(self, requests: Sequence[dict[str, Any]]) -> list[Any]:
        """Each request's generation, or its failure (a :class:`BackendError`), in order: as
        :meth:`referee.generate.GeneratorModel.generate_many`, so chats through the store run here too."""
        return self.run_batch(requests)

    def close(self) -> None:
        """Free the actors (and their CPUs) for the next model; Ray itself stays up."""
        self.engine["retried"] = self.retried
        self.shutdown()


@contextmanager
def ray_generators(*, workers: int, threads: int, address: str | None, n_ctx: int, concurrency: int,
                   models: int = 1) -> Iterator[Callable[[str], RayGenerator]]:
    """The ``make_model`` of :func:`referee.generate.generate` (and ``revise``) on Ray: each model
    a :class:`RayGenerator` of ``workers`` actors with ``threads`` CPUs each. A local instance
    started here has CPUs for ``models`` of them at once (revise's critic and reviser take turns,
    so their actors do not compete), and is stopped on the way out."""
    ray = require_ray()
    if workers < 1 or threads < 1:
        raise InputError("--workers and --worker-threads must be at least 1", field="--workers")
    own = start_ray(address, workers * threads * models)
    try:
        yield lambda spec: RayGenerator(spec, {"n_ctx": n_ctx, "concurrency": concurrency}, workers=workers,
                                        threads=threads, address=address)
    finally:
        if own and ray.is_initialized():
            ray.shutdown()


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def start_engine(engine: str, judges: Sequence[Any], make_options: dict[str, Any], *, workers: int, threads: int,
                 address: str | None, candidates: Any = None) -> RayEngine | None:
    """The engine a run asks: ``None`` in-process, a :class:`RayEngine` for ``"ray"`` (one judge, pairwise)."""
    if engine == "local":
        return None
    if engine != "ray":
        raise InputError(f"unknown engine {engine!r}: local or ray", field="--engine")
    if len(judges) != 1 or getattr(judges[0], "mode", "pairwise") != "pairwise":
        raise InputError("--engine ray runs one pairwise judge for now (not --judges, not --mode pointwise or "
                         "listwise)", field="--engine")
    spec = make_options.pop("spec")
    return RayEngine(spec, make_options, judges[0].judge_id, workers=workers, threads=threads, address=address,
                     candidates=candidates if callable(getattr(judges[0], "bind", None)) else None)
