"""``rank --engine ray`` on a real local Ray instance: two SmolLM2 actors, one thread each."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import threading
import time

import pytest

from referee import RankOptions, rank
from referee.errors import InputError, WorkersLostError

from conftest import EXAMPLE, example_subset

pytest.importorskip("ray")  # an optional extra; the test extras install it, so CI runs these

COMMON = dict(judge="smollm2-135m", plan="baseline", baseline="concise-expert", n_boot=50,
              independence_check=False, report=False)


def _verdicts(folder):
    db = sqlite3.connect(folder / "verdicts.sqlite")
    return dict(db.execute("SELECT verdict_id, p_first FROM verdicts WHERE status = 'ok'").fetchall())


def _actor_pids():
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"ray::_JudgeWorker" in f.read():
                        pids.append(int(pid))
            except OSError:
                pass
    return pids


def test_rank_on_ray_gives_the_in_process_verdicts_and_ratings(tmp_path):
    cands = example_subset(tmp_path)
    here = rank(RankOptions(candidates=[cands], output=tmp_path / "local", **COMMON))
    there = rank(RankOptions(candidates=[cands], output=tmp_path / "ray", engine="ray", workers=2,
                             worker_threads=1, **COMMON))
    a, b = _verdicts(tmp_path / "local"), _verdicts(tmp_path / "ray")
    assert set(a) == set(b) and len(a) == 32  # the same questions, by id
    assert max(abs(a[k] - b[k]) for k in a) < 1e-3  # llama.cpp with 1 thread vs 2: the same within numerics
    ra = {r["system"]: r["rating"] for r in here.rows}
    rb = {r["system"]: r["rating"] for r in there.rows}
    assert ra.keys() == rb.keys() and max(abs(ra[s] - rb[s]) for s in ra) < 1.0
    run = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run["engine"]["kind"] == "ray" and run["engine"]["workers"] == 2
    # A rerun on Ray finds everything in the store and sends nothing.
    again = rank(RankOptions(candidates=[cands], output=tmp_path / "ray", engine="ray", **COMMON))
    assert again.provenance["verdicts"]["asked"] == 0


def test_a_worker_killed_mid_run_is_replaced_and_no_question_is_asked_twice(tmp_path):
    killed: list[int] = []

    def kill_one_later():
        time.sleep(0.5)  # the driver has committed its batch and sent the next: the actors are busy
        pids = _actor_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    seen = []

    def on_verdict(v, from_store):
        seen.append(v.verdict_id)
        if len(seen) == 4:  # the first batch is in; the second goes out now
            threading.Thread(target=kill_one_later, daemon=True).start()

    res = rank(RankOptions(candidates=[example_subset(tmp_path)], output=tmp_path / "run", engine="ray", workers=2,
                           **COMMON),
               on_verdict=on_verdict)
    assert killed, "no actor process was found to kill"
    rows = sqlite3.connect(tmp_path / "run" / "verdicts.sqlite").execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
    assert rows == 32 and len(seen) == 32 and len(set(seen)) == 32
    assert res.provenance["verdicts"]["asked"] == 32  # the lost slice was asked again, nothing else
    assert res.provenance["engine"]["retried_questions"] > 0


def test_a_cluster_whose_workers_all_die_ends_with_a_clear_error_and_keeps_every_committed_verdict(tmp_path):
    # Every actor process is killed over and over: Ray restarts each MAX_RESTARTS times, then
    # the actors are gone for good, as on a cluster that lost its nodes.
    stop = threading.Event()

    def keep_killing():
        while not stop.is_set():
            for pid in _actor_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    seen = []

    def on_verdict(v, from_store):
        seen.append(v.verdict_id)
        if len(seen) == 4:
            threading.Thread(target=keep_killing, daemon=True).start()

    cands = example_subset(tmp_path)
    try:
        with pytest.raises(WorkersLostError, match="Ray workers keep dying.*every answer committed so far is kept"):
            rank(RankOptions(candidates=[cands], output=tmp_path / "run", engine="ray", workers=2, **COMMON),
                 on_verdict=on_verdict)
    finally:
        stop.set()
    db = sqlite3.connect(tmp_path / "run" / "verdicts.sqlite")
    kept = {r[0] for r in db.execute("SELECT verdict_id FROM verdicts")}
    db.close()
    # What the loop committed, all of it, and nothing else: no error rows for the questions in flight.
    assert len(seen) >= 4 and kept == set(seen)
    db = sqlite3.connect(tmp_path / "run" / "verdicts.sqlite")
    assert db.execute("SELECT COUNT(*) FROM verdicts WHERE status = 'error'").fetchone()[0] == 0
    db.close()
    # Running again (here, in-process) asks only what was not committed.
    again = rank(RankOptions(candidates=[cands], output=tmp_path / "run", **COMMON))
    assert again.provenance["verdicts"]["asked"] == 32 - len(kept)


def test_without_ray_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # injected fault: an install without the extra
    with pytest.raises(InputError, match=r"pip install -e '\.\[ray\]'"):
        rank(RankOptions(candidates=[EXAMPLE], output=tmp_path / "run", engine="ray", **COMMON))


def test_generate_on_ray_gives_the_in_process_texts_and_resumes(tmp_path, monkeypatch):
    from conftest import run_cli, write_jsonl
    from referee.generate import SystemSpec, generate
    from referee.load import load_prompts

    rows = [{"prompt_id": f"p{i}", "prompt": q} for i, q in
            enumerate(["Name a primary color.", "What is 2 + 2?", "Say hello in French.", "Name a fruit."])]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    # Sampled, seeded; one thread in process as in each actor, so the numerics (and texts) are the same.
    here = generate(load_prompts(prompts), [SystemSpec(name="s", model="smollm2-135m", max_tokens=16,
                                                       temperature=0.8, n=2, seed=3)],
                    tmp_path / "here.jsonl", n_ctx=1024, threads=1)
    args = ["generate", prompts, "--system", "s=smollm2-135m", "--max-tokens", "16", "--temperature", "0.8",
            "--n", "2", "--seed", "3", "--n-ctx", "1024", "--engine", "ray", "--workers", "2", "-o",
            tmp_path / "ray.jsonl"]
    assert run_cli(monkeypatch, *args) == 0
    there = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert [(r["prompt_id"], r["system"], r["output"]) for r in there] == \
        [(r["prompt_id"], r["system"], r["output"]) for r in here.rows]
    summary = json.loads((tmp_path / "ray.generate.json").read_text())
    assert summary["asked"] == 8 and summary["systems"][0]["engine"]["kind"] == "ray"
    assert summary["systems"][0]["model_identity"] == json.loads(
        (tmp_path / "here.generate.json").read_text())["systems"][0]["model_identity"]
    # A rerun on Ray asks nothing: every generation is in the store.
    assert run_cli(monkeypatch, *args) == 0
    assert json.loads((tmp_path / "ray.generate.json").read_text())["asked"] == 0


def test_revise_on_ray_gives_the_in_process_rounds(tmp_path, monkeypatch):
    from conftest import run_cli, write_jsonl
    from referee.revise import revise

    rows = [{"prompt_id": "cap", "prompt": "What is the capital of France?", "system": "draft",
             "output": "The capital of France is Lyon."},
            {"prompt_id": "sum", "prompt": "What is 2 + 3?", "system": "draft", "output": "2 + 3 = 6."}]
    cands = write_jsonl(tmp_path / "c.jsonl", rows)
    # Critic and reviser with one thread in process, as in each actor: the same numerics.
    here = revise(cands, tmp_path / "here.jsonl", critic="smollm2-135m", judge="smollm2-135m", rounds=1,
                  feedback="none", max_tokens=32, n_ctx=2048, threads=1)
    args = ["revise", cands, "--critic", "smollm2-135m", "--judge", "smollm2-135m", "--rounds", "1", "--feedback",
            "none", "--max-tokens", "32", "--n-ctx", "2048", "--engine", "ray", "--workers", "2", "-o",
            tmp_path / "ray.jsonl"]
    assert run_cli(monkeypatch, *args) == 0
    there = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert [(r["system"], r["output"]) for r in there] == [(r["system"], r["output"]) for r in here.rows]
    prov = json.loads((tmp_path / "ray.revise.json").read_text())
    assert prov["per_round"] == here.rounds and prov["engine"]["smollm2-135m"]["kind"] == "ray"
    assert prov["calls"]["critic"]["asked"] == here.provenance["calls"]["critic"]["asked"] == 2
