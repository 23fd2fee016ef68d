"""A real run store from the real SmolLM2 judge (2 prompts, 8 verdicts): audit, combine, export, select.

SmolLM2 picks by position, so it is useless as a judge but a good check of the position filter:
its pairs are position-inconsistent, and export leaves them out unless asked.
"""

from __future__ import annotations

import json

from conftest import EXAMPLE, run_cli as run
from referee._pipeline import RankOptions, rank


def test_real_store_audit_combine_export(tmp_path, monkeypatch, capsys, smol_judge):
    rows = [json.loads(t) for t in EXAMPLE.read_text().splitlines()]
    keep = sorted({r["prompt_id"] for r in rows})[:2]
    src = tmp_path / "cands.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows if r["prompt_id"] in keep))
    res = rank(RankOptions(candidates=[src], output=tmp_path / "run", plan="baseline", baseline="concise-expert",
                           n_boot=20, n_ctx=2048), judge=smol_judge)
    run_dir = res.out_dir

    assert run(monkeypatch, "audit", run_dir, "--n-boot", 20, "-o", tmp_path / "a.json") == 0
    [rep] = json.loads((tmp_path / "a.json").read_text())
    m = {x["name"]: x for x in rep["metrics"]}
    assert m["position consistency"]["n"] == 4 and m["position consistency"]["value"] is not None

    assert run(monkeypatch, "combine", run_dir, "--summary") == 0
    assert "one usable verifier" in capsys.readouterr().out

    out = tmp_path / "dpo.jsonl"
    assert run(monkeypatch, "export", run_dir, "-o", out) == 0
    said = capsys.readouterr().out
    strict = [json.loads(t) for t in out.read_text().splitlines()]
    assert all(r["consistent"] is not False for r in strict)
    if m["position consistency"]["value"] < 1:
        assert "position-inconsistent" in said
    assert run(monkeypatch, "export", run_dir, "-o", out, "--keep-inconsistent") == 0
    loose = [json.loads(t) for t in out.read_text().splitlines()]
    assert len(loose) >= len(strict)
    for r in loose:
        assert r["prompt"] and r["chosen"] != r["rejected"] and len(r["verdict_ids"]) == 2

    assert run(monkeypatch, "select", run_dir, "-o", tmp_path / "pick.jsonl") == 0
    picks = [json.loads(t) for t in (tmp_path / "pick.jsonl").read_text().splitlines()]
    assert len(picks) == 2 and all(p["n_candidates"] == 3 and 0 <= p["p_best"] <= 1 for p in picks)
