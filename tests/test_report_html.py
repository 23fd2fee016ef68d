"""The HTML report builder, without a browser: escaping, size, sections and toggles.

Run folders come from :func:`report_helpers.make_run` (real store and rating, synthetic verdicts).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re

import pytest
from typer.testing import CliRunner

from referee.cli import app
from referee.errors import InputError
from referee.report import build_report, write_html_report

from report_helpers import CRITIQUE, EVIL_SYSTEM, PAYLOAD, make_run, read_json
from referee.outcomes import judge_outcomes

SCRIPT_RE = re.compile(r"<script\b[^>]*>(.*?)</script>", re.S | re.I)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("report") / "run", pointwise=True)


@pytest.fixture(scope="module")
def page(run):
    return write_html_report(run).read_text(encoding="utf-8")


def test_default_path_and_size(run, page):
    path = run / "report.html"
    assert path.is_file()
    size = path.stat().st_size
    # plotly.js inlined (~4.8 MB) plus the run: well under the 10 MB the issue allows
    assert 3_000_000 < size < 10_000_000
    assert "This file is" not in page  # no size note below the limit


def test_untrusted_text_is_escaped_everywhere(page):
    scripts = SCRIPT_RE.findall(page)
    assert len(scripts) == 3 == page.lower().count("<script")  # plotly, plot data, app: nothing else
    assert "__referee_pwned" not in "".join(scripts[1:])
    assert PAYLOAD not in page
    assert "<img src=x" not in page
    assert html.escape("<script>window.__referee_pwned = true;</script>", quote=False) in page
    # the system name with markup is text in the tables and a literal in plot labels
    assert EVIL_SYSTEM not in page
    assert html.escape(EVIL_SYSTEM) in page
    # plot data: plotly reads HTML in labels, so names are entity-escaped inside the JSON
    data = scripts[1]
    assert "<" not in data and ">" not in data and "&" not in data.replace("\\u0026", "")
    blob = json.loads(data[data.index("=") + 1:].rstrip().rstrip(";"))
    labels = blob["heatmap"]["data"][0]["x"]
    assert html.escape(EVIL_SYSTEM, quote=False) in labels
    # a template expression inside a candidate is shown, not evaluated
    assert "{{ 7 * 7 }}" in page


def test_content_security_policy_allows_only_the_page_scripts(page):
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    for body in SCRIPT_RE.findall(page):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    # nothing refers to the network
    markup = SCRIPT_RE.sub("", page)  # plotly.js has URLs in its strings; they are never fetched
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup, re.I)
    assert "<link" not in markup.lower() and "@import" not in markup and "url(" not in markup


def test_header_shows_provenance_and_counts(page):
    for text in ("Synthetic Judge", "pw-synthetic0000001", "abababababababab", "cdcdcdcdcdcdcdcd", "temperature 0.0",
                 "round-robin", "every pair judged", "unparseable", "bootstrap"):
        assert text in page, text


def test_leaderboard_ties_and_style_toggle(run):
    ctx = build_report(run)
    board = read_json(run / "leaderboard.json")["leaderboard"]
    assert [r["system"] for r in ctx["rows"]] == [r["system"] for r in board]
    top = {r["system"]: r for r in ctx["rows"]}
    # alpha and the evil system are close: their intervals overlap, both can claim rank 1
    assert EVIL_SYSTEM in top["alpha"]["tied_with"] and top["alpha"]["rank_min"] == 1
    assert top["delta"]["tied_with"] == [] or "alpha" not in top["delta"]["tied_with"]
    # lengths vary and the judge likes length: a style-controlled table and its toggle exist
    assert ctx["style_rows"] and {e["covariate"] for e in ctx["effects"]} == {"length"}
    assert ctx["effects"][0]["coef"] > 0
    assert {"forest_raw", "forest_style", "heatmap", "style_effects"} <= set(ctx["plots"])
    assert "settling" not in ctx["plots"]  # not an adaptive plan
    page = write_html_report(run).read_text(encoding="utf-8")
    assert 'data-view="style"' in page and 'data-view-panel="style"' in page
    assert 'data-plot="forest_style"' in page


def test_no_style_toggle_when_answers_do_not_differ_in_style(tmp_path):
    run = make_run(tmp_path / "flat", vary_length=False, n_prompts=4)
    ctx = build_report(run)
    assert ctx["style_rows"] is None and "style" in ctx["style_reason"]
    page = write_html_report(run).read_text(encoding="utf-8")
    assert 'data-view="style"' not in page
    assert "No style-controlled ratings" in page


def test_win_rate_matrix_matches_the_rate_stage(run):
    from referee.rate import count_matrix, win_rate_matrix
    from referee.store import VerdictStore

    ctx = build_report(run)
    fig = ctx["plots"]["heatmap"]["data"][0]
    systems = ctx["systems"]
    with VerdictStore.open(run / "verdicts.sqlite") as store:
        outs = judge_outcomes(store, judge_id=ctx["judge_id"])
    idx = {s: i for i, s in enumerate(systems)}
    a = [idx[o.system_a] for o in outs]
    b = [idx[o.system_b] for o in outs]
    W = win_rate_matrix(a, b, [o.p_a for o in outs], len(systems))
    C = count_matrix(a, b, len(systems))
    assert fig["z"][0][1] == pytest.approx(100 * W[0, 1], abs=0.05)
    assert f"{int(C[0, 1])} comparisons" in fig["hovertext"][0][1]
    assert fig["z"][0][0] is None


def test_explorer_has_every_prompt_both_orders_and_highlighted_spans(run):
    ctx = build_report(run)
    assert [p["id"] for p in ctx["prompts"]] == [f"p{i:02d}" for i in range(8)]
    p1 = next(p for p in ctx["prompts"] if p["id"] == "p01")
    assert len(p1["candidates"]) == 4 and len(p1["pairs"]) == 6
    assert all(len(pr["orders"]) == 2 for pr in p1["pairs"])
    evil = next(c for c in p1["candidates"] if c["system"] == EVIL_SYSTEM)
    # the quoted span is marked, and both the span and the rest stay escaped
    assert '<mark class="span" title="major unsafe: markup &lt;em&gt;injected&lt;/em&gt;">&lt;img src=x onerror=</mark>' \
        in str(evil["html"])
    assert "<script" not in str(evil["html"])
    assert p1["others"] and p1["others"][0]["mode"] == "pointwise"
    p3 = next(p for p in ctx["prompts"] if p["id"] == "p03")
    assert p3["n_bad"] == 1
    p2 = next(p for p in ctx["prompts"] if p["id"] == "p02")
    assert any(c["truncated"] for c in p2["candidates"])
    assert ctx["categories"] == ["even", "odd"]
    p0 = next(p for p in ctx["prompts"] if p["id"] == "p00")
    crit = [c for pr in p0["pairs"] for c in pr["critiques"]]
    assert crit == [{"order": "alpha → gamma", "text": CRITIQUE}]
    page = write_html_report(run).read_text(encoding="utf-8")
    assert html.escape(CRITIQUE, quote=False) in page and CRITIQUE not in page


def test_several_judges_agreement_and_adaptive_settling(tmp_path):
    run = make_run(tmp_path / "multi", second_judge=True, plan="adaptive", n_prompts=6)
    ctx = build_report(run)
    multi = ctx["multi"]
    assert multi is not None and len(multi["names"]) == 2
    assert multi["agree"][0][0]["agree"] == 1.0 and 0.5 < multi["agree"][0][1]["agree"] <= 1.0
    assert multi["agree"][0][1]["n"] == 36
    assert multi["ensembles"] == []  # two judges: accuracies are not identifiable, none shown
    assert "settling" in ctx["plots"]
    xs = ctx["plots"]["settling"]["data"][0]["x"]
    assert xs == sorted(xs) and xs[-1] == 36
    page = write_html_report(run, tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert "Agreement between judges" in page and "How the ranking settled" in page


def test_report_without_run_json_still_renders(tmp_path):
    run = make_run(tmp_path / "bare", n_prompts=4)
    for name in ("run.json", "leaderboard.json"):
        (run / name).unlink()
    ctx = build_report(run)
    assert len(ctx["rows"]) == 4 and ctx["rating"]["ci"] == "sandwich"
    assert write_html_report(run).stat().st_size > 1_000_000


def test_not_a_run_folder(tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        write_html_report(tmp_path)


def test_cli_report(run, tmp_path):
    out = tmp_path / "shared" / "report.html"
    res = CliRunner().invoke(app, ["report", str(run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "no network needed" in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code != 0


def test_store_without_usable_verdicts_still_renders(tmp_path):
    import sqlite3

    run = make_run(tmp_path / "bad", n_prompts=3)
    for name in ("run.json", "leaderboard.json"):
        (run / name).unlink()
    with sqlite3.connect(run / "verdicts.sqlite") as db:
        db.execute("UPDATE verdicts SET status='unparseable', p_first=NULL")
    ctx = build_report(run)
    assert ctx["rows"] == [] and ctx["plots"] == {} and len(ctx["systems"]) == 4
    assert ctx["verdicts"]["unparseable"] == 36 and all(p["n_bad"] == 12 for p in ctx["prompts"])
    page = write_html_report(run).read_text(encoding="utf-8")
    assert "No ratings" in page and 'data-plot="heatmap"' not in page


def test_stored_ensemble_accuracies_are_shown(tmp_path):
    run = make_run(tmp_path / "ens", second_judge=True, ensemble=True, n_prompts=4)
    multi = build_report(run)["multi"]
    assert multi["ids"][-1].startswith("ens-") and len(multi["ids"]) == 3
    assert multi["agree"][0][2]["agree"] == 1.0  # the ensemble here is the first judge's own verdicts
    (ens,) = multi["ensembles"]
    assert [m["accuracy"] for m in ens["members"]] == [0.81, None]
    assert ens["members"][1]["kept"] is False and ens["note"] == "a <note>"
    page = write_html_report(run).read_text(encoding="utf-8")
    assert "81.0%" in page and "duplicate of &lt;b&gt;x&lt;/b&gt;" in page and "a &lt;note&gt;" in page


def test_three_judges_without_a_stored_ensemble_get_one_fitted(tmp_path, monkeypatch):
    import referee.report._html as H

    run = make_run(tmp_path / "three", second_judge=True, n_prompts=4)
    real = H._judge_outcomes

    def triple(verdicts, jid):  # a third judge: the second one's verdicts again, under another id
        if jid == "pw-synthetic0000003":
            return real(verdicts, "pw-synthetic0000002")
        return real(verdicts, jid)

    monkeypatch.setattr(H, "_judge_outcomes", triple)
    from referee.store import VerdictStore
    with VerdictStore(run / "verdicts.sqlite") as st:
        st.register_judge("pw-synthetic0000003", {"backend": {"model_name": "Third"}})
    (ens,) = build_report(run)["multi"]["ensembles"]
    assert ens["name"] == "fitted for this report" and len(ens["members"]) == 3


def test_pointwise_judge_run_rates_from_scores_and_marks_spans(tmp_path):
    from referee.load import Candidate, Prompt
    from referee.store import Verdict, VerdictStore, question_key, verdict_id

    run = tmp_path / "pointwise"
    prompts = [Prompt(id=f"p{i}", text=f"q{i}") for i in range(4)]
    cands = [Candidate(prompt_id=p.id, system=s, output=f"{s} answer {p.id} " + "x" * (10 * j))
             for p in prompts for j, s in enumerate("abc")]
    with VerdictStore(run / "verdicts.sqlite") as st:
        st.register_judge("pt-1", {"mode": "pointwise", "backend": {"model_name": "Rubric"}})
        st.put_candidates(prompts, cands)
        for n, c in enumerate(cands):
            q = question_key("pt-1", "pointwise", c.prompt_id, [c.output])
            st.put(Verdict(verdict_id=verdict_id(q, c.prompt_id, [c.system]), question=q, judge_id="pt-1",
                           mode="pointwise", prompt_id=c.prompt_id, systems=[c.system], status="ok",
                           score=float(1 + (n * 7) % 5), raw="{}",
                           detail={"diagnoses": [{"type": "factual", "span": "answer", "severity": "minor",
                                                  "explanation": "vague <i>"}], "truncated": [False, False]}))
    ctx = build_report(run)
    assert len(ctx["rows"]) == 3 and "heatmap" in ctx["plots"]
    p0 = ctx["prompts"][0]
    assert [o["mode"] for o in p0["others"]] == ["pointwise"] * 3
    assert p0["others"][0]["diagnoses"] == ["minor factual: vague <i> — “answer”"]
    assert all('<mark class="span" title="minor factual: vague &lt;i&gt;">answer</mark>' in str(c["html"])
               for c in p0["candidates"])
    assert write_html_report(run).is_file()


def test_overlapping_intervals_are_not_called_ties(run, page):
    # Overlapping intervals do not separate two systems; they do not show them equal.
    md = (run / "leaderboard.md").read_text(encoding="utf-8")
    for text in (page, md):
        assert "statistically tied" not in text
    assert "intervals overlap with:" in page and "not evidence that they are equal" in page
    assert "not that the systems are equal" in md
