"""Fuzz every verdict parser: no input crashes one, and nothing unparseable becomes a valid verdict.

Each property pairs the parser with an independent check of what a valid answer is, and valid
answers built by hypothesis must parse to exactly what they say.
"""

from __future__ import annotations

import json
import math
import re

from hypothesis import HealthCheck, example, given, settings, strategies as st

from referee.backends._openai import Generation, ServerResponseError, _generation, read_choice_probs
from referee.backends._replay import _record
from referee.errors import InputError
from referee.judge import parse_pairwise_verdict, parse_permutation, parse_rubric
from referee.judge._custom import DEFAULT_SCORE_PATTERN, parse_score

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAXONOMY = ("factual error", "incomplete", "other")
SCALE = (1, 10)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=25)
noise = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=80)
verdicty = st.lists(st.sampled_from(["[[A]]", "[[B]]", "[[TIE]]", "[[a]]", "[[C]]", "A", "B", "Tie", "Response",
                                     "The better response is", " ", "\n", ".", "**", "[[", "]]", "[[X]]"]),
                    max_size=8).map("".join)


# -- generated pairwise verdicts -------------------------------------------------------------

@FUZZ
@given(st.one_of(noise, verdicty, st.tuples(noise, verdicty, noise).map("".join)))
@example("RESPONSEA")  # once read as "Response A"
def test_pairwise_verdict_parser(text):
    got = parse_pairwise_verdict(text)
    assert got in (None, "first", "second", "tie")
    tags = {t.upper() for t in re.findall(r"\[\[\s*([A-Za-z]+)\s*\]\]", text)}
    if got is None:
        return
    if tags:  # exactly one kind of tag, and it is the one returned
        assert len(tags) == 1
        assert {"first": {"A"}, "second": {"B"}, "tie": {"TIE", "C"}}[got] >= tags
    else:  # a bare answer: nothing but the letter (and a few fixed words)
        words = re.findall(r"[A-Za-z]+", text)
        letter = {"first": "A", "second": "B", "tie": None}[got]
        assert words and set(w.lower() for w in words[:-1]) <= {"the", "better", "response", "answer", "verdict", "is"}
        assert letter is None or words[-1].upper() == letter


@FUZZ
@given(noise.filter(lambda s: "[[" not in s and "]]" not in s), st.sampled_from(["A", "B", "TIE"]), noise.filter(
    lambda s: "[[" not in s and "]]" not in s))
def test_one_tag_in_prose_parses(before, tag, after):
    assert parse_pairwise_verdict(f"{before}[[{tag}]]{after}") == {"A": "first", "B": "second", "TIE": "tie"}[tag]
    assert parse_pairwise_verdict(f"{before}[[A]]{after}[[B]]") is None


# -- rubric JSON -----------------------------------------------------------------------------

diagnosis = st.fixed_dictionaries({"type": st.sampled_from(TAXONOMY), "span": st.text(max_size=10),
                                   "severity": st.sampled_from(["minor", "major"]), "explanation": st.text(max_size=10)})
valid_rubric = st.fixed_dictionaries({"diagnoses": st.lists(diagnosis, max_size=3),
                                      "score": st.integers(*SCALE) | st.floats(*SCALE)})


def mutate(d):
    return st.one_of(
        st.just(json.dumps(d)[:-1]),  # truncated
        st.sampled_from(list(d)).map(lambda k: json.dumps({x: v for x, v in d.items() if x != k})),  # missing key
        json_values.map(lambda v: json.dumps({**d, "score": v}, allow_nan=True)),
        json_values.map(lambda v: json.dumps({**d, "diagnoses": v}, allow_nan=True)),
        st.text(min_size=1, max_size=8).filter(lambda k: k not in d).map(lambda k: json.dumps({**d, k: 1})),
        json_values.map(lambda v: json.dumps({**d, "diagnoses": [{**(d["diagnoses"] or [{}])[0], "type": v}]},
                                             allow_nan=True)),
    )


def independently_valid(text):
    m = re.match(r"^\s*```(?:json)?\s*\n?(.*?)\n?```\s*$", text, re.DOTALL)
    data = json.loads(m.group(1) if m else text)
    assert isinstance(data, dict) and set(data) == {"diagnoses", "score"}
    s = data["score"]
    assert type(s) in (int, float) and math.isfinite(s) and SCALE[0] <= s <= SCALE[1]
    assert isinstance(data["diagnoses"], list)
    for d in data["diagnoses"]:
        assert isinstance(d, dict) and set(d) == {"type", "span", "severity", "explanation"}
        assert d["type"] in TAXONOMY and d["severity"] in ("minor", "major")
        assert isinstance(d["span"], str) and isinstance(d["explanation"], str)
    return data


@FUZZ
@given(st.one_of(noise, json_values.map(lambda v: json.dumps(v, allow_nan=True)), valid_rubric.flatmap(mutate)))
def test_rubric_parser_never_validates_garbage(text):
    out, why = parse_rubric(text, SCALE, TAXONOMY)
    assert (out is None) != (why is None)
    if out is not None:
        data = independently_valid(text)
        assert float(out.score) == float(data["score"])


