"""The store under a second process: real SQLite files, real child processes, real SQLite faults."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from referee.errors import RefereeError, StoreError
from referee.store import Verdict, VerdictStore, question_key, verdict_id

from conftest import referee_cmd, write_jsonl


def _v(status: str, p: float | None = None, raw: str = "") -> Verdict:
    q = question_key("j1", "pairwise", "prompt", ["x", "y"])
    return Verdict(verdict_id=verdict_id(q, "p1", ["a", "b"]), question=q, judge_id="j1", mode="pairwise",
                   prompt_id="p1", systems=["a", "b"], status=status, p_first=p, raw=raw,
                   error="backend down" if status == "error" else None)


def _put_in_child(path, status: str, p: float | None) -> None:
    """Another process puts the same verdict with ``status``."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        from test_store_concurrency import _v
        from referee.store import VerdictStore
        with VerdictStore({str(path)!r}) as s:
            s.register_judge("j1", {{}})
            print(s.put(_v({status!r}, {p!r})))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_an_error_from_another_process_never_overwrites_an_answer(tmp_path):
    path = tmp_path / "v.sqlite"
    with VerdictStore(path) as s:
        s.register_judge("j1", {})
        s.put(_v("ok", 0.8))
    _put_in_child(path, "error", None)
    with VerdictStore.open(path) as s:
        got = s.get(_v("ok").verdict_id)
        assert got.status == "ok" and got.p_first == 0.8
    with VerdictStore(path) as s:  # nor an unparseable answer
        s._db.execute("UPDATE verdicts SET status='unparseable', p_first=NULL")
        s._db.commit()
    _put_in_child(path, "error", None)
    with VerdictStore.open(path) as s:
        assert s.get(_v("ok").verdict_id).status == "unparseable"


def test_an_answer_from_another_process_replaces_an_error(tmp_path):
    path = tmp_path / "v.sqlite"
    with VerdictStore(path) as s:
        s.register_judge("j1", {})
        assert s.put(_v("error"))
        assert s.put(_v("error"))  # a later error replaces an earlier one (its message is the news)
    _put_in_child(path, "ok", 0.3)
    with VerdictStore.open(path) as s:
        got = s.get(_v("ok").verdict_id)
        assert got.status == "ok" and got.p_first == 0.3
    with VerdictStore(path) as s:
        assert not s.put(_v("error"))
        assert s.put(_v("ok", 0.6), replace=True)  # a recomputed verdict (stored ensemble) supersedes
        assert s.get(_v("ok").verdict_id).p_first == 0.6


_HOLD_LOCK = """
import sys
from referee.store import VerdictStore
s = VerdictStore(sys.argv[1], lock=True)
print("locked", flush=True)
sys.stdin.read()
s.close()
"""


def test_a_second_rank_on_the_same_folder_stops_before_judging(tmp_path, child_env):
    data = write_jsonl(tmp_path / "c.jsonl", [{"prompt_id": f"p{i}", "prompt": f"q{i}", "system": s,
                                               "output": "word " * (i + (s == "a"))}
                                              for i in range(3) for s in ("a", "b")])
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(run / "verdicts.sqlite")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = subprocess.run(referee_cmd("rank", str(data), "-o", str(run), "--judge", "verify:length:2",
                                         "--no-report"),
                             capture_output=True, text=True, env=child_env, timeout=300)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr
        assert str(run) in lines[0] and f"pid {holder.pid}" in lines[0] and "another referee run" in lines[0]
        with VerdictStore.open(run / "verdicts.sqlite") as s:
            assert list(s.verdicts()) == []  # nothing asked, nothing paid
    finally:
        holder.communicate("", timeout=30)
    # the holder is gone: its lock went with it, and the folder is usable again
    again = subprocess.run(referee_cmd("rank", str(data), "-o", str(run), "--judge", "verify:length:2",
                                       "--no-report"), capture_output=True, text=True, env=child_env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "run.json").read_text())["verdicts"]["total"] == 6


def test_a_killed_run_leaves_no_lock_behind(tmp_path, child_env):
    path = tmp_path / "run" / "verdicts.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=child_env)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(StoreError, match=f"pid {holder.pid}"):
        VerdictStore(path, lock=True)
    holder.kill()
    holder.wait(timeout=30)
    VerdictStore(path, lock=True).close()


_HOLD_WRITE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("writing", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


def test_a_locked_database_is_a_store_error(tmp_path, child_env):
    path = tmp_path / "run" / "verdicts.sqlite"
    with VerdictStore(path) as s:
        s.register_judge("j1", {})
    writer = subprocess.Popen([sys.executable, "-c", _HOLD_WRITE, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=child_env)
    try:
        assert writer.stdout.readline().strip() == "writing"
        with VerdictStore(path, busy_timeout=0.2) as s:
            with pytest.raises(StoreError, match="cannot store the verdict: database is locked; another process"):
                s.put(_v("ok", 0.8))
            assert [v.status for v in s.verdicts()] == []  # reading goes on (WAL)
    finally:
        writer.communicate("", timeout=30)
    assert issubclass(StoreError, RefereeError)


def test_rank_into_a_locked_database_is_one_line_and_exit_2(tmp_path, child_env):
    data = write_jsonl(tmp_path / "c.jsonl", [{"prompt_id": "p1", "prompt": "q", "system": s, "output": s}
                                              for s in ("a", "b")])
    run = tmp_path / "run"
    VerdictStore(run / "verdicts.sqlite").close()
    writer = subprocess.Popen([sys.executable, "-c", _HOLD_WRITE, str(run / "verdicts.sqlite")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env)
    try:
        assert writer.stdout.readline().strip() == "writing"
        out = subprocess.run(referee_cmd("rank", str(data), "-o", str(run), "--judge", "verify:length:2",
                                         "--no-report"), capture_output=True, text=True, env=child_env, timeout=300)
    finally:
        writer.communicate("", timeout=30)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr and "database is locked" in lines[0]
    assert "verdicts.sqlite" in lines[0] and "another process holds the store's write lock" in lines[0]
    assert "not a referee verdict store" not in lines[0]  # a busy store is no foreign file


def test_a_full_database_is_a_store_error_not_a_traceback(tmp_path):
    # SQLite's own page limit gives the real SQLITE_FULL error a full disk gives
    path = tmp_path / "v.sqlite"
    with VerdictStore(path) as s:
        s.register_judge("j1", {})
        pages = s._db.execute("PRAGMA page_count").fetchone()[0]
        s._db.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(StoreError, match="database or disk is full; free some disk space"):
            s.put(_v("ok", 0.5, raw="x" * 200_000))
        assert s.get(_v("ok").verdict_id) is None  # the failed transaction left nothing half-written


def test_unreadable_store_is_a_store_error(tmp_path):
    path = tmp_path / "v.sqlite"
    with VerdictStore(path) as s:
        s.register_judge("j1", {})
    sqlite3.connect(path).execute("DROP TABLE meta").connection.commit()
    with pytest.raises(StoreError, match="not a referee verdict store"):
        VerdictStore.open(path)
