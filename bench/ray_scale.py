"""Where one driver saturates: `referee rank` with the replay judge (no model), in-process and on Ray.

A synthetic candidate set of 100 systems (every pair on every prompt in both orders: 9,900
questions a prompt) and a replay file that holds a recorded verdict for every pair, written once
and cached under ``bench/.cache/ray_scale``. Each measurement is the real ``rank`` (Python API, the
``--store parquet`` store, report and prompt-independence screen off, 100 bootstrap replicates) in
a fresh process, timed in three phases through ``rank``'s own callbacks:

- ``plan_s``: load the candidates, plan, register the texts, start the engine (Ray start and actors);
- ``judge_s``: the judging loop, from the first question to the last committed verdict: the
  driver looks each question up, hands the look-ahead to the engine and commits every answer;
- ``rate_s``: outcomes, ratings and the run folder's files.

The replay judge answers at once, so every second is the driver's (or Ray's): questions/s
committed is the most one driver can feed a fleet of judge servers. The driver's peak RSS
(VmHWM) is reported too; Ray's actors are other processes.

``rank`` keeps every verdict of the run in the driver's memory until it rates them, which caps one
run at a few million questions on this machine. ``--loop`` measures the judging loop alone, as
adaptive and tournament plans run it: batches of 10 prompts, each planned (round-robin) and
judged through the same store and engine, nothing kept between batches; it reaches 10M.

    .venv/bin/python bench/ray_scale.py [--questions 1e5,1e6] [--engines local,ray] [--workers 2] [--loop]

Last line: one JSON object (ratio = Ray's judging-loop seconds / in-process, per size).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache" / "ray_scale"
N_SYSTEMS = 100


def build(questions: int, seed: int = 0) -> Path:
    """A folder with ``candidates.jsonl`` and ``replay.jsonl`` for about ``questions`` questions (cached)."""
    per_prompt = N_SYSTEMS * (N_SYSTEMS - 1)
    n_prompts = max(1, math.ceil(questions / per_prompt))
    folder = CACHE / f"p{n_prompts}"
    if (folder / "built.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, N_SYSTEMS)
    systems = [f"system-{i:03d}" for i in range(N_SYSTEMS)]
    ia, ib = np.triu_indices(N_SYSTEMS, 1)
    with open(folder / "candidates.jsonl", "w") as cf, open(folder / "replay.jsonl", "w") as rf:
        for p in range(n_prompts):
            pid = f"prompt-{p:06d}"
            cf.write("".join(json.dumps({"prompt_id": pid, "prompt": f"Question {p}: what is {p} plus {p}?",
                                         "system": s, "output": f"{s} says {2 * p + (i % 3) - 1}"}) + "\n"
                             for i, s in enumerate(systems)))
            p_a = 1 / (1 + np.exp(-(strength[ia] - strength[ib] + rng.normal(0, 0.5, len(ia)))))
            rf.write("".join(f'{{"prompt_id": "{pid}", "system_a": "{systems[a]}", "system_b": "{systems[b]}", '
                             f'"p_a": {q:.6f}}}\n' for a, b, q in zip(ia, ib, p_a)))
    (folder / "built.json").write_text(json.dumps({"prompts": n_prompts, "questions": n_prompts * per_prompt}))
    return folder


def child(folder: Path, engine: str, workers: int) -> None:
    """One measured `rank` in this process; prints its phases as JSON."""
    from referee import RankOptions, rank

    out = folder / f"run-{engine}"
    if out.exists():
        import shutil
        shutil.rmtree(out)
    marks: dict[str, float] = {}
    count = [0]

    def on_verdict(_v, _from_store):
        count[0] += 1
        marks["last"] = time.perf_counter()

    options = RankOptions(candidates=[folder / "candidates.jsonl"], output=out, judge=f"replay:{folder / 'replay.jsonl'}",
                          store="parquet", report=False, independence_check=False, n_boot=100, engine=engine,
                          workers=workers, worker_threads=1)
    t0 = time.perf_counter()
    result = rank(options, on_start=lambda _p: marks.setdefault("start", time.perf_counter()), on_verdict=on_verdict)
    t1 = time.perf_counter()
    rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"engine": engine, "verdicts": count[0], "asked": result.progress.asked,
                      "plan_s": round(marks["start"] - t0, 2), "judge_s": round(marks["last"] - marks["start"], 2),
                      "rate_s": round(t1 - marks["last"], 2), "total_s": round(t1 - t0, 2),
                      "per_s": round(count[0] / (marks["last"] - marks["start"])), "peak_rss_mb": rss // 1024,
                      "ok": result.stats.status.get("ok", 0)}))


def loop_child(folder: Path, engine: str, workers: int) -> None:
    """The judging loop over batches of prompts in this process; prints its phases as JSON."""
    from referee.judge import JudgeProgress, judge_comparisons, make_judge
    from referee.load import load_candidates
    from referee.plan import round_robin
    from referee.store import VerdictStore

    out = folder / f"loop-{engine}"
    if out.exists():
        import shutil
        shutil.rmtree(out)
    out.mkdir()
    t0 = time.perf_counter()
    cset = load_candidates(folder / "candidates.jsonl")
    spec = f"replay:{folder / 'replay.jsonl'}"
    judge = make_judge(spec)
    judge.bind(cset)
    store = VerdictStore(out / "verdicts.sqlite", lock=True, shard_rows=50_000)
    store.register_judge(judge.judge_id, judge.spec)
    store.put_candidates(cset.prompts.values(), cset.candidates.values())
    ray_engine = None
    if engine == "ray":
        from referee.engine import RayEngine
        ray_engine = RayEngine(spec, {}, judge.judge_id, workers=workers, threads=1, candidates=cset)
    setup = time.perf_counter() - t0
    progress = JudgeProgress()
    plan_s = judge_s = 0.0
    rss = 0
    pids = list(cset.prompts)
    for i in range(0, len(pids), 10):
        t = time.perf_counter()
        batch = round_robin({p: cset.systems_for(p) for p in pids[i:i + 10]})
        plan_s += time.perf_counter() - t
        t = time.perf_counter()
        got = judge_comparisons(batch, cset, judge, store, progress=progress, engine=ray_engine)
        judge_s += time.perf_counter() - t
        assert all(v.status == "ok" for v in got)
        rss = max(rss, next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")))
        del got
    store.flush_shards()
    if ray_engine is not None:
        ray_engine.shutdown()
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"engine": engine, "verdicts": progress.asked, "asked": progress.asked, "ok": progress.asked,
                      "setup_s": round(setup, 2), "plan_s": round(plan_s, 2), "judge_s": round(judge_s, 2),
                      "planned_per_s": round(progress.planned / plan_s), "per_s": round(progress.asked / judge_s),
                      "loop_rss_mb": rss // 1024, "peak_rss_mb": peak // 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", default="1e5,1e6")
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--loop", action="store_true", help="the judging loop by batches of prompts, not rank")
    ap.add_argument("--child", nargs=2, metavar=("FOLDER", "ENGINE"))
    args = ap.parse_args()
    if args.child:
        (loop_child if args.loop else child)(Path(args.child[0]), args.child[1], args.workers)
        return
    results: dict = {"bench": "ray_scale", "mode": "loop" if args.loop else "rank", "systems": N_SYSTEMS,
                     "workers": args.workers, "sizes": []}
    for n in (int(float(x)) for x in args.questions.split(",")):
        t0 = time.perf_counter()
        folder = build(n)
        built = json.loads((folder / "built.json").read_text())
        print(f"{built['questions']:,} questions on {built['prompts']:,} prompts (built in "
              f"{time.perf_counter() - t0:.0f} s)", flush=True)
        row: dict = {"questions": built["questions"], "prompts": built["prompts"]}
        for engine in args.engines.split(","):
            proc = subprocess.run([sys.executable, __file__, "--child", str(folder), engine, "--workers",
                                   str(args.workers), *(["--loop"] if args.loop else [])], capture_output=True,
                                  text=True)
            if proc.returncode:
                raise SystemExit(f"{engine} at {n}: {proc.stderr[-2000:]}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            assert got["verdicts"] == built["questions"] == got["asked"] == got["ok"], got
            row[engine] = got
            last = f"rate {got['rate_s']:6.1f} s" if "rate_s" in got else f"setup {got['setup_s']:6.1f} s"
            print(f"  {engine:5s} plan {got['plan_s']:7.1f} s  judge {got['judge_s']:8.1f} s "
                  f"({got['per_s']:,}/s committed)  {last}  peak RSS {got['peak_rss_mb']:,} MB", flush=True)
        if "local" in row and "ray" in row:
            row["ratio"] = round(row["ray"]["judge_s"] / row["local"]["judge_s"], 3)
        results["sizes"].append(row)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
