"""``referee rank`` as a user runs it: a child process, the example file, the small real judge."""

from __future__ import annotations

import json
import math
import subprocess

import pytest

from referee import RankOptions, rank

from conftest import EXAMPLE, referee_cmd, run_cli, write_jsonl


def test_rank_example_end_to_end(tmp_path, child_env):
    out = tmp_path / "run"
    r = subprocess.run(referee_cmd("rank", str(EXAMPLE), "-o", str(out), "--judge", "smollm2-135m",
                                   "--plan", "baseline", "--baseline", "concise-expert", "--n-boot", "200"),
                       capture_output=True, text=True, env=child_env, timeout=900)
    assert r.returncode == 0, r.stderr
    for name in ("verdicts.sqlite", "leaderboard.json", "leaderboard.csv", "leaderboard.md", "run.json"):
        assert (out / name).is_file(), name
    assert "referee leaderboard" in r.stdout and "position consistency" in r.stdout
    for system in ("concise-expert", "rambling", "careless"):
        assert system in r.stdout
    run = json.loads((out / "run.json").read_text())
    # vs-baseline: 2 comparisons per prompt, both orders
    assert run["verdicts"]["total"] == 24 * 2 * 2
    assert run["plan"]["name"] == "baseline" and run["options"]["baseline"] == "concise-expert"


def test_missing_judge_package_says_what_to_install(tmp_path, child_env):
    r = subprocess.run(referee_cmd("rank", str(EXAMPLE), "-o", str(tmp_path / "r"), "--judge", "no-such-model"),
                       capture_output=True, text=True, env=child_env, timeout=120)
    assert r.returncode == 2 and "unknown judge model 'no-such-model'" in r.stderr
    assert "qwen2.5-coder-1.5b" in r.stderr and "Traceback" not in r.stderr


def test_unknown_baseline_is_one_clear_error(tmp_path, child_env):
    r = subprocess.run(referee_cmd("rank", str(EXAMPLE), "-o", str(tmp_path / "r"), "--judge", "smollm2-135m",
                                   "--baseline", "gpt-9"),
                       capture_output=True, text=True, env=child_env, timeout=120)
    assert r.returncode == 2 and "gpt-9" in r.stderr and "Traceback" not in r.stderr


def test_folder_input_with_a_field_error_names_the_field(tmp_path, child_env):
    folder = tmp_path / "outs"
    folder.mkdir()
    (folder / "m1.json").write_text(json.dumps([{"instruction": "Hi", "output": "Hello", "generator": "m1"}]))
    (folder / "m2.json").write_text(json.dumps([{"instruction": "Hi", "generator": "m2"}]))
    r = subprocess.run(referee_cmd("rank", str(folder), "-o", str(tmp_path / "r"), "--judge", "smollm2-135m"),
                       capture_output=True, text=True, env=child_env, timeout=120)
    assert r.returncode == 2
    assert "m2.json:1 [field 'output']: missing field" in r.stderr


