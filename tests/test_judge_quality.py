"""Quality of the default judge (real Qwen2.5-Coder-1.5B through llama.cpp) on clear-cut pairs.

Each case is judged in both orders and the two are averaged, as ``referee rank`` does. The
cases were written by the project (tests/data/clear_cut_pairs.jsonl); in about half of them the
worse answer is the longer one, so a length-biased judge cannot pass.
"""

from __future__ import annotations

import json

import pytest

from conftest import DATA

CASES = [json.loads(line) for line in (DATA / "clear_cut_pairs.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def verdicts(qwen_judge):
    out = {}
    for c in CASES:
        good_first = qwen_judge.judge(c["prompt"], c["good"], c["bad"])
        bad_first = qwen_judge.judge(c["prompt"], c["bad"], c["good"])
        out[c["id"]] = (good_first, bad_first)
    return out


def test_there_are_enough_clear_cut_cases():
    assert len(CASES) >= 20
    assert sum(len(c["bad"]) > len(c["good"]) for c in CASES) >= len(CASES) // 3


def test_debiased_accuracy_on_clear_cut_pairs(verdicts):
    ok = {k: v for k, v in verdicts.items() if v[0].status == "ok" and v[1].status == "ok"}
    assert len(ok) >= 0.9 * len(CASES), {k: (v[0].error, v[1].error) for k, v in verdicts.items()}
    p_good = {k: (g.p_first + (1 - b.p_first)) / 2 for k, (g, b) in ok.items()}
    correct = sum(p > 0.5 for p in p_good.values())
    wrong = sorted(k for k, p in p_good.items() if p <= 0.5)
    # unparseable verdicts count as failures: accuracy is over all cases, not only the usable ones
    assert correct / len(CASES) >= 0.9, f"debiased accuracy {correct}/{len(CASES)}; wrong: {wrong}"


def test_single_order_verdicts_are_mostly_right(verdicts):
    # Each order on its own must already be informative; averaging the two removes position bias
    # but cannot rescue a judge that is near chance in either order.
    single = sum(g.p_first > 0.5 for g, _ in verdicts.values() if g.status == "ok")
    swapped = sum(b.p_first < 0.5 for _, b in verdicts.values() if b.status == "ok")
    assert single + swapped >= 0.8 * 2 * len(CASES)
