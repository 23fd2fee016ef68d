"""Verdict logs in Parquet shards: the journal/shard store, and DuckDB aggregation equal to the Python road."""

from __future__ import annotations

import os
import random
from types import SimpleNamespace

import numpy as np
import pytest

from referee.errors import StoreError
from referee.outcomes import judge_outcomes, outcome_arrays, pair_sums
from referee.rate import rate_pair_sums, rate_pairwise
from referee.rate._graph import aggregate
from referee.store import Verdict, VerdictStore, question_key, text_hash, verdict_id

SYSTEMS = ["alpha", "beta", "gamma", "delta", "eps"]


def _texts(prompts, candidates):
    return ([SimpleNamespace(id=p, text=t, reference=None) for p, t in prompts.items()],
            [SimpleNamespace(prompt_id=p, system=s, output=o, content_hash=text_hash(o), metadata={})
             for (p, s), o in candidates.items()])


def _corpus(n_prompts=24, tag=""):
    prompts = {f"p{i}": f"question {i}" for i in range(n_prompts)}
    cands = {(p, s): f"{s} answers {p}{tag}" for p in prompts for s in SYSTEMS}
    return prompts, cands


def _pairwise(judge, pid, first, second, prompts, cands, p, status="ok"):
    outs = [cands[(pid, first)], cands[(pid, second)]]
    q = question_key(judge, "pairwise", prompts[pid], outs)
    return Verdict(verdict_id=verdict_id(q, pid, [first, second]), question=q, judge_id=judge, mode="pairwise",
                   prompt_id=pid, systems=[first, second], status=status, p_first=p if status == "ok" else None,
                   raw="x")


def _pointwise(judge, pid, system, prompts, cands, score, kind):
    q = question_key(judge, "pointwise", prompts[pid], [cands[(pid, system)]])
    return Verdict(verdict_id=verdict_id(q, pid, [system]), question=q, judge_id=judge, mode="pointwise",
                   prompt_id=pid, systems=[system], status="ok", score=score, detail={"score_kind": kind})


def _fill(store, prompts, cands, rng, judge="judge-pw"):
    """Both orders for most comparisons, one order for some, repeats, unparseable and error verdicts."""
    strength = {s: i * 0.4 for i, s in enumerate(SYSTEMS)}
    for pid in prompts:
        for i, a in enumerate(SYSTEMS):
            for b in SYSTEMS[i + 1:]:
                q = 1 / (1 + np.exp(strength[b] - strength[a]))
                r = rng.random()
                orders = [(a, b), (b, a)] if r < 0.8 else [(a, b)] if r < 0.9 else [(b, a)]
                for f, s in orders:
                    pf = float(np.clip((q if f == a else 1 - q) + 0.1 + rng.normal(0, 0.15), 0, 1))
                    store.put(_pairwise(judge, pid, f, s, prompts, cands, pf))
                if r < 0.05:  # a repeat of an order: averaged with the first
                    store.put(_pairwise(judge + "", pid, a, b, prompts, cands, 0.3).model_copy(
                        update={"verdict_id": f"repeat-{pid}-{a}-{b}"}))
                if rng.random() < 0.05:
                    store.put(_pairwise(judge, pid, b, a, prompts, cands, None, status="unparseable").model_copy(
                        update={"verdict_id": f"bad-{pid}-{a}-{b}"}))


def _python_sums(store, judge, systems):
    x = outcome_arrays(systems, judge_outcomes(store, judge))
    return x, aggregate(x.a, x.b, x.p, x.weight, len(systems))


def _assert_equal(store, judge, partition_rows=5_000_000):
    got = pair_sums(store, judge, partition_rows=partition_rows)
    try:
        x, want = _python_sums(store, judge, got.systems)
        assert got.pairs.a.tolist() == want.a.tolist() and got.pairs.b.tolist() == want.b.tolist()
        for f in ("wins", "count", "w2", "w2o", "w2o2"):
            np.testing.assert_allclose(getattr(got.pairs, f), getattr(want, f), rtol=1e-12, atol=1e-12, err_msg=f)
        assert got.n_clusters == x.n_clusters
        ours = rate_pair_sums(got.systems, got.pairs, got.n_outcomes, cluster_meat=got.cluster_meat,
                              n_clusters=got.n_clusters)
        theirs = rate_pairwise(got.systems, x.a, x.b, x.p, x.weight, ci="sandwich",
                               cluster=[o.prompt_id for o in x.outcomes])
        np.testing.assert_allclose(ours.rating, theirs.rating, atol=1e-9)
        np.testing.assert_allclose(ours.lower, theirs.lower, atol=1e-9)
        np.testing.assert_allclose(ours.upper, theirs.upper, atol=1e-9)
        assert ours.n.tolist() == theirs.n.tolist()
        np.testing.assert_allclose(ours.win_rate, theirs.win_rate, atol=1e-12)
        assert ours.rank_min.tolist() == theirs.rank_min.tolist() and ours.clustered and ours.n_clusters == 24
        return got
    finally:
        got.close()