@FUZZ
@given(valid_rubric, st.booleans())
def test_valid_rubric_parses(d, fenced):
    text = json.dumps(d)
    out, why = parse_rubric(f"```json\n{text}\n```" if fenced else text, SCALE, TAXONOMY)
    assert why is None and float(out.score) == float(d["score"]) and len(out.diagnoses) == len(d["diagnoses"])


# -- listwise permutations -------------------------------------------------------------------------

@FUZZ
@given(st.integers(1, 7), st.one_of(noise, json_values.map(lambda v: json.dumps(v, allow_nan=True)),
                                    st.lists(st.integers(-2, 9), max_size=9).map(lambda xs: " > ".join(map(str, xs))),
                                    st.lists(st.integers(-2, 9), max_size=9).map(lambda xs: json.dumps({"ranking": xs}))))
def test_permutation_parser(k, text):
    got = parse_permutation(text, k)
    if got is None:
        return
    assert sorted(got) == list(range(k))
    assert [int(x) for x in re.findall(r"-?\d+", text)] == [g + 1 for g in got]


@FUZZ
@given(st.integers(1, 8).flatmap(lambda k: st.tuples(st.just(k), st.permutations(range(1, k + 1)))),
       st.sampled_from(["json", "list", "arrows", "brackets", "commas"]))
def test_valid_permutations_parse(kp, form):
    k, perm = kp
    text = {"json": json.dumps({"ranking": perm}), "list": json.dumps(perm), "arrows": " > ".join(map(str, perm)),
            "brackets": " > ".join(f"[{p}]" for p in perm), "commas": ", ".join(map(str, perm))}[form]
    assert parse_permutation(text, k) == [p - 1 for p in perm]
    if k > 1:
        assert parse_permutation(text, k - 1) is None and parse_permutation(text, k + 1) is None


# -- custom-template scores ----------------------------------------------------------------------

@FUZZ
@given(st.one_of(noise, st.tuples(noise, st.sampled_from(["Score: ", "score=", "SCORE : "]),
                                  st.floats(allow_nan=True).map(str) | st.integers(-5, 20).map(str), noise).map("".join)))
def test_score_parser(text):
    got = parse_score(text, DEFAULT_SCORE_PATTERN, 1, 10)
    if got is not None:
        assert 1 <= got <= 10
        found = {float(m) for m in re.findall(r"(?i)score\s*[:=]\s*(-?\d+(?:\.\d+)?)", text)}
        assert found == {got}


# -- server replies and logprobs -------------------------------------------------------------------

logprob_steps = st.lists(st.one_of(json_values, st.fixed_dictionaries({
    "token": st.sampled_from(["A", " A", "B", " B", "The", "A.", ""]) | json_values,
    "top_logprobs": st.lists(st.one_of(json_values, st.fixed_dictionaries({
        "token": st.sampled_from(["A", " A", "B", " B", "x"]) | json_values,
        "logprob": st.floats(allow_nan=True) | st.integers(-1000, 1000) | json_values})), max_size=6) | json_values})),
    max_size=4)


@FUZZ
@given(logprob_steps)
def test_choice_probs_from_any_logprobs(steps):
    res = read_choice_probs(Generation(text="", logprobs=steps), ("A", "B"), 0.0)
    for c in ("A", "B"):
        assert 0.0 <= res.probs[c] <= 1.0 and math.isfinite(res.probs[c])


@FUZZ
@given(json_values)
def test_server_reply_parser(data):
    try:
        g = _generation(data, 0.0)
    except ServerResponseError:
        return
    assert isinstance(g.text, str) and g.prompt_tokens >= 0 and g.completion_tokens >= 0


@FUZZ
@given(st.dictionaries(st.sampled_from(["instruction_id", "model_a", "model_b", "p_b_wins", "preference",
                                        "annotator", "prompt_id", "system_a", "system_b", "p_a"]), json_values,
                       max_size=8))
def test_replay_record_parser(row):
    try:
        rec = _record(row, 1, "x.jsonl")
    except InputError:
        return
    if rec is not None:
        assert 0.0 <= rec[3] <= 1.0


@settings(max_examples=30, deadline=2000)
@given(st.sampled_from(["A", "1", "Response", "[[A]]", "{"]), st.sampled_from([" ", "\t", " .", " >", "*"]),
       st.integers(500, 5000), st.sampled_from(["x", "", "B", "2"]))
def test_parsers_stay_fast_on_long_repetitive_input(head, unit, n, tail):
    text = head + unit * n + tail  # catastrophic backtracking would take seconds here
    parse_pairwise_verdict(text)
    parse_permutation(text, 2)
    parse_rubric(text, SCALE, TAXONOMY)
    parse_score(text, DEFAULT_SCORE_PATTERN, 1, 10)
