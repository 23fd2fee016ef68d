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
from referee.errors import InputError

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


def test_without_ray_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # injected fault: an install without the extra
    with pytest.raises(InputError, match=r"pip install -e '\.\[ray\]'"):
        rank(RankOptions(candidates=[EXAMPLE], output=tmp_path / "run", engine="ray", **COMMON))
