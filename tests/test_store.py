"""The verdict store on real SQLite files."""

from __future__ import annotations

import sqlite3

import pytest

from referee.errors import StoreError
from referee.store import Verdict, VerdictStore, question_key, verdict_id
from referee.outcomes import combine_orders
from referee.outcomes import judge_outcomes


def _v(judge="j1", pid="p1", systems=("a", "b"), status="ok", p=0.8, texts=("x", "y")):
    q = question_key(judge, "pairwise", "prompt " + pid, list(texts))
    return Verdict(verdict_id=verdict_id(q, pid, list(systems)), question=q, judge_id=judge, mode="pairwise",
                   prompt_id=pid, systems=list(systems), status=status, p_first=p if status == "ok" else None,
                   detail={"mass": 0.99}, raw="{}")


def test_put_get_roundtrip_survives_reopen(tmp_path):
    path = tmp_path / "v.sqlite"
    with VerdictStore(path) as s:
        s.register_judge("j1", {"model": "m"})
        v = _v()
        s.put(v)
    with VerdictStore.open(path) as s:
        got = s.get(v.verdict_id)
        assert got.p_first == 0.8 and got.systems == ["a", "b"] and got.detail == {"mass": 0.99}
        assert got.created_at and s.judges() == {"j1": {"model": "m"}}
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_errors_are_not_answers_but_unparseable_are(tmp_path):
    with VerdictStore(tmp_path / "v.sqlite") as s:
        s.register_judge("j1", {})
        err, bad = _v(status="error", pid="p1"), _v(status="unparseable", pid="p2")
        s.put(err)
        s.put(bad)
        assert not s.has(err.verdict_id) and s.has(bad.verdict_id)
        assert s.answer_to(err.question) is None
        s.put(err.model_copy(update={"status": "ok", "p_first": 0.3}))  # the retry replaces the error row
        assert s.get(err.verdict_id).status == "ok"
        assert s.status_counts() == {"ok": 1, "unparseable": 1, "error": 0}


def test_identical_texts_share_a_question_but_not_a_row():
    q1 = question_key("j", "pairwise", "q", ["same", "other"])
    assert q1 == question_key("j", "pairwise", "q", ["same", "other"])
    assert q1 != question_key("j", "pairwise", "q", ["other", "same"])
    assert q1 != question_key("j2", "pairwise", "q", ["same", "other"])
    assert verdict_id(q1, "p", ["a", "c"]) != verdict_id(q1, "p", ["b", "c"])
    # length-prefixing: moving a boundary between parts changes the key
    assert question_key("j", "m", "ab", ["c"]) != question_key("j", "m", "a", ["bc"])


def test_combine_orders_averages_and_checks_consistency():
    ab = _v(systems=("a", "b"), p=0.9)
    ba = _v(systems=("b", "a"), p=0.3, texts=("y", "x"))
    o = combine_orders([ab, ba])
    assert o.system_a == "a" and o.p_a == pytest.approx((0.9 + 0.7) / 2)
    assert o.consistent is True and o.n_orders == 2
    o2 = combine_orders([ab, _v(systems=("b", "a"), p=0.6, texts=("y", "x"))])
    assert o2.consistent is False and o2.p_a == pytest.approx((0.9 + 0.4) / 2)
    assert combine_orders([ab]).consistent is None


def test_pairwise_outcomes_skip_unusable_and_filter_by_ids(tmp_path):
    with VerdictStore(tmp_path / "v.sqlite") as s:
        s.register_judge("j1", {})
        vs = [_v(pid="p1"), _v(pid="p1", systems=("b", "a"), p=0.2, texts=("y", "x")),
              _v(pid="p2", status="unparseable"), _v(pid="p3", p=0.6)]
        for v in vs:
            s.put(v)
        outs = {o.prompt_id: o for o in judge_outcomes(s)}
        assert set(outs) == {"p1", "p3"}
        assert outs["p1"].p_a == pytest.approx(0.8)
        only = judge_outcomes(s, verdict_ids=[vs[3].verdict_id])
        assert [o.prompt_id for o in only] == ["p3"]


def test_not_a_store(tmp_path):
    p = tmp_path / "junk.sqlite"
    p.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a referee verdict store"):
        VerdictStore(p)
    with pytest.raises(StoreError, match="no such verdict store"):
        VerdictStore.open(tmp_path / "missing.sqlite")


def test_candidates_are_kept_with_the_verdicts(tmp_path):
    from referee.load import load_candidates

    from conftest import EXAMPLE

    cs = load_candidates(EXAMPLE)
    with VerdictStore(tmp_path / "v.sqlite") as s:
        s.put_candidates(cs.prompts.values(), cs.candidates.values())
    with VerdictStore.open(tmp_path / "v.sqlite") as s:
        prompts, cands = s.prompts(), s.candidates()
    assert list(prompts) == list(cs.prompts) and prompts["q01"]["text"] == cs.prompts["q01"].text
    assert len(cands) == 72 and cands[("q17", "careless")]["output"] == ""
    assert cands[("q01", "rambling")]["metadata"] == {"category": "facts"}