def test_duckdb_aggregation_equals_the_python_road_across_shards_journal_and_replaced_texts(tmp_path):
    prompts, cands = _corpus()
    path = tmp_path / "run" / "verdicts.sqlite"
    rng = np.random.default_rng(3)
    with VerdictStore(path, shard_rows=150) as store:
        store.register_judge("judge-pw", {"mode": "pairwise"})
        store.put_candidates(*_texts(prompts, cands))
        _fill(store, prompts, cands, rng)
        assert len(store.shards()) >= 2 and store._journal_answers() > 0  # both sources in play
        all_clean = all(ok for _, ok in store.shards())
        got = _assert_equal(store, "judge-pw")
        _assert_equal(store, "judge-pw", partition_rows=90)  # comparisons grouped over 5 prompt ranges
        assert all_clean and got.one_order > 0 and got.position_effect == pytest.approx(0.1, abs=0.03)

        # Regenerate one system's outputs on half the prompts: its verdicts there stop counting,
        # in the shards (checked row by row now) as in the journal.
        changed = {k: v + " (v2)" for k, v in cands.items() if k[1] == "gamma" and int(k[0][1:]) % 2 == 0}
        cands2 = {**cands, **changed}
        store.put_candidates(*_texts(prompts, cands2))
        assert not any(ok for _, ok in store.shards())
        before = len(judge_outcomes(store, "judge-pw"))
        _assert_equal(store, "judge-pw")
        # ... and count again once the old texts are back.
        store.put_candidates(*_texts(prompts, cands))
        assert len(judge_outcomes(store, "judge-pw")) > before
        _assert_equal(store, "judge-pw")


def test_duckdb_pointwise_aggregation_equals_the_python_road(tmp_path):
    prompts, cands = _corpus()
    rng = random.Random(5)
    with VerdictStore(tmp_path / "verdicts.sqlite", shard_rows=50) as store:
        store.put_candidates(*_texts(prompts, cands))
        for judge, kind in (("judge-yes", "probability"), ("judge-score", "scale")):
            store.register_judge(judge, {"mode": "pointwise"})
            for pid in prompts:
                for i, s in enumerate(SYSTEMS):
                    score = min(1.0, max(0.0, i / 5 + rng.gauss(0, 0.3))) if kind == "probability" \
                        else float(rng.randint(1, 3) + (i > 2))
                    store.put(_pointwise(judge, pid, s, prompts, cands, score, kind))
        store.flush_shards()
        for judge in ("judge-yes", "judge-score"):
            _assert_equal(store, judge)


def test_sharded_store_answers_resume_questions_and_never_reasks(tmp_path):
    prompts, cands = _corpus(4)
    path = tmp_path / "verdicts.sqlite"
    with VerdictStore(path, shard_rows=5) as store:
        store.register_judge("j", {"mode": "pairwise"})
        store.put_candidates(*_texts(prompts, cands))
        vs = [_pairwise("j", p, a, b, prompts, cands, 0.7) for p in prompts for a, b in [("alpha", "beta"),
                                                                                       ("beta", "alpha")]]
        err = _pairwise("j", "p0", "alpha", "gamma", prompts, cands, None, status="error")
        for v in vs:
            assert store.put(v)
        store.put(err)
        assert store.shards() and store._journal_answers() < 5
    files = sorted(os.listdir(path.parent / "verdicts"))
    with VerdictStore(path, shard_rows=5) as store:
        for v in vs:  # every answer found where it is, none written again
            assert store.has(v.verdict_id) and store.get(v.verdict_id).p_first == 0.7
            assert store.answer_to(v.question).p_first == 0.7
            assert not store.put(v)
        assert not store.has(err.verdict_id)  # an error stays in the journal, to be asked again
        retried = err.model_copy(update={"status": "ok", "p_first": 0.4})
        assert store.put(retried) and store.get(err.verdict_id).p_first == 0.4
        with pytest.raises(StoreError, match="in a shard"):
            store.put(vs[0], replace=True)
        assert [v.verdict_id for v in store.verdicts()] == [v.verdict_id for v in vs] + [err.verdict_id]
    assert sorted(os.listdir(path.parent / "verdicts")) == files


def test_a_flush_killed_before_its_commit_loses_nothing_and_leaves_no_duplicate(tmp_path, monkeypatch):
    prompts, cands = _corpus(3)
    path = tmp_path / "verdicts.sqlite"
    with VerdictStore(path) as store:
        store.register_judge("j", {"mode": "pairwise"})
        store.put_candidates(*_texts(prompts, cands))
        vs = [_pairwise("j", p, "alpha", "beta", prompts, cands, 0.6) for p in prompts]
        for v in vs:
            store.put(v)
        real = store._shards.write

        def write_then_die(seq, rows):  # the process dies between writing the shard and listing it
            real(seq, rows)
            raise KeyboardInterrupt

        monkeypatch.setattr(store._shards, "write", write_then_die)
        with pytest.raises(KeyboardInterrupt):
            store.flush_shards()
        assert len(os.listdir(path.parent / "verdicts")) == 1  # the orphan file exists ...
    with VerdictStore.open(path) as store:  # ... but a reader never counts it
        assert [v.verdict_id for v in store.verdicts()] == [v.verdict_id for v in vs]
    with VerdictStore(path) as store:  # and the next writer removes it
        assert os.listdir(path.parent / "verdicts") == []
        assert store.flush_shards() == 3 and len(list(store.verdicts())) == 3