def test_hard_verdicts_where_a_system_never_wins_still_write_the_leaderboard(tmp_path, child_env):
    # verify:length:45 passes every concise-expert and careless answer (at most 42 words) and fails
    # every rambling one (48+): 0/1 verdicts, rambling never wins or ties, so no maximum-likelihood fit
    out = tmp_path / "run"
    r = subprocess.run(referee_cmd("rank", str(EXAMPLE), "-o", str(out), "--judge", "verify:length:45",
                                   "--n-boot", "100", "--no-report"),
                       capture_output=True, text=True, env=child_env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "maximum-likelihood ratings do not exist" in r.stdout and "rambling never won" in r.stdout
    run = json.loads((out / "run.json").read_text())
    rating = run["rating"]
    assert rating["prior"] == "fallback" and rating["reg"] > 0
    assert rating["unbounded_systems"] == {"rambling": "below"}
    assert any("rambling never won" in n and "--reg" in n for n in rating["notes"])
    board = json.loads((out / "leaderboard.json").read_text())
    by_system = {row["system"]: row for row in board["leaderboard"]}
    assert by_system["rambling"]["rank"] == 3 and by_system["rambling"]["unbounded"] == "below"
    assert by_system["careless"]["unbounded"] is None
    assert "rambling never won" in (out / "leaderboard.md").read_text()
    assert (out / "leaderboard.csv").read_text().count("\n") == 4


def test_an_explicit_reg_is_used_and_reg_0_demands_maximum_likelihood(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    args = ("rank", EXAMPLE, "-o", out, "--judge", "verify:length:45", "--n-boot", "50", "--no-report")
    assert run_cli(monkeypatch, *args, "--reg", "0") == 2
    err = capsys.readouterr().err
    assert "ratings diverge" in err and "rambling never won" in err and "--reg" in err
    assert run_cli(monkeypatch, *args, "--reg", "0.5", "--level", "0.8") == 0
    assert "80% CI" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    # the verdicts of the failed attempt were kept: nothing was asked again
    assert run["verdicts"]["asked"] == 0 and run["verdicts"]["cache_hits"] == 72
    assert run["rating"]["reg"] == 0.5 and run["rating"]["prior"] == "given" and run["rating"]["level"] == 0.8
    assert run["rating"]["unbounded_systems"] == {}


def test_a_tournament_of_replayed_hard_verdicts_with_a_system_that_never_wins(tmp_path):
    # careless loses every recorded verdict, the other two split theirs
    rows = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    recs = []
    for k, pid in enumerate(sorted({r["prompt_id"] for r in rows})):
        recs.append({"prompt_id": pid, "system_a": "concise-expert", "system_b": "rambling", "p_a": float(k % 3 != 0)})
        recs.append({"prompt_id": pid, "system_a": "concise-expert", "system_b": "careless", "p_a": 1.0})
        recs.append({"prompt_id": pid, "system_a": "careless", "system_b": "rambling", "p_a": 0.0})
    replay = write_jsonl(tmp_path / "recorded.jsonl", recs)
    res = rank(RankOptions(candidates=[EXAMPLE], output=tmp_path / "run", judge=f"replay:{replay}",
                           plan="tournament", n_boot=50, report=False))
    assert res.provenance["rating"]["unbounded_systems"] == {"careless": "below"}
    assert [r["system"] for r in res.rows][-1] == "careless"
    assert all(math.isfinite(r["rating"]) and r["lower"] <= r["rating"] <= r["upper"] for r in res.rows)
    assert (tmp_path / "run" / "leaderboard.json").is_file()


REFUSED = [
    (("--judge", "verify:length:45", "--plan", "adaptive", "--until", "separated"), "--plan"),
    (("--judge", "verify:length:45", "--budget", "5"), "--budget"),
    (("--mode", "pointwise", "--plan", "tournament"), "--plan"),
    (("--judge", "verify:length:45", "--plan", "adaptive", "--budget", "10", "--baseline", "careless"), "--baseline"),
    (("--judge", "verify:length:45", "--plan", "tournament", "--baseline", "careless"), "--baseline"),
    (("--judge", "verify:length:45", "--judges", "verify:length:30,verify:regex:[0-9]"), "--judge"),
    (("--judge", "verify:exact"), "reference"),
    (("--judges", "verify:length:30,verify:chrf"), "reference"),
    (("--judge", "verify:length:45", "--concurrency", "4"), "--concurrency"),
    (("--judge", "verify:length:45", "--max-candidate-tokens", "100"), "--max-candidate-tokens"),
    (("--judge", "verify:length:45", "--min-mass", "0.2"), "--min-mass"),
    (("--judge", "verify:length:45", "--level", "95"), "--level"),
    (("--judge", "verify:length:45", "--n-boot", "1"), "--n-boot"),
]


@pytest.mark.parametrize("args,option", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_options_the_run_would_ignore_are_refused_up_front(tmp_path, monkeypatch, capsys, args, option):
    out = tmp_path / "run"
    assert run_cli(monkeypatch, "rank", EXAMPLE, "-o", out, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and option in err, err
    assert not out.exists()  # no run folder, no verdict asked
