"""`referee rank` with the adaptive and tournament plans, end to end through the CLI with the real
SmolLM2 judge, then run again on the same folder: the second run must ask the judge nothing and
land on the same ratings. Both plans choose comparisons from earlier verdicts or a seeded bracket,
so a resumed run only repeats itself if the plan replays its choices from the stored verdicts.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import EXAMPLE, run_cli, write_jsonl

PROMPTS = ("q01", "q04", "q07", "q10")


@pytest.fixture
def subset(tmp_path):
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines()) if r["prompt_id"] in PROMPTS]
    return write_jsonl(tmp_path / "c.jsonl", rows)


def rank_twice(monkeypatch, subset, run, *plan_args):
    args = ["rank", subset, "--judge", "smollm2-135m", "--n-ctx", "2048", "--output", run, "--n-boot", "50",
            "--no-report", "--no-independence-check", *plan_args]
    assert run_cli(monkeypatch, *args) == 0
    first = json.loads((run / "run.json").read_text())
    assert run_cli(monkeypatch, *args) == 0
    again = json.loads((run / "run.json").read_text())
    return first, again


def stored_questions(run):
    db = sqlite3.connect(run / "verdicts.sqlite")
    try:
        return db.execute("SELECT COUNT(*) FROM verdicts WHERE mode = 'pairwise'").fetchone()[0]
    finally:
        db.close()


def test_adaptive_rank_resumes_without_asking_again(monkeypatch, subset, tmp_path):
    run = tmp_path / "adaptive"
    first, again = rank_twice(monkeypatch, subset, run, "--plan", "adaptive", "--budget", "5")
    # 5 comparisons, both orders each: fewer than the 18 pairs x 2 orders of a round robin
    assert first["verdicts"]["asked"] == 10 and first["verdicts"]["cache_hits"] == 0
    assert again["verdicts"]["asked"] == 0 and again["verdicts"]["cache_hits"] == 10
    assert stored_questions(run) == 10
    assert again["rating"]["ratings_sha256"] == first["rating"]["ratings_sha256"]


def test_tournament_rank_resumes_without_asking_again(monkeypatch, subset, tmp_path):
    run = tmp_path / "tournament"
    first, again = rank_twice(monkeypatch, subset, run, "--plan", "tournament")
    # three systems: a bye and two matches per prompt, both orders each
    assert first["verdicts"]["asked"] == len(PROMPTS) * 2 * 2 and first["verdicts"]["cache_hits"] == 0
    assert again["verdicts"]["asked"] == 0 and again["verdicts"]["cache_hits"] == first["verdicts"]["asked"]
    assert stored_questions(run) == first["verdicts"]["asked"]
    assert again["rating"]["ratings_sha256"] == first["rating"]["ratings_sha256"]