def _copy_sharded(src_folder, dst_folder, shard_rows):
    import shutil

    shutil.copytree(src_folder, dst_folder)
    with VerdictStore(dst_folder / "verdicts.sqlite", shard_rows=shard_rows) as store:
        store.flush_shards()
        assert len(store.shards()) >= 1 and store._journal_answers() == 0


def test_every_reader_reads_a_sharded_store_as_its_sqlite_twin(tmp_path, monkeypatch, capsys):
    import json

    from _ensemble_helpers import make_store
    from conftest import run_cli

    a, b = tmp_path / "sqlite", tmp_path / "shards"  # names of one length: rich wraps paths alike
    a.mkdir()
    make_store(a / "verdicts.sqlite", n_prompts=16)
    _copy_sharded(a, b, shard_rows=100)

    def out(folder, *args):
        assert run_cli(monkeypatch, *args) == 0
        return capsys.readouterr().out.replace(str(folder), "RUN")

    for ci in ("bootstrap", "sandwich"):  # the Python road over shards; DuckDB's sums
        docs = []
        for f in (a, b):
            run_cli(monkeypatch, "rate", f, "--judge", "j1", "--ci", ci, "-o", f / f"rate-{ci}.json")
            docs.append(json.loads((f / f"rate-{ci}.json").read_text()))
        for ra, rb in zip(docs[0]["ratings"], docs[1]["ratings"]):
            assert ra["system"] == rb["system"] and ra["n"] == rb["n"]
            for k in ("rating", "lower", "upper"):
                assert ra[k] == pytest.approx(rb[k], abs=1e-9)
        capsys.readouterr()
    assert out(a, "audit", a, "--judge", "j1") == out(b, "audit", b, "--judge", "j1")
    assert out(a, "combine", a) == out(b, "combine", b)
    assert (a / "combined.jsonl").read_text() == (b / "combined.jsonl").read_text()
    for f in (a, b):  # the stored ensemble (journal) next to its members (shards)
        assert run_cli(monkeypatch, "export", f, "-o", f / "dpo.jsonl") == 0
    capsys.readouterr()
    assert (a / "dpo.jsonl").read_text() == (b / "dpo.jsonl").read_text() != ""


def test_rank_store_parquet_writes_shards_resumes_and_reports_like_sqlite(tmp_path, monkeypatch, capsys):
    import json

    from conftest import example_subset, run_cli
    from referee.report._html import build_report

    a, b = tmp_path / "sqlite", tmp_path / "parquet"
    common = ["--judge", "smollm2-135m", "--plan", "baseline", "--baseline", "concise-expert", "--n-boot", "50",
              "--no-independence-check", "--no-report"]
    cands = example_subset(tmp_path)
    assert run_cli(monkeypatch, "rank", cands, "-o", a, *common) == 0
    assert run_cli(monkeypatch, "rank", cands, "-o", b, *common, "--store", "parquet", "--shard-rows", "10") == 0
    capsys.readouterr()
    with VerdictStore.open(b / "verdicts.sqlite") as store:
        assert len(store.shards()) == 4 and store._journal_answers() == 0  # 32 verdicts: 10+10+10, then 2 at the end
    ra, rb = (json.loads((f / "leaderboard.json").read_text())["leaderboard"] for f in (a, b))
    assert [r["system"] for r in ra] == [r["system"] for r in rb]
    for x, y in zip(ra, rb):
        assert x["rating"] == pytest.approx(y["rating"], abs=1e-6)
    run_b = json.loads((b / "run.json").read_text())
    assert run_b["store"] == {"kind": "parquet", "shards": 4}
    # A rerun finds every answer in the shards and asks nothing.
    assert run_cli(monkeypatch, "rank", cands, "-o", b, *common, "--store", "parquet", "--shard-rows", "10") == 0
    again = json.loads((b / "run.json").read_text())
    assert again["verdicts"]["asked"] == 0 and again["verdicts"]["total"] == run_b["verdicts"]["total"]
    def scrub(x):  # what differs between two runs of one judge: timings, paths, dates
        if isinstance(x, dict):
            return {k: scrub(v) for k, v in x.items() if k not in ("latency", "latency_s", "generated", "run_dir",
                                                                   "title", "prov", "plots")}
        if isinstance(x, list):
            return [scrub(v) for v in x]
        return round(x, 6) if isinstance(x, float) else x

    ctx_a, ctx_b = build_report(a), build_report(b)
    assert ctx_b["prompts"] and ctx_b["rows"]
    for key in ("rows", "prompts", "systems", "heatmap", "behaviour"):
        assert scrub(ctx_a[key]) == scrub(ctx_b[key]), key
