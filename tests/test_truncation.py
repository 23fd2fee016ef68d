"""Fitting questions and candidates into a judge's context, with the real SmolLM2 tokenizer and model.

A 512-token context makes every cut easy to reach; what matters is which text keeps what, what the
marker says, and that the prompt still fits.
"""

from __future__ import annotations

import pytest

from referee.backends import LlamaCppBackend
from referee.judge import (QUESTION_TRUNCATION_MARKER, REFERENCE_TRUNCATION_MARKER, TRUNCATION_MARKER,
                           PairwiseLogprobJudge, YesProbabilityJudge)
from referee.judge._common import fit_texts

HEAD = "Here is a log from our build server, followed by what I need from you."
TAIL = "Given that log, name the step that failed first."
FILLER = "step ok: compiled module number seven without warnings. " * 120


@pytest.fixture(scope="module")
def small():
    """SmolLM2 with a 512-token context."""
    return LlamaCppBackend("smollm2-135m", n_ctx=512)


def test_a_long_question_keeps_its_head_and_its_tail(small):
    judge = PairwiseLogprobJudge(small)
    question = f"{HEAD}\n{FILLER}\n{TAIL}"
    q, first, second, cut = judge._fit(question, "The link step.", "The test step.")
    assert cut == [True, False, False] and (first, second) == ("The link step.", "The test step.")
    assert q.startswith(HEAD) and q.endswith(TAIL)
    assert QUESTION_TRUNCATION_MARKER in q and TRUNCATION_MARKER not in q
    assert "question" in QUESTION_TRUNCATION_MARKER and "response" not in QUESTION_TRUNCATION_MARKER
    assert small.count_tokens(q) <= small.context_size // 4
    # the judge is shown the instruction at the end, and the prompt fits
    prompt = small.render(judge.messages(q, first, second), judge.template.prefill)
    assert TAIL in prompt
    ans = judge.judge(question, "The link step.", "The test step.")
    assert ans.status != "error" and ans.prompt_tokens < small.context_size, ans.error
    assert ans.detail["truncated"] == [True, False, False]


def test_a_short_candidate_leaves_its_budget_to_the_long_one(small):
    judge = PairwiseLogprobJudge(small)
    long = "The answer depends on many things. " * 300
    left = small.context_size - judge._frame_tokens - small.count_tokens("Explain.")
    q, short, fitted, cut = judge._fit("Explain.", "No.", long)
    assert cut == [False, False, True] and short == "No." and fitted.endswith(TRUNCATION_MARKER)
    # all that "No." does not use goes to the long answer (within a token or two of the seam)
    assert small.count_tokens(fitted) >= left - small.count_tokens("No.") - 2
    assert small.count_tokens(fitted) > left // 2 + 100
    ans = judge.judge("Explain.", "No.", long)
    assert ans.status != "error" and ans.prompt_tokens < small.context_size, ans.error
    # two long answers split the budget evenly, in either order
    _, a, b, cut2 = judge._fit("Explain.", long, long + " ")
    assert cut2 == [False, True, True] and abs(small.count_tokens(a) - small.count_tokens(b)) <= 2
    assert small.count_tokens(a) + small.count_tokens(b) <= left


def test_the_default_cap_follows_the_context_and_keeps_old_ids(smol_judge):
    # up to 4096 tokens of context the cap is the 1536 it always was: same spec, same judge id
    assert smol_judge.backend.context_size == 2048 and smol_judge.max_candidate_tokens == 1536
    assert smol_judge.judge_id == PairwiseLogprobJudge(smol_judge.backend, max_candidate_tokens=1536).judge_id
    big = LlamaCppBackend("smollm2-135m", n_ctx=8192)
    judge = PairwiseLogprobJudge(big)
    assert judge.max_candidate_tokens == judge.spec["max_candidate_tokens"] == 3072
    answer = "A careful, detailed answer. " * 400
    n = big.count_tokens(answer)
    assert 1536 < n < 3072
    _, first, second, cut = judge._fit("Explain.", answer, "Short.")
    assert cut == [False, False, False] and first == answer  # a fixed 1536 cap would have cut it
    assert PairwiseLogprobJudge(big, max_candidate_tokens=1000)._fit("Explain.", answer, "x")[3] == \
        [False, True, False]


def test_a_cut_reference_says_it_is_the_reference(small):
    reference = "The reference solution walks through each case. " * 200
    q, (resp, ref), cut = fit_texts(small, 150, "Solve it.", ["It is 4.", reference], 1536,
                                    ["response", "reference"])
    assert cut == [False, False, True] and resp == "It is 4."
    assert ref.endswith(REFERENCE_TRUNCATION_MARKER) and TRUNCATION_MARKER not in ref
    judge = YesProbabilityJudge(small)
    ans = judge.score("Solve it.", "It is 4.", reference)
    assert ans.status != "error" and ans.prompt_tokens < small.context_size, ans.error


def test_a_question_cut_over_http_keeps_its_tail():
    """The HTTP backend's cut (here by its estimate, no server needed) keeps head and tail too."""
    from referee.backends import OpenAIBackend

    backend = OpenAIBackend("m", "http://127.0.0.1:9/v1", tokenizer="estimate")
    question = f"{HEAD}\n{FILLER}\n{TAIL}"
    q, was_cut = backend.truncate(question, 200, QUESTION_TRUNCATION_MARKER, tail=0.5)
    assert was_cut and q.startswith(HEAD) and q.endswith(TAIL) and QUESTION_TRUNCATION_MARKER in q
    assert backend.count_tokens(q) <= 200
    head_only, _ = backend.truncate(question, 200, TRUNCATION_MARKER)
    assert head_only.startswith(HEAD) and head_only.endswith(TRUNCATION_MARKER)
