"""Overhead of judging through Ray actors against the same work in-process.

1. 400 pairwise verdicts of the packaged SmolLM2 judge (llama.cpp): in-process with 2 threads vs
   2 Ray actors with 1 thread each (equal total threads), the questions handed over in the
   batches the judging loop's look-ahead uses.
2. 2,000 HTTP verdicts at concurrency 64 against the instant local responder of
   ``bench/server_overhead.py``: in-process (one backend, 64 in flight) vs 2 Ray actors with 32
   in flight each.

Ray's start and the actors' model loading are timed apart (``startup_s``): a run pays them once.
Last line: one JSON object with the ratios (Ray wall / in-process wall; target <= 1.10).

    .venv/bin/python bench/ray_overhead.py [--n-llama 400] [--n-http 2000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_overhead import _responder, free_port, questions  # noqa: E402


def llama_questions(n: int) -> list[tuple[str, str, str]]:
    # Realistic lengths, distinct prompts: every question pays its own prefill.
    return [(f"Question {i}: explain briefly why the sum of two even numbers such as {2 * i} and {2 * i + 2} is "
             f"even.", f"Both are multiples of two, so their sum {4 * i + 2} is a multiple of two as well.",
             f"The sum {4 * i + 2} is odd because the numbers are different.") for i in range(n)]


def in_process(spec: str, options: dict, qs, threads: int | None) -> float:
    from referee.judge import judge_many, make_judge

    if threads:
        os.environ["REFEREE_THREADS"] = str(threads)
    judge = make_judge(spec, **options)
    judge_many(judge, qs[:4])  # warm: model loaded, connections open
    t0 = time.perf_counter()
    answers = judge_many(judge, qs)
    wall = time.perf_counter() - t0
    assert all(a.status == "ok" for a in answers), [a for a in answers if a.status != "ok"][:1]
    return wall


def on_ray(spec: str, options: dict, qs, workers: int, threads: int) -> tuple[float, float]:
    from referee.engine import RayEngine
    from referee.judge import make_judge

    judge_id = make_judge(spec, **options).judge_id
    t0 = time.perf_counter()
    engine = RayEngine(spec, options, judge_id, workers=workers, threads=threads)
    engine.judge_batch(qs[:2 * workers])  # warm, as in-process
    startup = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        answers = []
        for i in range(0, len(qs), engine.chunk):  # the look-ahead's batches
            answers += engine.judge_batch(qs[i:i + engine.chunk])
        wall = time.perf_counter() - t0
    finally:
        engine.shutdown()
    assert len(answers) == len(qs) and all(a.status == "ok" for a in answers)
    return wall, startup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-llama", type=int, default=400)
    ap.add_argument("--n-http", type=int, default=2000)
    args = ap.parse_args()
    out: dict = {"bench": "ray_overhead", "cpus": os.cpu_count()}

    qs = llama_questions(args.n_llama)
    local = in_process("smollm2-135m", {}, qs, threads=2)
    ray_wall, startup = on_ray("smollm2-135m", {}, qs, workers=2, threads=1)
    out["llama"] = {"verdicts": len(qs), "in_process_s": round(local, 2), "ray_s": round(ray_wall, 2),
                    "startup_s": round(startup, 1), "ratio": round(ray_wall / local, 3)}
    print(f"llama.cpp {len(qs)} verdicts: in-process 2 threads {local:.1f} s, Ray 2x1 {ray_wall:.1f} s "
          f"(ratio {ray_wall / local:.2f}; Ray start + model loads {startup:.1f} s)", flush=True)

    port = free_port()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_responder, args=(port, ready), daemon=True)
    server.start()
    ready.wait(30)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        hq = questions(args.n_http)
        local = in_process(f"openai:m@{url}", {"concurrency": 64}, hq, threads=None)
        ray_wall, startup = on_ray(f"openai:m@{url}", {"concurrency": 32}, hq, workers=2, threads=1)
    finally:
        server.terminate()
    out["http"] = {"verdicts": len(hq), "in_process_s": round(local, 2), "ray_s": round(ray_wall, 2),
                   "startup_s": round(startup, 1), "ratio": round(ray_wall / local, 3)}
    print(f"HTTP {len(hq)} verdicts at 64 in flight: in-process {local:.2f} s, Ray 2x32 {ray_wall:.2f} s "
          f"(ratio {ray_wall / local:.2f})", flush=True)
    out["target_met"] = out["llama"]["ratio"] <= 1.10 and out["http"]["ratio"] <= 1.10
    print(json.dumps(out))


if __name__ == "__main__":
    main()
