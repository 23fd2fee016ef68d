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
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import BackendError, InputError

# How many times Ray brings back a dead actor before giving up on it.
MAX_RESTARTS = 3
# Questions per actor in one look-ahead batch, at least: enough to keep each busy while the
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

    def __init__(self, spec: str, options: dict[str, Any], threads: int, candidates: Any = None) -> None:
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


class RayEngine:
    """Pairwise questions answered by ``workers`` Ray actors, each holding the judge ``spec``.

    Args:
        spec: the judge spec (as ``--judge``), built in every actor with ``options`` (``make_judge``'s).
        judge_id: the driver's judge id; an actor whose judge differs (another model file on its node)
            is refused before anything is asked.
        workers: actors to start.
        threads: CPUs (and llama.cpp threads) per actor.
        address: an existing cluster (``auto``, ``ray://HOST:PORT``); ``None`` starts a local
            instance with ``workers * threads`` CPUs, stopped by :meth:`shutdown`.
        candidates: the run's candidate set, for judges that are bound to one (replay); it is put in
            Ray's object store once and shared by the actors.
    """

    def __init__(self, spec: str, options: dict[str, Any], judge_id: str, *, workers: int = 2, threads: int = 1,
                 address: str | None = None, candidates: Any = None) -> None:
        ray = require_ray()
        if workers < 1 or threads < 1:
            raise InputError("--workers and --worker-threads must be at least 1", field="--workers")
        self._own = not ray.is_initialized()
        if self._own:
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
            try:
                if address:
                    ray.init(address=address, **kw)
                else:
                    ray.init(num_cpus=workers * threads, **kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise BackendError(f"cannot reach the Ray cluster at {address or 'a new local instance'}: {e}") from e
        actor = ray.remote(num_cpus=threads, max_restarts=MAX_RESTARTS, max_task_retries=0)(_JudgeWorker)
        shared = None if candidates is None else ray.put(candidates)
        self.actors = [actor.remote(spec, options, threads, shared) for _ in range(workers)]
        try:
            ids = ray.get([a.judge_id.remote() for a in self.actors])
        except ray.exceptions.RayError as e:
            self.shutdown()
            raise BackendError(f"the Ray workers could not build judge {spec}: {_reason(e)}") from e
        wrong = {i for i in ids if i != judge_id}
        if wrong:
            self.shutdown()
            raise BackendError(f"a Ray worker's judge {sorted(wrong)[0]} is not the driver's {judge_id}: the nodes "
                               f"hold different model files or templates")
        self.judge_id = judge_id
        self.workers = workers
        # An HTTP judge keeps `concurrency` requests in flight in each actor: give it four times that.
        self._floor = max(PER_WORKER, 4 * int(options.get("concurrency") or 1))
        self._seconds_each: float | None = None  # one actor's seconds per question, as measured
        self.retried = 0

    @property
    def chunk(self) -> int:
        """Questions to send at once: about :data:`BATCH_SECONDS` of work for every actor."""
        each = self._floor
        if self._seconds_each:
            each = min(MAX_PER_WORKER, max(each, int(BATCH_SECONDS / self._seconds_each)))
        return self.workers * each

    def judge_batch(self, questions: Sequence[tuple[str, str, str]]) -> list[Any]:
        """Answers to ``(question, first, second)`` triples, in order, from the actors at once."""
        return self.submit(questions)()

    def submit(self, questions: Sequence[tuple[str, str, str]]) -> Callable[[], list[Any]]:
        """Send ``(question, first, second)`` triples to the actors now; returns the function that
        waits for their answers (in order), sending a lost slice to another actor."""
        ray = require_ray()
        questions = list(questions)
        if not questions:
            return list
        n = min(len(self.actors), len(questions))
        size = -(-len(questions) // n)
        slices = [(i, questions[i:i + size]) for i in range(0, len(questions), size)]
        pending = {self.actors[k].judge_many.remote(sl): (k, start, sl) for k, (start, sl) in enumerate(slices)}
        return lambda: self._collect(ray, pending, len(questions))

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
                raise  # the judge itself failed: a bug, not a lost worker
            except ray.exceptions.RayError as e:
                failures += 1
                if failures > len(self.actors) * (MAX_RESTARTS + 1):
                    raise BackendError(f"the Ray workers keep dying ({failures} lost slices; last: {_reason(e)}); "
                                       "every answer committed so far is kept, and running again continues") from e
                self.retried += len(sl)
                other = (k + failures) % len(self.actors)  # another actor; the dead one restarts meanwhile
                pending[self.actors[other].judge_many.remote(sl)] = (other, start, sl)
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
