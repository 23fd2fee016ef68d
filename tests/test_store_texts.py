"""A run folder reused after regenerating outputs: every reader uses only verdicts about the current texts.

Real SQLite files and real non-LLM judges (``verify:exact`` scores, ``replay:`` pairwise verdicts).
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from referee import RankOptions, rank
from referee.errors import InputError, StoreError
from referee.store import SCHEMA_VERSION, Verdict, VerdictStore, question_key, text_hash, verdict_id
from referee.outcomes import judge_outcomes

from conftest import run_cli, write_jsonl

REFS = {"p1": "Paris", "p2": "Rome", "p3": "Madrid", "p4": "Berlin"}
# who answers right (exact match with the reference) on each prompt: everyone wins and loses
# somewhere, so the ratings exist in both runs
RIGHT_BEFORE = {"p1": {"a"}, "p2": {"b"}, "p3": {"c"}, "p4": {"a", "b"}}
RIGHT_AFTER_A = {"p3"}  # system a's regenerated outputs are right only here


def _rows(right: dict[str, set[str]], tag: str) -> list[dict]:
    rows = []
    for pid, ref in REFS.items():
        for s in ("a", "b", "c"):
            out = ref if s in right[pid] else f"{s} says {tag} {pid} is Lyon"
            rows.append({"prompt_id": pid, "prompt": f"Capital? ({pid})", "system": s, "output": out,
                         "reference": ref})
    return rows


def _regenerated() -> list[dict]:
    after = {pid: {s for s in right if s != "a"} | ({"a"} if pid in RIGHT_AFTER_A else set())
             for pid, right in RIGHT_BEFORE.items()}
    rows = _rows(after, "new")
    old = {(r["prompt_id"], r["system"]): r["output"] for r in _rows(RIGHT_BEFORE, "old")}
    for r in rows:  # only system a was regenerated
        if r["system"] != "a":
            r["output"] = old[(r["prompt_id"], r["system"])]
    return rows


def _rank(path, run, judge="verify:exact"):
    return rank(RankOptions(candidates=[path], output=run, judge=judge, n_boot=20, report=False))


def test_rerun_after_regenerating_one_system_exports_only_what_was_judged(tmp_path, monkeypatch):
    run = tmp_path / "run"
    first = _rank(write_jsonl(tmp_path / "v1.jsonl", _rows(RIGHT_BEFORE, "old")), run)
    assert "changed" not in first.provenance["candidates"]
    new = _regenerated()
    second = _rank(write_jsonl(tmp_path / "v2.jsonl", new), run)

    # the rerun says what changed, on screen (print_result) and in run.json
    changed = json.loads((run / "run.json").read_text())["candidates"]["changed"]
    assert changed["candidates"] == 4 and changed["prompts"] == 0 and changed["stale_verdicts"] == 4
    assert "4 candidate text(s) changed" in changed["notice"] and "not used" in changed["notice"]
    assert second.provenance["candidates"]["changed"] == changed

    out = tmp_path / "dpo.jsonl"
    assert run_cli(monkeypatch, "export", run, "-o", out, "--format", "dpo") == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    texts = {(r["prompt_id"], r["system"]): r["output"] for r in new}
    assert rows
    with VerdictStore.open(run / "verdicts.sqlite") as store:
        for r in rows:
            pid = r["prompt_id"]
            assert r["chosen"] == texts[(pid, r["chosen_system"])] == REFS[pid]  # the right answer won
            assert r["rejected"] == texts[(pid, r["rejected_system"])] != REFS[pid]
            for vid in r["verdict_ids"]:
                v = store.get(vid)
                judged = question_key(v.judge_id, v.mode, f"Capital? ({pid})",
                                      [texts[(pid, v.systems[0])], f"\x00reference\x00{REFS[pid]}"])
                assert v.question == judged  # the verdict is about the exported text
    # a on p3 is right now: before, its old (wrong) verdict was read first and a lost there
    assert any(r["prompt_id"] == "p3" and r["chosen_system"] == "a" for r in rows)
    assert not any(r["prompt_id"] == "p1" and r["chosen_system"] == "a" for r in rows)

    from referee.combine._io import read_verdicts_store

    table = read_verdicts_store(run)
    by_item = {(pid, a, b): table.x[i, 0] for i, (pid, a, b) in enumerate(table.items)}
    ab_p1 = by_item.get(("p1", "a", "b"), None)
    if ab_p1 is None:
        ab_p1 = 1.0 - by_item[("p1", "b", "a")]
    assert ab_p1 == 0.5  # both wrong now; the old verdicts said a won


def test_referee_rate_reads_only_verdicts_about_the_current_texts(tmp_path, monkeypatch):
    from referee.load import Candidate, Prompt

    path = tmp_path / "run" / "verdicts.sqlite"
    prompts = [Prompt(id=f"p{i}", text=f"question {i}") for i in range(4)]

    def cands(a_text):
        return [Candidate(prompt_id=p.id, system=s, output=(a_text if s == "a" else f"{s} answers {p.id}"))
                for p in prompts for s in ("a", "b")]

    def judged(store, cs, p_a):
        texts = {(c.prompt_id, c.system): c.output for c in cs}
        for p in prompts:
            for first, second, pf in (("a", "b", p_a), ("b", "a", 1 - p_a)):
                q = question_key("j", "pairwise", p.text, [texts[(p.id, first)], texts[(p.id, second)]])
                store.put(Verdict(verdict_id=verdict_id(q, p.id, [first, second]), question=q, judge_id="j",
                                  mode="pairwise", prompt_id=p.id, systems=[first, second], status="ok",
                                  p_first=pf))

    with VerdictStore(path) as store:
        store.register_judge("j", {})
        old = cands("a's first answer")
        store.put_candidates(prompts, old)
        judged(store, old, 0.9)
        new = cands("a's regenerated answer")
        changes = store.put_candidates(prompts, new)
        judged(store, new, 0.2)
    assert (changes.candidates, changes.prompts, changes.stale_verdicts) == (4, 0, 8)

    with VerdictStore.open(path) as store:
        outs = judge_outcomes(store)
        assert len(outs) == 4 and all(o.p_a == pytest.approx(0.2 if o.system_a == "a" else 0.8) for o in outs)
        assert len(list(store.verdicts())) == 8 and len(list(store.verdicts(current=False))) == 16
        history = judge_outcomes(store, current=False)  # history never mixes two texts in one outcome
        assert len(history) == 8 and sorted(round(o.p_a if o.system_a == "a" else 1 - o.p_a, 6)
                                             for o in history) == [0.2] * 4 + [0.9] * 4
        assert store.status_counts() == {"ok": 8, "unparseable": 0, "error": 0}

    out = tmp_path / "ratings.json"
    assert run_cli(monkeypatch, "rate", tmp_path / "run", "--ci", "sandwich", "--reg", "0.01", "-o", out) == 0
    doc = json.loads(out.read_text())
    rating = {r["system"]: r["rating"] for r in doc["ratings"]}
    assert rating["b"] > rating["a"]  # the old 0.9 verdicts averaged in would have put a ahead (0.55)


def test_replay_rerun_rates_and_combines_only_new_verdicts(tmp_path):
    rows = [{"prompt_id": f"p{i}", "prompt": f"q{i}", "system": s, "output": f"{s} {i}"}
            for i in range(3) for s in ("a", "b", "c")]
    rec = [{"prompt_id": f"p{i}", "system_a": x, "system_b": y, "p_a": p}
           for i in range(3) for x, y, p in (("a", "b", 0.7), ("b", "c", 0.6), ("a", "c", 0.4 + 0.1 * i))]
    replay = write_jsonl(tmp_path / "recorded.jsonl", rec)
    run = tmp_path / "run"
    _rank(write_jsonl(tmp_path / "v1.jsonl", rows), run, judge=f"replay:{replay}")
    for r in rows:
        if r["system"] == "c":
            r["output"] += " (regenerated)"
    second = _rank(write_jsonl(tmp_path / "v2.jsonl", rows), run, judge=f"replay:{replay}")
    assert second.provenance["candidates"]["changed"]["candidates"] == 3
    assert second.provenance["candidates"]["changed"]["stale_verdicts"] == 12  # c's pairs, both orders

    texts = {(r["prompt_id"], r["system"]): r["output"] for r in rows}
    with VerdictStore.open(run / "verdicts.sqlite") as store:
        outs = judge_outcomes(store)
        assert len(outs) == 9 and all(o.n_orders == 2 and len(o.verdict_ids) == 2 for o in outs)
        for o in outs:
            for vid in o.verdict_ids:
                v = store.get(vid)
                assert v.question == question_key(v.judge_id, "pairwise", f"q{o.prompt_id[1:]}",
                                                  [texts[(o.prompt_id, s)] for s in v.systems])

    from referee.combine._io import read_verdicts_store

    table = read_verdicts_store(run)
    ids = [vid for cell in table.verdict_ids.values() for vid in cell]
    assert len(ids) == 18 and len(set(ids)) == 18


def _schema1_store(path, rows):
    """A store as referee wrote it before verdicts were bound to texts (schema 1)."""
    db = sqlite3.connect(path)
    db.executescript("""
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE judges (judge_id TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE verdicts (verdict_id TEXT PRIMARY KEY, question TEXT NOT NULL, judge_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        prompt_id TEXT NOT NULL, systems TEXT NOT NULL, system_first TEXT, system_second TEXT,
        status TEXT NOT NULL CHECK (status IN ('ok', 'unparseable', 'error')), p_first REAL, score REAL,
        detail TEXT NOT NULL, raw TEXT NOT NULL, error TEXT, prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL, latency_s REAL NOT NULL, cost REAL NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX verdicts_by_question ON verdicts (question);
    CREATE INDEX verdicts_by_judge ON verdicts (judge_id, mode, prompt_id);
    CREATE TABLE prompts (prompt_id TEXT PRIMARY KEY, text TEXT NOT NULL, reference TEXT);
    CREATE TABLE candidates (prompt_id TEXT NOT NULL, system TEXT NOT NULL, output TEXT NOT NULL, sha256 TEXT NOT NULL,
        metadata TEXT NOT NULL, PRIMARY KEY (prompt_id, system));
    CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
        provenance TEXT NOT NULL);
    INSERT INTO meta VALUES ('schema_version', '1');
    INSERT INTO judges VALUES ('j', '{}', 'then');
    INSERT INTO prompts VALUES ('p1', 'question', NULL);
    """)
    for s, out in (("a", "a now"), ("b", "b now")):
        db.execute("INSERT INTO candidates VALUES ('p1', ?, ?, ?, '{}')", (s, out, text_hash(out)))
    for a_text, p in rows:
        q = question_key("j", "pairwise", "question", [a_text, "b now"])
        db.execute("INSERT INTO verdicts VALUES (?, ?, 'j', 'pairwise', 'p1', '[\"a\", \"b\"]', 'a', 'b', 'ok', ?, "
                   "NULL, '{}', '', NULL, 0, 0, 0, 0, 'then')", (verdict_id(q, "p1", ["a", "b"]), q, p))
    db.commit()
    db.close()


def test_a_schema1_store_is_upgraded_and_keeps_only_verdicts_about_its_texts(tmp_path):
    path = tmp_path / "v.sqlite"
    _schema1_store(path, [("a before regenerating", 0.9), ("a now", 0.3)])
    with VerdictStore.open(path) as store:  # a reader upgrades it too
        outs = judge_outcomes(store)
        assert [o.p_a for o in outs] == [0.3]
        assert [v.texts for v in store.verdicts(current=False)] == [[], [text_hash(x) for x in
                                                                           ("question", "a now", "b now")]]
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    with VerdictStore(path) as store:  # and it stays upgraded
        assert len(list(store.verdicts())) == 1
        # the old text comes back: its verdict (found again by its id) is about the current text again
        from referee.load import Candidate, Prompt

        changes = store.put_candidates([Prompt(id="p1", text="question")],
                                       [Candidate(prompt_id="p1", system="a", output="a before regenerating")])
        assert (changes.candidates, changes.stale_verdicts) == (1, 1)
        assert [o.p_a for o in judge_outcomes(store)] == [0.9]


def test_a_store_from_a_newer_referee_is_one_clear_error(tmp_path):
    path = tmp_path / "v.sqlite"
    VerdictStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema 99 was written by a newer referee"):
        VerdictStore.open(path)


def test_export_refuses_candidates_that_are_not_the_judged_texts(tmp_path):
    from referee.export._source import load_preferences

    run = tmp_path / "run"
    _rank(write_jsonl(tmp_path / "v1.jsonl", _rows(RIGHT_BEFORE, "old")), run)
    other = write_jsonl(tmp_path / "v2.jsonl", _regenerated())
    with pytest.raises(InputError, match="4 text.s. differ from the texts the stored verdicts judged"):
        load_preferences(run, candidates=other)
    same = write_jsonl(tmp_path / "same.jsonl", _rows(RIGHT_BEFORE, "old"))
    assert load_preferences(run, candidates=same).records
