"""Client overhead of the OpenAI-compatible HTTP backend.

2,000 pairwise logprob verdicts through referee's HTTP judge (``PairwiseLogprobJudge`` on
``OpenAIBackend``, run by ``judge_many``) at concurrency 1, 8 and 64, against a minimal local
OpenAI-compatible responder (its own process; it answers every request at once with a canned
chat completion carrying top_logprobs), so only the client's cost shows. The baseline sends the
same request bodies with a bare ``httpx.AsyncClient`` loop (same concurrency, same connection
limits) and decodes the JSON. Runs alternate (bare, referee, bare, referee, ...) and the best of
``--repeats`` is kept for each, to damp the noise of a shared machine.

Last line: one JSON object, ``overhead_ratio`` per concurrency (referee wall / bare wall;
target <= 1.05), and ``cpu_ratio`` (client process CPU time, referee / bare), which a busy shared
machine disturbs less than wall time.

    .venv/bin/python bench/server_overhead.py [--n 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import sys
import time

import httpx

REPLY = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop",
                      "logprobs": {"content": [{"token": "A", "logprob": -0.1,
                                                "top_logprobs": [{"token": "A", "logprob": -0.1},
                                                                 {"token": "B", "logprob": -2.4}]}]}}],
         "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}


def _responder(port: int, ready) -> None:
    body = json.dumps(REPLY).encode()
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        n = int(line[15:])
                if n:
                    await reader.readexactly(n)
                writer.write(resp)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def questions(n: int) -> list[tuple[str, str, str]]:
    return [(f"Question {i}: what is {i} + {i}?", f"It is {2 * i}.", f"It is {2 * i + 1}.") for i in range(n)]


def run_referee(url: str, qs, concurrency: int) -> float:
    from referee.backends import OpenAIBackend
    from referee.judge import PairwiseLogprobJudge
    from referee.judge._concurrent import judge_many

    backend = OpenAIBackend("m", url, concurrency=concurrency, max_retries=0)
    judge = PairwiseLogprobJudge(backend)
    judge_many(judge, qs[:concurrency])  # connections opened, loop started: not part of the timing
    t0, c0 = time.perf_counter(), time.process_time()
    answers = judge_many(judge, qs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    backend.close()
    bad = [a for a in answers if a.status != "ok"]
    assert not bad, bad[0]
    return wall, cpu


def run_bare(url: str, qs, concurrency: int) -> float:
    # the same bodies referee sends (messages with the judge's template), built before timing
    from referee.backends._openai import with_prefill_instruction
    from referee.judge import DEFAULT_TEMPLATE, PairwiseLogprobJudge

    class _Null:
        def describe(self):
            return {}

        def count_tokens(self, t):
            return 0

    msgs = PairwiseLogprobJudge.messages
    fake = type("J", (), {"template": DEFAULT_TEMPLATE})()
    bodies = [{"model": "m", "messages": with_prefill_instruction(msgs(fake, *q), DEFAULT_TEMPLATE.prefill,
                                                                  DEFAULT_TEMPLATE.choices),
               "max_tokens": 8, "temperature": 0.0, "seed": 0, "logprobs": True, "top_logprobs": 10} for q in qs]

    async def main() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(body):
                async with sem:
                    r = await client.post(url + "/chat/completions", json=body)
                    r.raise_for_status()
                    return r.json()

            # Warm-up shaped as referee's: its backend first probes the server's tokenizer with
            # one lone request, then the concurrent warm-up. The shape matters to httpx: a pool
            # whose first connection opened alone serves 64 concurrent requests about twice as
            # fast as one whose connections all opened in one burst (measured: 4.0 s vs 7.7-8.3 s
            # for 2,000 requests), which has nothing to do with either client's own cost.
            await one(bodies[0])
            await asyncio.gather(*(one(b) for b in bodies[:concurrency]))
            t0, c0 = time.perf_counter(), time.process_time()
            out = await asyncio.gather(*(one(b) for b in bodies))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert len(out) == len(bodies)
            return wall, cpu

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    port = free_port()
    ready = mp.get_context("spawn").Event()
    proc = mp.get_context("spawn").Process(target=_responder, args=(port, ready), daemon=True)
    proc.start()
    try:
        if not ready.wait(30):
            raise SystemExit("responder did not start")
        url = f"http://127.0.0.1:{port}/v1"
        qs = questions(args.n)
        result, cpu = {}, {}
        for c in args.concurrency:
            bare, ref = [], []
            for _ in range(args.repeats):
                bare.append(run_bare(url, qs, c))
                ref.append(run_referee(url, qs, c))
            b, r = min(w for w, _ in bare), min(w for w, _ in ref)
            bc, rc = min(x for _, x in bare), min(x for _, x in ref)
            print(f"concurrency {c:3d}: bare httpx {b:6.2f} s ({args.n / b:7.0f} req/s)   "
                  f"referee {r:6.2f} s ({args.n / r:7.0f} verdicts/s)   wall ratio {r / b:.3f}   "
                  f"client CPU {bc:.2f} s vs {rc:.2f} s, ratio {rc / bc:.3f}   "
                  f"[wall, bare: {', '.join(f'{w:.2f}' for w, _ in bare)}; referee: {', '.join(f'{w:.2f}' for w, _ in ref)}]",
                  flush=True)
            result[str(c)] = round(r / b, 3)
            cpu[str(c)] = round(rc / bc, 3)
        print(json.dumps({"n": args.n, "repeats": args.repeats, "overhead_ratio": result, "cpu_ratio": cpu,
                          "target": 1.05}))
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
