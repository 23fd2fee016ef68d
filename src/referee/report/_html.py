"""The self-contained HTML report of a run folder: one file, plotly inlined, no network needed.

Everything shown comes from the run folder (``run.json``, ``leaderboard.json`` and
``verdicts.sqlite``); ratings, matrices and style control come from :mod:`referee.rate`.
Prompt and candidate texts and system names are untrusted: the template autoescapes every
value, plot labels are HTML-escaped (plotly reads a subset of HTML in its labels), and every
JSON blob inside a ``<script>`` has ``<``, ``>`` and ``&`` escaped. A Content-Security-Policy
allows only the page's own inline scripts (by hash) and forbids every network request.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, Undefined, select_autoescape
from markupsafe import Markup, escape

from ..errors import InputError, RatingError
from ..outcomes import (ENSEMBLE_PREFIX, agreement, longer_wins, oriented, outcome_arrays, outcomes_from_verdicts,
                        quick_ratings, run_stats, style_fit)
from ..store import PairOutcome, Verdict, VerdictStore

# A report above this size gets a note saying why (the candidate texts; plotly.js alone is ~4.8 MB).
SIZE_NOTE_BYTES = 10_000_000

_PALETTE = ("#4363d8", "#e6194b", "#3cb44b", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
            "#469990", "#808000", "#000075", "#800000", "#aaa000", "#dcbeff", "#a9a9a9")


# -- small helpers ---------------------------------------------------------------------------------
def _json_for_script(obj: Any) -> str:
    """JSON safe to place inside a ``<script>`` element: no ``</script>``, no ``<!--``, no entity."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _json_default(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return _num(float(x))
    if isinstance(x, np.ndarray):
        return [_json_default(v) if isinstance(v, (np.generic, np.ndarray)) else v for v in x.tolist()]
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def _plot_text(s: Any) -> str:
    """A label for plotly, which reads a subset of HTML in labels: escape it so it shows as written."""
    return html.escape(str(s), quote=False)


def _pct(x: float | None, digits: int = 0) -> str:
    return "–" if x is None or isinstance(x, Undefined) else f"{100 * x:.{digits}f}%"


def _fmt_num(x: Any, digits: int = 0) -> str:
    if x is None or isinstance(x, Undefined):
        return "–"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        return f"{x:,.{digits}f}"
    return str(x)


def _fmt_seconds(s: float | None) -> str:
    if s is None or isinstance(s, Undefined):
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def _fmt_time(iso: str | None) -> str:
    if not iso or isinstance(iso, Undefined):
        return "–"
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def _short(h: str | None, n: int = 12) -> str:
    return "–" if not h or isinstance(h, Undefined) else (h[:n] + "…" if len(h) > n else h)


def _csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode() + "'"


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as e:  # pragma: no cover - plotly is a dependency
        raise InputError("the HTML report needs plotly (pip install plotly)") from e
    js = get_plotlyjs()
    if "</script" in js.lower():  # pragma: no cover - would end the inline script early
        raise RuntimeError("plotly.js contains '</script': cannot inline it safely")
    return js


class _CompactLoader(PackageLoader):
    """Templates with their lines' indentation dropped (a report repeats rows thousands of times).

    Safe because the templates hold no literal multi-line text: every ``<pre>`` gets its content
    from an expression, and untrusted text never passes through here."""

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        if template.endswith(".j2"):
            source = "\n".join(line.strip() for line in source.splitlines()) + "\n"
        return source, filename, uptodate


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=_CompactLoader("referee.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, num=_fmt_num, seconds=_fmt_seconds, when=_fmt_time, short=_short,
                       jsonscript=lambda obj: Markup(_json_for_script(obj)))
    return env


# -- what the report needs, read from the run folder -------------------------------------------------
def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}") from None


