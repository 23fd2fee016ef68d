"""Leaderboard files: JSON, CSV and Markdown, plus ``run.json``; written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

COLUMNS = ("rank", "system", "rating", "lower", "upper", "rank_min", "rank_max", "win_rate", "verdicts",
           "position_consistency", "flag")


def _write_atomic(path: Path, text: str) -> None:
    # Write-then-rename: an interrupted write never leaves half a leaderboard behind.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def leaderboard_markdown(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> str:
    """A Markdown leaderboard that renders well on code-hosting sites."""
    judge = provenance.get("judge", {})
    v = provenance.get("verdicts", {})
    beh = provenance.get("judge_behaviour", {})
    rating = provenance.get("rating", {})
    level = int(round(100 * rating.get("level", 0.95)))
    lines = [
        "# referee leaderboard",
        "",
        f"Judge `{judge.get('name', '?')}` (id `{judge.get('id', '?')}`), "
        f"{provenance.get('candidates', {}).get('prompts', '?')} prompts, plan `{provenance.get('plan', {}).get('name', '?')}`. "
        f"Verdicts: {v.get('ok', 0)} ok, {v.get('unparseable', 0)} unparseable, {v.get('error', 0)} error.",
        "",
        f"| rank | system | rating | {level}% interval | rank range | win rate | verdicts | position consistency |",
        "|---:|---|---:|---|:---:|---:|---:|---:|",
    ]
    for r in rows:
        rr = f"{r['rank_min']}–{r['rank_max']}" if r["rank_min"] != r["rank_max"] else f"{r['rank_min']}"
        pc = "–" if r.get("position_consistency") is None else f"{100 * r['position_consistency']:.0f}%"
        mark = {"below": " ↓prior", "above": " ↑prior"}.get(r.get("unbounded") or "", "")
        warn = " ⚠ flagged" if r.get("flag") else ""
        lines.append(f"| {r['rank']} | {_md_escape(r['system'])}{warn} | {r['rating']:.0f}{mark} | {r['lower']:.0f} – {r['upper']:.0f} "
                     f"| {rr} | {100 * r['win_rate']:.1f}% | {r['verdicts']} | {pc} |")
    if "fidelity" in judge:
        lines += ["", _md_escape(fidelity_line(judge["fidelity"])) + "."]
    for r in rows:
        if r.get("flag"):
            lines += ["", f"**Warning: {_md_escape(r['system'])} is flagged as prompt-independent and listed below "
                      f"the others**: {_md_escape(r['flag'])}. Its verdicts do not mean it answers the prompts."]
    for note in rating.get("notes") or []:
        lines += ["", f"Note: {_md_escape(str(note))}"]
    pc = beh.get("position_consistency")
    lines += [
        "",
        f"Ratings: Bradley–Terry, {rating.get('scale', '')}; intervals: {rating.get('ci', '')} "
        f"({rating.get('n_boot', '')} replicates). Position consistency of the judge on this run: "
        f"{'–' if pc is None else f'{100 * pc:.0f}%'} of {beh.get('pairs_both_orders', 0)} pairs judged in both orders. "
        f"Truncated candidates: {beh.get('truncated_candidates', 0)}.",
        "",
        "Overlapping intervals or rank ranges mean these verdicts do not separate two systems at this level, "
        "not that the systems are equal. Plots, the win-rate matrix and every verdict: "
        "`report.html` in the run folder (`referee report RUN_DIR` writes it again).",
        "",
    ]
    return "\n".join(lines)


def fidelity_line(row: dict[str, Any] | None) -> str:
    """One line for the console and the leaderboard."""
    if row is None:
        return "judge fidelity: not measured for this judge (bench/judge_fidelity.py measures it)"
    parts = [f"clear-cut pairs {row['clear_cut_accuracy']:.0%}",
             f"gaming systems beaten {row['gaming_beaten']}/{row['gaming_total']}"]
    if row.get("spearman") is not None:
        parts.append(f"AlpacaEval vs Chatbot Arena Spearman {row['spearman']:.2f} "
                     f"(Kendall {row['kendall']:.2f}, {row['alpaca_prompts']} prompts)")
    if row.get("position_consistency") is not None:
        parts.append(f"position consistency {row['position_consistency']:.0%}")
    return f"judge fidelity ({row.get('config', '?')}, {row.get('measured', '?')}): " + ", ".join(parts)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def write_leaderboard(out_dir: str | Path, rows: list[dict[str, Any]], provenance: dict[str, Any]) -> None:
    """Write ``leaderboard.json``, ``leaderboard.csv``, ``leaderboard.md`` and ``run.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "leaderboard.json",
                  json.dumps({"leaderboard": rows, "judge": provenance.get("judge"),
                              "prompt_independence": provenance.get("prompt_independence"),
                              "rating": provenance.get("rating"), "verdicts": provenance.get("verdicts")},
                             indent=2, ensure_ascii=False) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k)) for k in COLUMNS})
    _write_atomic(out / "leaderboard.csv", buf.getvalue())
    _write_atomic(out / "leaderboard.md", leaderboard_markdown(rows, provenance))
    _write_atomic(out / "run.json", json.dumps(provenance, indent=2, ensure_ascii=False, default=str) + "\n")
