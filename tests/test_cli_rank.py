"""``referee rank`` as a user runs it: a child process, the example file, the small real judge."""

from __future__ import annotations

import json
import subprocess

from conftest import EXAMPLE, referee_cmd


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
