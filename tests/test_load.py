"""Loading candidates: formats, metadata, and one clear error per kind of bad input."""

from __future__ import annotations

import subprocess

import pytest

from referee.errors import InputError, MissingCandidatesError
from referee.load import load_candidates

from conftest import DATA, EXAMPLE, referee_cmd, write_jsonl

BAD = DATA / "bad_inputs"


def test_example_loads_with_metadata():
    cs = load_candidates(EXAMPLE)
    assert len(cs.prompts) == 24
    assert cs.systems == ["concise-expert", "rambling", "careless"]
    assert cs.missing() == []
    c = cs.get("q01", "rambling")
    assert c.metadata == {"category": "facts"}
    assert c.source.endswith("candidates.jsonl:2")


def test_csv_and_jsonl_give_the_same_set(tmp_path):
    import csv

    cs = load_candidates(EXAMPLE)
    path = tmp_path / "c.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, ["prompt_id", "prompt", "system", "output", "category"])
        w.writeheader()
        for c in cs.candidates.values():
            w.writerow({"prompt_id": c.prompt_id, "prompt": cs.prompts[c.prompt_id].text, "system": c.system,
                        "output": c.output, "category": c.metadata["category"]})
    assert load_candidates(path).fingerprint() == cs.fingerprint()


def test_alpaca_style_folder_matches_prompts_by_text():
    cs = load_candidates(BAD / "alpaca_folder")
    assert cs.systems == ["model_x", "model_y"]
    assert len(cs.prompts) == 3 and cs.missing() == []
    assert all("dataset" in c.metadata for c in cs.candidates.values())


def test_empty_output_is_a_legal_candidate():
    cs = load_candidates(BAD / "empty_output.jsonl")
    assert cs.get("p1", "b").output == ""


@pytest.mark.parametrize("name, line, field, words", [
    ("malformed_json.jsonl", 3, None, "malformed JSON"),
    ("missing_output.jsonl", 2, "output", "missing field"),
    ("duplicate.jsonl", 4, None, "first at"),
    ("bad.csv", 2, "output", "missing field"),
])
def test_bad_input_names_file_line_and_field(name, line, field, words):
    with pytest.raises(InputError) as err:
        load_candidates(BAD / name)
    e = err.value
    assert e.path.endswith(name) and e.line == line and e.field == field
    assert words in str(e) and f"{name}:{line}" in str(e)
    if name == "duplicate.jsonl":
        assert "duplicate.jsonl:1" in str(e)


def test_missing_outputs_are_named_and_allowed_on_request():
    with pytest.raises(MissingCandidatesError) as err:
        load_candidates(BAD / "missing_system_outputs.jsonl")
    assert err.value.missing == [("p2", "b")]
    assert "system 'b'" in str(err.value) and "p2" in str(err.value) and "--allow-missing" in str(err.value)
    cs = load_candidates(BAD / "missing_system_outputs.jsonl", allow_missing=True)
    assert cs.systems_for("p2") == ["a"]


def test_other_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_candidates(tmp_path / "nope.jsonl")
    p = write_jsonl(tmp_path / "x.jsonl", [{"prompt_id": "1", "prompt": "q", "system": "a", "output": None}])
    with pytest.raises(InputError, match=r"x.jsonl:1 \[field 'output'\]: expected a string"):
        load_candidates(p)
    p = write_jsonl(tmp_path / "y.jsonl", [{"prompt_id": "1", "prompt": "q", "system": "a", "output": "o"},
                                          {"prompt_id": "1", "prompt": "other q", "system": "b", "output": "o"}])
    with pytest.raises(InputError, match="different prompt text"):
        load_candidates(p)
    (tmp_path / "z.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported file type"):
        load_candidates(tmp_path / "z.txt")
    unreadable = tmp_path / "u.jsonl"
    unreadable.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError):
        load_candidates(unreadable)


@pytest.mark.parametrize("name, needle", [
    ("malformed_json.jsonl", "malformed_json.jsonl:3"),
    ("missing_system_outputs.jsonl", "--allow-missing"),
])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, name, needle, child_env):
    out = tmp_path / "run"
    r = subprocess.run(referee_cmd("rank", str(BAD / name), "-o", str(out), "--judge", "smollm2-135m"),
                       capture_output=True, text=True, env=child_env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
