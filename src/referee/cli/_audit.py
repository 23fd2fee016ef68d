"""``referee audit VERDICTS``: how far to trust a judge, with and without human labels."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from . import app
from ._combine import _split

console = Console()


def _family_of(spec: dict) -> str | None:
    model = str((spec.get("backend") or {}).get("model") or spec.get("name") or "")
    m = re.match(r"[A-Za-z]+", Path(model).name)
    return m.group(0).lower() if m and len(m.group(0)) >= 3 else None


def _fmt(m) -> tuple[str, str]:
    if m.value is None:
        return "–", "–"
    pct = not (m.name.startswith("cohen") or m.name.startswith("kappa") or m.name == "ece")
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.3f}")
    ci = "–" if m.lo is None else f"{f(m.lo)} – {f(m.hi)}"
    return f(m.value), ci


@app.command("audit")
def audit_cmd(
    verdicts: Path = typer.Argument(..., help="a run folder / verdict store, or a JSONL of verdicts with prompt_id, "
                                             "system_a, system_b, judge, outcome"),
    judge: Optional[str] = typer.Option(None, "--judge", help="comma-separated judge(s) to audit (default: all)"),
    labels: Optional[Path] = typer.Option(None, "--labels", help="JSONL of prompt_id, system_a, system_b, label "
                                                                  "(P(a better), or a/b/tie)"),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="candidates file, for answer lengths "
                                                                         "(a run store has them)"),
    family: Optional[str] = typer.Option(None, "--family", help="the judge's model family, to measure "
                                                                "self-preference (guessed from the judge's model)"),
    n_boot: int = typer.Option(1000, "--n-boot", min=10, help="bootstrap replicates"),
    seed: int = typer.Option(0, help="bootstrap seed"),
    level: float = typer.Option(0.95, min=0.5, max=0.999, help="interval level"),
    by_prompt: bool = typer.Option(True, "--by-prompt/--by-item", help="bootstrap over prompts (verdicts on one "
                                                                        "prompt are correlated) or over items"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the report(s) as JSON"),
) -> None:
    """Agreement and Cohen's κ with labels, position consistency, length and self-preference, calibration
    (ECE); without labels, the label-free parts and agreement with the other judges."""
    from ..audit import align_labels, audit_judge, read_labels
    from ..combine import read_verdicts
    from ..combine import is_store, store_path

    table = read_verdicts(verdicts)
    chosen = _split(judge) or list(table.judges)
    specs = table.judge_specs
    for j in chosen:
        if j not in table.judges:
            hits = [k for k, s in specs.items() if j in (s.get("name"), (s.get("backend") or {}).get("model"))]
            if not hits:
                from ..errors import InputError
                raise InputError(f"no judge {j!r}; found {', '.join(table.judges)}", path=verdicts, field="judge")
            chosen[chosen.index(j)] = hits[0]
    texts: dict[tuple[str, str], str] = {}
    if is_store(verdicts):
        from ..store import VerdictStore
        with VerdictStore.open(store_path(verdicts)) as st:
            texts = {k: c["output"] for k, c in st.candidates().items()}
    if candidates is not None:
        from ..load import load_candidates
        cset = load_candidates(candidates, allow_missing=True)
        texts.update({k: c.output for k, c in cset.candidates.items()})
    y = align_labels(table.items, read_labels(labels)) if labels is not None else None
    lens = None
    if texts:
        la = np.array([len(texts[(p, a)]) if (p, a) in texts else np.nan for p, a, _ in table.items], dtype=float)
        lb = np.array([len(texts[(p, b)]) if (p, b) in texts else np.nan for p, _, b in table.items], dtype=float)
        lens = (la, lb)
    cluster = np.array([p for p, _, _ in table.items]) if by_prompt else None
    reports = []
    for jid in chosen:
        j = table.judges.index(jid)
        have = ~np.isnan(table.x[:, j])
        fam = family or _family_of(specs.get(jid, {}))
        fa = fb = None
        if fam:
            fa = np.array([fam.lower() in a.lower() for _, a, _ in table.items])[have]
            fb = np.array([fam.lower() in b.lower() for _, _, b in table.items])[have]
        others = {table.judges[k]: table.x[have, k] for k in range(len(table.judges)) if k != j}
        rep = audit_judge(table.x[have, j], None if y is None else y[have], judge=jid,
                          consistent=table.consistent[have, j],
                          len_a=None if lens is None else lens[0][have], len_b=None if lens is None else lens[1][have],
                          family_a=fa, family_b=fb, others=others,
                          cluster=None if cluster is None else cluster[have], n_boot=n_boot, seed=seed, level=level)
        reports.append(rep)
        name = specs.get(jid, {}).get("name")
        t = Table(title=f"audit of {jid}" + (f" ({name})" if name and name != jid else "")
                        + f" — {int(have.sum())} items" + ("" if y is None else f", {int((~np.isnan(y[have])).sum())} labelled"))
        t.add_column("metric")
        t.add_column("value", justify="right")
        t.add_column(f"{int(round(100 * level))}% CI", justify="right")
        t.add_column("n", justify="right")
        t.add_column("note")
        for m in rep.metrics:
            v, ci = _fmt(m)
            t.add_row(m.name, v, ci, str(m.n), m.note)
        console.print(t)
        if rep.reliability:
            console.print("reliability: " + "  ".join(f"[{b['lo']:.2f},{b['hi']:.2f}) n={b['n']} "
                                                      f"conf {b['confidence']:.2f} acc {b['accuracy']:.2f}"
                                                      for b in rep.reliability), highlight=False)
    if y is None:
        console.print("[dim]no --labels: label-free parts only (consistency, length/self preference, agreement "
                      "with the other judges)[/]")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps([r.to_dict() for r in reports], indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {output}", highlight=False)
