"""``referee simulate``: the command runs plans on a simulated judge and reports them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from referee.cli import app
from referee.errors import InputError


def write_pairs(path, n_systems=4, n_prompts=30):
    with path.open("w") as f:
        for s in range(n_systems):
            for p in range(n_prompts):
                pb = ((s + 1) * (p % 7 + 1) % 10) / 10
                f.write(json.dumps({"instruction_id": p, "model_a": "base", "model_b": f"m{s}",
                                    "annotator": "A", "p_b_wins": pb}) + "\n")


def test_json_report(tmp_path):
    f = tmp_path / "pairs.jsonl"
    write_pairs(f)
    r = CliRunner().invoke(app, ["simulate", str(f), "--seeds", "2", "--budget", "40", "--json",
                                 "--plan", "round-robin", "--plan", "adaptive", "--until", "separated",
                                 "--plan", "baseline", "--with-baseline"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["systems"] == 5 and out["prompts"] == 30 and out["round_robin_judge_calls"] == 600
    assert set(out["plans"]) == {"round-robin", "adaptive", "baseline"}
    for plan in out["plans"].values():
        assert plan["judge_calls"]["mean"] <= 80
        assert -1 <= plan["spearman"]["mean"] <= 1
    assert out["plans"]["adaptive"]["stop_reason"]


def test_table_and_synthetic(tmp_path):
    f = tmp_path / "pairs.jsonl"
    write_pairs(f)
    r = CliRunner().invoke(app, ["simulate", str(f), "--seeds", "1", "--synthetic", "6", "--plan", "tournament"])
    assert r.exit_code == 0, r.output
    assert "6 systems x 30 prompts" in r.output and "every bracket finished" in r.output


def test_bad_input_is_an_input_error(tmp_path):
    f = tmp_path / "pairs.jsonl"
    write_pairs(f)
    runner = CliRunner()
    r = runner.invoke(app, ["simulate", str(f), "--plan", "nope"])
    assert isinstance(r.exception, InputError) and "unknown plan 'nope'" in str(r.exception)
    r = runner.invoke(app, ["simulate", str(f), "--plan", "baseline"])
    assert isinstance(r.exception, InputError) and "needs a baseline" in str(r.exception)
    r = runner.invoke(app, ["simulate", str(tmp_path / "missing.jsonl")])
    assert isinstance(r.exception, InputError) and "cannot read" in str(r.exception)