def _latest_run_provenance(store: VerdictStore) -> dict[str, Any]:
    row = store._db.execute("SELECT provenance FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row else {}


def _table_rows(table, level_rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Leaderboard rows (best first) from a RatingTable, with the run's extra columns when given."""
    extra = {r["system"]: r for r in (level_rows or [])}
    rows = []
    for pos, rec in enumerate(table.to_records(), 1):
        e = extra.get(rec["system"], {})
        rows.append({"rank": pos, **rec, "verdicts": e.get("verdicts", rec.get("n")),
                     "position_consistency": e.get("position_consistency")})
    return rows


def _decorate_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the systems whose intervals overlap (``tied_with``) and a display rank to leaderboard rows.

    ``tied_with`` lists the systems neither of whose intervals lies wholly above the other's: the
    verdicts do not separate them at this level, which is not a finding that they are equal (the
    wording the report uses). The display rank is the row's rank range (``rank_min``–``rank_max``).
    """
    out = []
    for r in rows:
        tied = [o["system"] for o in rows if o["system"] != r["system"]
                and not (o["lower"] > r["upper"] or o["upper"] < r["lower"])]
        out.append({**r, "tied_with": tied,
                    "rank_label": str(r["rank_min"]) if r["rank_min"] == r["rank_max"]
                    else f"{r['rank_min']}–{r['rank_max']}"})
    best: dict[int, list[str]] = {}
    colors: dict[int, str] = {}
    for r in out:
        r["color"] = colors.setdefault(r["rank_min"], _PALETTE[len(colors) % len(_PALETTE)])
    for r in out:
        best.setdefault(r["rank_min"], []).append(r["system"])
    for r in out:
        r["shared_rank"] = len(best[r["rank_min"]]) > 1
    return out


def _judge_label(spec: dict[str, Any]) -> str:
    be = spec.get("backend") or {}
    return str(be.get("model_name") or be.get("model") or spec.get("name") or "judge")


def _judge_outcomes(verdicts: list[Verdict], judge_id: str | None) -> list[PairOutcome]:
    """One judge's outcomes, the way every reader gets them (:mod:`referee.outcomes`)."""
    return [] if judge_id is None else outcomes_from_verdicts(v for v in verdicts if v.judge_id == judge_id)


def _judges_section(verdicts: list[Verdict], judges: dict[str, dict[str, Any]],
                    main_id: str | None):
    """Agreement between judges (share of pairs where they pick the same winner), and the
    label-free accuracies of the judges: from a stored ensemble (``referee combine``) when there
    is one, else from an ensemble fitted here when three or more judges gave verdicts."""
    outs = {}
    for jid in judges:
        got = _judge_outcomes(verdicts, jid)
        if got:
            outs[jid] = got
    ids = sorted(outs, key=lambda j: (j.startswith(ENSEMBLE_PREFIX), j != main_id, j))
    if len(ids) < 2:
        return None
    by_judge = {j: oriented(outs[j]) for j in ids}
    label = {j: f"{_judge_label(judges[j])} ({j})" for j in judges}
    names = [label[j] for j in ids]
    agree = agreement(outs, ids)
    ensembles = []
    for jid in sorted(j for j in judges if j.startswith(ENSEMBLE_PREFIX)):
        spec = judges[jid]
        acc = spec.get("accuracy") or {}
        dropped = spec.get("dropped") or {}
        members = [{"name": label.get(m, m), "accuracy": acc.get(m), "kept": m not in dropped,
                    "reason": dropped.get(m, "")} for m in spec.get("members") or []]
        ensembles.append({"name": label[jid], "method": spec.get("method", ""), "members": members, "full": False,
                          "note": "; ".join(map(str, spec.get("notes") or []))})
    plain = [j for j in ids if not j.startswith(ENSEMBLE_PREFIX)]
    if not ensembles and len(plain) >= 3:
        try:
            from ..combine import combine  # the combine stage: optional here
            keys = sorted(set().union(*(set(by_judge[j]) for j in plain)))
            x = np.array([[by_judge[j].get(k, np.nan) for j in plain] for k in keys], dtype=np.float64)
            ens = combine(x, [label[j] for j in plain])
            ensembles.append({"name": "fitted for this report", "method": f"label-free ensemble ({ens.method})",
                              "members": ens.table(), "full": True, "note": "; ".join(ens.notes)})
        except Exception as e:  # a report must not fail for want of an ensemble
            ensembles.append({"name": "no ensemble", "method": "", "members": [], "note": str(e)})
    return {"names": names, "ids": ids, "agree": agree, "ensembles": ensembles}


# -- the explorer ------------------------------------------------------------------------------------
def _spans_of(verdict: Verdict) -> list[tuple[str, str, str]]:
    """(system, quoted text, note) for the error spans a judge quoted, when it wrote any."""
    out = []
    d = verdict.detail or {}
    for key in ("diagnoses", "errors", "issues"):
        items = d.get(key)
        if not isinstance(items, list):
            continue
        for it in items:
            if not isinstance(it, dict):
                continue
            quote = it.get("quote") or it.get("span") or it.get("text")
            if not isinstance(quote, str) or not quote.strip():
                continue
            system = it.get("system") or (verdict.systems[0] if len(verdict.systems) == 1 else None)
            if system is None and isinstance(it.get("response"), (int, str)):
                r = it["response"]
                pos = ("AB".index(r.upper()) if isinstance(r, str) and r.upper() in ("A", "B")
                       else int(r) if isinstance(r, int) else -1)
                system = verdict.systems[pos] if 0 <= pos < len(verdict.systems) else None
            if system is not None:
                out.append((str(system), quote, _diagnosis_note(it)))
    return out


def _diagnosis_note(it: dict[str, Any]) -> str:
    kind = " ".join(str(it[k]) for k in ("severity", "type") if it.get(k))
    why = it.get("explanation") or it.get("note") or it.get("reason") or ""
    return f"{kind}: {why}" if kind and why else str(kind or why)


def _highlight(text: str, spans: list[tuple[str, str]]) -> Markup:
    """The text escaped, with each quoted span wrapped in ``<mark>`` (escaped too)."""
    marks: list[tuple[int, int, str]] = []
    for quote, note in spans:
        start = 0
        while True:
            i = text.find(quote, start)
            if i < 0:
                break
            marks.append((i, i + len(quote), note))
            start = i + len(quote)
    marks.sort()
    merged: list[tuple[int, int, str]] = []
    for s, e, n in marks:
        if merged and s < merged[-1][1]:
            ps, pe, pn = merged[-1]
            merged[-1] = (ps, max(pe, e), pn if not n or n == pn else f"{pn}; {n}")
        else:
            merged.append((s, e, n))
    out, pos = [], 0
    for s, e, n in merged:
        out.append(escape(text[pos:s]))
        out.append(Markup('<mark class="span" title="{}">{}</mark>').format(n or "quoted by the judge", text[s:e]))
        pos = e
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def _critique(v: Verdict) -> str | None:
    d = v.detail or {}
    for key in ("critique", "explanation", "rationale", "reasoning"):
        if isinstance(d.get(key), str) and d[key].strip():
            return d[key]
    # a generating judge's own words (logprob judges store JSON of the next tokens instead)
    if v.raw and v.raw.strip() and not v.raw.lstrip().startswith(("{", "[")):
        return v.raw.strip()
    return None


def _explorer(store: VerdictStore, verdicts: list[Verdict], judges: dict[str, dict[str, Any]],
              main_id: str | None, systems_order: list[str], outcomes: list[PairOutcome]) -> list[dict[str, Any]]:
    prompts = store.prompts()
    cands = store.candidates()
    by_prompt: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        by_prompt[v.prompt_id].append(v)
    rank_of = {s: i for i, s in enumerate(systems_order)}
    cand_by_prompt: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for (pid, system), c in cands.items():
        cand_by_prompt[pid].append((system, c))
    pids = list(prompts) + [pid for pid in by_prompt if pid not in prompts]
    prompt_wins: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for o in outcomes:
        prompt_wins[o.prompt_id][o.system_a].append(o.p_a)
        prompt_wins[o.prompt_id][o.system_b].append(1.0 - o.p_a)
    out = []
    multi_judge = len({v.judge_id for v in verdicts}) > 1
    for pid in pids:
        vs = by_prompt.get(pid, [])
        spans: dict[str, list[tuple[str, str]]] = defaultdict(list)
        truncated: set[str] = set()
        for v in vs:
            for system, quote, note in _spans_of(v):
                spans[system].append((quote, note))
            cut = (v.detail or {}).get("truncated") or []
            for system, flag in zip(v.systems, cut[1:]):
                if flag:
                    truncated.add(system)
        # pairwise verdicts grouped by (judge, unordered pair), both orders side by side
        pairs: dict[tuple[str, frozenset], list[Verdict]] = {}
        others = []
        for v in vs:
            if v.mode == "pairwise" and len(v.systems) == 2:
                pairs.setdefault((v.judge_id, frozenset(v.systems)), []).append(v)
            else:
                others.append(v)
        pair_rows = []
        n_inconsistent = n_bad = 0
        for (jid, _), group in pairs.items():
            a, b = group[0].systems
            if rank_of.get(b, 1e9) < rank_of.get(a, 1e9):
                a, b = b, a
            ab = [v for v in group if v.systems == [a, b]]
            ba = [v for v in group if v.systems == [b, a]]
            p_ab = _mean([v.p_first for v in ab if v.status == "ok"])
            p_ba = _mean([v.p_first for v in ba if v.status == "ok"])
            parts = ([p_ab] if p_ab is not None else []) + ([1 - p_ba] if p_ba is not None else [])
            p_a = _mean(parts)
            consistent = None if p_ab is None or p_ba is None else (p_ab - 0.5) * (p_ba - 0.5) < 0
            n_inconsistent += consistent is False
            bad = [v for v in group if v.status != "ok"]
            n_bad += len(bad)
            pair_rows.append({
                "a": a, "b": b, "judge": _judge_label(judges.get(jid, {})) if multi_judge else None,
                "p_a": p_a, "consistent": consistent,
                "winner": None if p_a is None or p_a == 0.5 else (a if p_a > 0.5 else b),
                "orders": [_order_row(v) for v in ab + ba],
                "critiques": [{"order": " → ".join(v.systems), "text": c}
                              for v, c in ((v, _critique(v)) for v in ab + ba) if c],
            })
        pair_rows.sort(key=lambda r: (rank_of.get(r["a"], 1e9), rank_of.get(r["b"], 1e9)))
        n_bad += sum(v.status != "ok" for v in others)
        ranking = sorted(((s, sum(w) / len(w)) for s, w in prompt_wins[pid].items()), key=lambda t: -t[1])
        cl = sorted(cand_by_prompt.get(pid, []), key=lambda t: rank_of.get(t[0], 1e9))
        p = prompts.get(pid, {"text": "", "reference": None})
        category = ""
        for _, c in cl:
            md = c.get("metadata") or {}
            if isinstance(md.get("category"), str):
                category = md["category"]
                break
        out.append({
            "id": pid, "text": p["text"], "reference": p.get("reference"), "category": category,
            "candidates": [{"system": s, "html": _highlight(c["output"], spans.get(s, [])), "chars": len(c["output"]),
                            "truncated": s in truncated, "marks": len(spans.get(s, [])),
                            "prompt_win": dict(ranking).get(s)} for s, c in cl],
            "pairs": pair_rows,
            "others": [_order_row(v) | {"critique": _critique(v), "systems": v.systems, "mode": v.mode,
                                        "score": v.score, "judge": _judge_label(judges.get(v.judge_id, {})),
                                        "ranking": _ranking(v),
                                        "diagnoses": [f"{_diagnosis_note(d)} — “{d.get('span') or d.get('quote') or ''}”"
                                                      for d in (v.detail or {}).get("diagnoses") or []
                                                      if isinstance(d, dict)]}
                       for v in others],
            "best": ranking[0][0] if len(ranking) > 1 and ranking[0][1] > ranking[1][1] else None,
            "n_verdicts": len(vs), "n_inconsistent": n_inconsistent, "n_bad": n_bad,
        })
    return out


def _ranking(v: Verdict) -> list[str] | None:
    order = (v.detail or {}).get("ranking")
    if not isinstance(order, list) or not all(isinstance(i, int) and 0 <= i < len(v.systems) for i in order):
        return None
    return [v.systems[i] for i in order]


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _order_row(v: Verdict) -> dict[str, Any]:
    d = v.detail or {}
    letters = d.get("p_letters") if isinstance(d.get("p_letters"), dict) else None
    return {"first": v.systems[0] if v.systems else "", "second": v.systems[1] if len(v.systems) > 1 else "",
            "status": v.status, "p_first": v.p_first, "error": v.error,
            "letters": ", ".join(f"{k} {val:.3f}" for k, val in letters.items()
                                 if isinstance(val, (int, float))) if letters else "",
            "mass": d.get("mass"), "latency": v.latency_s, "tokens": v.prompt_tokens + v.completion_tokens,
            "truncated": any(bool(x) for x in (d.get("truncated") or [])[1:])}


# -- plots -------------------------------------------------------------------------------------------
def _layout(**kw: Any) -> dict[str, Any]:
    base = {"margin": {"l": 10, "r": 20, "t": 10, "b": 40}, "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 13,
                     "color": "#1f2933"},
            "hoverlabel": {"font": {"family": "system-ui, sans-serif"}}}
    base.update(kw)
    return base


def _forest(rows: list[dict[str, Any]], level: float, title_x: str) -> dict[str, Any]:
    ys = [_plot_text(r["system"]) for r in rows]
    colors = [r["color"] for r in rows]
    hover = [f"<b>{_plot_text(r['system'])}</b><br>rating {r['rating']:.0f} "
             f"({100 * level:.0f}% CI {r['lower']:.0f} – {r['upper']:.0f})<br>rank {r['rank_label']}"
             f"<br>win rate {100 * r['win_rate']:.1f}%" for r in rows]
    trace = {"type": "scatter", "mode": "markers", "x": [r["rating"] for r in rows], "y": ys,
             "error_x": {"type": "data", "symmetric": False, "array": [r["upper"] - r["rating"] for r in rows],
                         "arrayminus": [r["rating"] - r["lower"] for r in rows], "thickness": 2.5, "width": 6,
                         "color": "#52606d"},
             "marker": {"size": 12, "color": colors, "line": {"width": 1.5, "color": "white"}},
             "hovertext": hover, "hoverinfo": "text", "name": "rating"}
    n = len(rows)
    layout = _layout(height=max(200, 40 * n + 90), showlegend=False, margin={"l": 10, "r": 30, "t": 10, "b": 50},
                     xaxis={"title": {"text": title_x, "font": {"size": 12, "color": "#616e7c"}}, "zeroline": False,
                            "gridcolor": "#e4e7eb"},
                     yaxis={"autorange": "reversed", "automargin": True, "gridcolor": "#f0f2f4",
                            "categoryorder": "array", "categoryarray": ys},
                     shapes=[{"type": "line", "xref": "x", "yref": "paper", "x0": 1000, "x1": 1000, "y0": 0,
                              "y1": 1, "line": {"color": "#9aa5b1", "dash": "dot", "width": 1}}])
    return {"data": [trace], "layout": layout}


def _heatmap(systems: list[str], W: np.ndarray, C: np.ndarray) -> dict[str, Any]:
    labels = [_plot_text(s) for s in systems]
    z = [[None if not math.isfinite(W[i, j]) else round(100 * float(W[i, j]), 1) for j in range(len(systems))]
         for i in range(len(systems))]
    text = [["" if z[i][j] is None else f"{z[i][j]:.0f}" for j in range(len(systems))] for i in range(len(systems))]
    hover = [[(f"<b>{labels[i]}</b> vs <b>{labels[j]}</b><br>" +
               ("not compared" if z[i][j] is None else
                f"{labels[i]} wins {z[i][j]:.1f}%<br>{int(C[i, j])} comparisons"))
              if i != j else labels[i] for j in range(len(systems))] for i in range(len(systems))]
    trace = {"type": "heatmap", "z": z, "x": labels, "y": labels, "text": text, "texttemplate": "%{text}",
             "hovertext": hover, "hoverinfo": "text", "zmin": 0, "zmax": 100, "xgap": 2, "ygap": 2,
             "colorscale": [[0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#f7f7f7"], [0.75, "#67a9cf"],
                            [1, "#2166ac"]],
             "colorbar": {"title": {"text": "row wins %"}, "thickness": 14}}
    n = len(systems)
    layout = _layout(height=max(300, 44 * n + 160), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                     xaxis={"side": "top", "automargin": True, "tickangle": -30},
                     yaxis={"autorange": "reversed", "automargin": True})
    return {"data": [trace], "layout": layout}


def _style_effects_plot(effects: list[dict[str, Any]]) -> dict[str, Any]:
    names = [e["covariate"] for e in effects]
    trace = {"type": "scatter", "mode": "markers", "y": names, "x": [100 * e["win_prob_shift"] for e in effects],
             "error_x": {"type": "data", "symmetric": False,
                         "array": [100 * (1 / (1 + math.exp(-e["upper"])) - 0.5 - e["win_prob_shift"]) for e in effects],
                         "arrayminus": [100 * (e["win_prob_shift"] - (1 / (1 + math.exp(-e["lower"])) - 0.5))
                                        for e in effects], "color": "#52606d", "thickness": 2},
             "marker": {"size": 11, "color": "#f58231"},
             "hovertext": [f"{e['covariate']}: {100 * e['win_prob_shift']:+.1f} points of win probability per "
                           f"{e['per']} (odds ×{e['odds_ratio']:.2f})" for e in effects], "hoverinfo": "text"}
    ends = [100 * (1 / (1 + math.exp(-e[k])) - 0.5) for e in effects for k in ("lower", "upper")]
    lo, hi = min(0.0, *ends), max(0.0, *ends)
    pad = 0.08 * (hi - lo or 1.0)
    layout = _layout(height=50 * len(effects) + 100, showlegend=False,
                     xaxis={"title": {"text": "win-probability shift for the answer with more of it (points)"},
                            "zeroline": True, "zerolinecolor": "#9aa5b1", "zerolinewidth": 2, "gridcolor": "#e4e7eb",
                            "range": [lo - pad, hi + pad]},
                     yaxis={"automargin": True})
    return {"data": [trace], "layout": layout}


def _settling(systems: list[str], outcomes: list[PairOutcome], order: dict[str, int], level: float):
    """Ratings refitted on the first k comparisons, for growing k (in the order verdicts arrived)."""
    seq = sorted(outcomes, key=lambda o: min(order.get(v, 1 << 60) for v in o.verdict_ids))
    n = len(seq)
    if n < 4:
        return None
    steps = sorted({max(len(systems), int(round(n * f))) for f in np.linspace(0.1, 1.0, 19)} | {n})
    steps = [k for k in steps if k <= n]
    xs, series = [], {s: ([], [], []) for s in systems}
    for k in steps:
        try:
            t = quick_ratings(systems, seq[:k], level=level)
        except (RatingError, np.linalg.LinAlgError, ValueError):
            continue
        if not np.all(np.isfinite(t.rating)):
            continue
        xs.append(k)
        for i, s in enumerate(systems):
            series[s][0].append(float(t.rating[i]))
            series[s][1].append(_num(float(t.lower[i])))
            series[s][2].append(_num(float(t.upper[i])))
    if len(xs) < 2:
        return None
    data = []
    for i, s in enumerate(systems):
        color = _PALETTE[i % len(_PALETTE)]
        r, lo, hi = series[s]
        data.append({"type": "scatter", "mode": "lines+markers", "x": xs, "y": r, "name": _plot_text(s),
                     "line": {"color": color, "width": 2}, "marker": {"size": 5},
                     "hovertemplate": f"{_plot_text(s)}<br>%{{y:.0f}} after %{{x}} comparisons<extra></extra>"})
    layout = _layout(height=400, margin={"l": 10, "r": 20, "t": 10, "b": 40},
                     xaxis={"title": {"text": "comparisons judged (both orders)"}, "gridcolor": "#e4e7eb",
                            "automargin": True},
                     yaxis={"title": {"text": "rating"}, "gridcolor": "#e4e7eb", "automargin": True},
                     legend={"orientation": "h", "y": -0.25})
    return {"data": data, "layout": layout}


def _trials_plot(trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The dev score of each candidate program an optimizer scored, in order, and the best so far."""
    pts = [t for t in trials if t.get("dev_score") is not None]
    if not pts:
        return None
    xs = [t["trial"] for t in pts]
    ys = [t["dev_score"] for t in pts]
    best, top = [], float("-inf")
    for y in ys:
        top = max(top, y)
        best.append(top)
    hover = [f"trial {t['trial']} · dev {t['dev_score']:.3f} on {t['dev_n']} prompts · {t['n_demos']} demos<br>"
             + _plot_text(t["instruction"][:160]) for t in pts]
    data = [{"type": "scatter", "mode": "markers", "x": xs, "y": ys, "name": "dev score",
             "marker": {"size": 9, "color": _PALETTE[0]}, "hovertext": hover, "hoverinfo": "text"},
            {"type": "scatter", "mode": "lines", "x": xs, "y": best, "name": "best so far",
             "line": {"color": _PALETTE[1], "width": 2, "shape": "hv"}, "hoverinfo": "skip"}]
    layout = _layout(height=320, xaxis={"title": {"text": "trial (candidate program, in the order scored)"},
                                        "gridcolor": "#e4e7eb", "automargin": True, "dtick": 1},
                     yaxis={"title": {"text": "dev score (metric mean)"}, "gridcolor": "#e4e7eb", "automargin": True},
                     legend={"orientation": "h", "y": -0.3})
    return {"data": data, "layout": layout}


# -- assemble ----------------------------------------------------------------------------------------
def build_report(run_dir: str | Path) -> dict[str, Any]:
    """Everything the HTML report shows, as plain values (the template's context).

    Raises:
        InputError: ``run_dir`` is not a run folder (no ``verdicts.sqlite``).
    """
    from ..rate import count_matrix, win_rate_matrix

    run_dir = Path(run_dir)
    db = run_dir / "verdicts.sqlite"
    if not db.is_file():
        raise InputError(f"{run_dir}: not a run folder (no verdicts.sqlite); make one with `referee rank`")
    with VerdictStore.open(db) as store:
        prov = _read_json(run_dir / "run.json") or _latest_run_provenance(store)
        board = _read_json(run_dir / "leaderboard.json") or {}
        judges = store.judges()
        main_id = (prov.get("judge") or {}).get("id")
        if main_id not in judges:
            main_id = next(iter(judges), None)
        spec = {**judges.get(main_id, {}), **(prov.get("judge") or {})}
        verdicts = list(store.verdicts())
        order = {v.verdict_id: i for i, v in enumerate(verdicts)}
        outcomes = _judge_outcomes(verdicts, main_id)
        texts = {k: c["output"] for k, c in store.candidates().items()}
        rating_info = prov.get("rating") or {}
        level = float(rating_info.get("level") or 0.95)
        systems = list((prov.get("candidates") or {}).get("systems") or [])
        for s in [s for o in outcomes for s in (o.system_a, o.system_b)] + [s for _, s in texts]:
            if s not in systems:
                systems.append(s)
        rows = board.get("leaderboard") or []
        if not rows and outcomes:
            try:
                rows = _table_rows(quick_ratings(systems, outcomes, level=level))
                rating_info = {**rating_info, "method": "bradley-terry", "ci": "sandwich", "level": level}
            except RatingError:
                rows = []
        rows = _decorate_rows(rows)
        ranked = [r["system"] for r in rows] + [s for s in systems if s not in {r["system"] for r in rows}]
        rated = [s for s in ranked if any(s in (o.system_a, o.system_b) for o in outcomes)]
        x = outcome_arrays(rated, outcomes)
        keep = x.outcomes
        plots: dict[str, Any] = {}
        heat = None
        if len(keep):
            W = win_rate_matrix(x.a, x.b, x.p, len(rated), x.weight)
            C = count_matrix(x.a, x.b, len(rated))
            plots["heatmap"] = _heatmap(rated, W, C)
            heat = True
        plots["forest_raw"] = _forest(rows, level, "rating (Bradley–Terry, mean 1000; 400 points = 10× the odds)") \
            if rows else None
        style, style_reason = style_fit(rated, keep, texts, level)
        style_rows = None
        effects = None
        if style is not None:
            style_rows = _decorate_rows(_table_rows(style.table, rows))
            plots["forest_style"] = _forest(style_rows, level, "style-controlled rating (same scale)")
            effects = style.effects()
            plots["style_effects"] = _style_effects_plot(effects)
        beh = dict(prov.get("judge_behaviour") or {}) or \
            run_stats([v for v in verdicts if v.judge_id == main_id], outcomes).behaviour()
        beh["longer_wins"], beh["longer_decided"] = longer_wins(keep, texts)
        counts = {"ok": 0, "unparseable": 0, "error": 0}
        for v in verdicts:
            if v.judge_id == main_id:
                counts[v.status] = counts.get(v.status, 0) + 1
        vinfo = {**counts, **(prov.get("verdicts") or {})}
        vinfo.setdefault("total", sum(counts.values()))
        # a verdict reused from the store (same question, other systems) was not asked: counted once
        asked = [v for v in verdicts if v.judge_id == main_id and not v.detail.get("reused_from")]
        vinfo["cost"] = sum(v.cost for v in asked)
        vinfo["latency"] = sum(v.latency_s for v in asked)
        vinfo["tokens"] = sum(v.prompt_tokens + v.completion_tokens for v in asked)
        vinfo["cost_label"] = _cost_label(spec, prov.get("cost") or {}, vinfo["cost"])
        plan = prov.get("plan") or {"name": (prov.get("options") or {}).get("plan")}
        if (plan.get("name") or "") == "adaptive":
            settle = _settling(rated, keep, order, level)
            if settle:
                plots["settling"] = settle
        optimization = _read_json(run_dir / "trials.json")  # `referee optimize` rates its held-out outputs here
        if optimization:
            plots["trials"] = _trials_plot(optimization.get("trials") or [])
        multi = _judges_section(verdicts, judges, main_id)
        prompts = _explorer(store, verdicts, judges, main_id, ranked, outcomes)
    categories = sorted({p["category"] for p in prompts if p["category"]})
    plots = {k: v for k, v in plots.items() if v is not None}
    return {
        "title": f"referee report — {Path(run_dir).resolve().name}",
        "run_dir": str(run_dir), "prov": prov, "judge": spec, "judge_id": main_id,
        "judge_label": _judge_label(spec) if spec else "–", "judges": judges,
        "rating": rating_info, "level": level, "plan": plan, "verdicts": vinfo, "behaviour": beh,
        "rows": rows, "style_rows": style_rows, "style_reason": style_reason, "effects": effects,
        "heatmap": heat, "systems": ranked, "multi": multi, "optimization": optimization,
        "prompts": prompts, "categories": categories, "plots": plots,
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }


def render_html(context: dict[str, Any]) -> str:
    """The report page for a :func:`build_report` context."""
    from .._version import __version__

    app_js = _env().get_template("report.js").render()
    data_js = "window.REFEREE_PLOTS = " + _json_for_script(context["plots"]) + ";"
    plotly_js = _plotly_js()
    csp = ("default-src 'none'; img-src data:; font-src data:; style-src 'unsafe-inline'; "
           f"script-src {_csp_hash(plotly_js)} {_csp_hash(data_js)} {_csp_hash(app_js)}; "
           "connect-src 'none'; form-action 'none'; base-uri 'none'")
    page = _env().get_template("report.html.j2").render(
        **context, version=__version__, csp=Markup(csp), plotly_js=Markup(plotly_js), data_js=Markup(data_js),
        app_js=Markup(app_js))
    return page


def write_html_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the self-contained HTML report of a run folder.

    Args:
        run_dir: a folder written by ``referee rank`` (needs ``verdicts.sqlite``; ``run.json`` and
            ``leaderboard.json`` are used when present).
        output: the HTML file (default ``run_dir/report.html``).

    Returns:
        The path written. The file needs no network to view: plotly.js is inlined.
    """
    run_dir = Path(run_dir)
    out = Path(output) if output is not None else run_dir / "report.html"
    context = build_report(run_dir)
    page = render_html(context)
    if len(page.encode("utf-8")) > SIZE_NOTE_BYTES:
        mb = len(page.encode("utf-8")) / 1e6
        context["size_note"] = (f"This file is {mb:.1f} MB: plotly.js takes about 4.8 MB and the rest is the "
                                f"{sum(len(p['candidates']) for p in context['prompts'])} candidate texts of "
                                f"{len(context['prompts'])} prompts, kept so that it opens without the run folder.")
        page = render_html(context)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out



def _cost_label(spec: dict[str, Any] | None, cost: dict[str, Any], stored_usd: float) -> str:
    """"$0 (local model)" only for llama.cpp in process; a hosted judge's real cost, or "not priced"."""
    backend = ((spec or {}).get("backend") or {}).get("backend")
    if backend == "openai-http":
        if cost.get("priced") or stored_usd > 0:
            return f"${stored_usd:.4f}"
        return "not priced"
    if backend == "llama.cpp":
        return "$0 (local model)"
    return "$0 (no model asked)"
