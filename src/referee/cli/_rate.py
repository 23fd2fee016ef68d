"""``referee rate VERDICTS``: ratings with intervals from stored or tabulated pairwise verdicts."""

from __future__ import annotations

import csv
import json
import math
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .._jsonl import read_jsonl_objects
from ..errors import InputError, RatingError
from . import app

_SQLITE_MAGIC = b"SQLite format 3\x00"
_TIE_WORDS = {"tie", "draw", "tie (bothbad)", "both", "neither", "0.5"}
_A_WORDS = {"a", "model_a", "system_a", "1"}
_B_WORDS = {"b", "model_b", "system_b", "2"}


class Method(str, Enum):
    bt = "bt"
    elo = "elo"


class CI(str, Enum):
    bootstrap = "bootstrap"
    sandwich = "sandwich"
    none = "none"


class PairwiseData:
    """Pairwise verdicts as columns: names, outcome P(a better), weight, prompt, covariates."""

    def __init__(self) -> None:
        self.system_a: list[str] = []
        self.system_b: list[str] = []
        self.outcome: list[float] = []
        self.weight: list[float] = []
        self.prompt: list[str | None] = []
        self.covariates: list[list[float]] = []
        self.text_a: list[str | None] = []
        self.text_b: list[str | None] = []
        self.outcomes: list | None = None  # from a run store: its outcomes, rated as ``rank`` rates them
        self.run: dict = {}


def _outcome_from(rec: dict, path: Path, line: int) -> float:
    if rec.get("outcome") not in (None, ""):
        raw = rec["outcome"]
        try:
            val = float(raw)
        except (TypeError, ValueError):
            raise InputError(f"outcome {raw!r} is not a number in [0, 1]", path=path, line=line,
                             field="outcome") from None
        if not (0.0 <= val <= 1.0) or math.isnan(val):
            raise InputError(f"outcome {val} is outside [0, 1] (P(system_a better); 0.5 = tie)",
                             path=path, line=line, field="outcome")
        return val
    if rec.get("winner") not in (None, ""):
        w = str(rec["winner"]).strip()
        lw = w.lower()
        if lw in _TIE_WORDS:
            return 0.5
        if lw in _A_WORDS or w == rec["system_a"]:
            return 1.0
        if lw in _B_WORDS or w == rec["system_b"]:
            return 0.0
        raise InputError(f"winner {w!r} is neither 'a', 'b', 'tie' nor one of the two systems",
                         path=path, line=line, field="winner")
    raise InputError("needs an 'outcome' (P(system_a better), 0.5 = tie) or a 'winner' ('a', 'b', 'tie' or a "
                     "system name)", path=path, line=line, field="outcome")


def _add(data: PairwiseData, rec: dict, path: Path, line: int, covariates: list[str]) -> None:
    for f in ("system_a", "system_b"):
        if rec.get(f) in (None, ""):
            raise InputError(f"missing {f}", path=path, line=line, field=f)
    rec = dict(rec, system_a=str(rec["system_a"]), system_b=str(rec["system_b"]))
    if rec["system_a"] == rec["system_b"]:
        raise InputError(f"compares {rec['system_a']!r} with itself", path=path, line=line, field="system_b")
    o = _outcome_from(rec, path, line)
    w = 1.0
    if rec.get("weight") not in (None, ""):
        try:
            w = float(rec["weight"])
        except (TypeError, ValueError):
            raise InputError(f"weight {rec['weight']!r} is not a number", path=path, line=line,
                             field="weight") from None
        if not (w >= 0 and math.isfinite(w)):
            raise InputError(f"weight {w} must be finite and non-negative", path=path, line=line, field="weight")
    cov = []
    for c in covariates:
        if rec.get(c) in (None, ""):
            raise InputError("missing covariate value", path=path, line=line, field=c)
        try:
            v = float(rec[c])
        except (TypeError, ValueError):
            raise InputError(f"covariate value {rec[c]!r} is not a number", path=path, line=line, field=c) from None
        if not math.isfinite(v):
            raise InputError("covariate value must be finite", path=path, line=line, field=c)
        cov.append(v)
    data.system_a.append(rec["system_a"])
    data.system_b.append(rec["system_b"])
    data.outcome.append(o)
    data.weight.append(w)
    p = rec.get("prompt_id")
    data.prompt.append(None if p in (None, "") else str(p))
    data.covariates.append(cov)
    for side, out in (("a", data.text_a), ("b", data.text_b)):
        t = rec.get(f"text_{side}", rec.get(f"output_{side}"))
        out.append(None if t is None else str(t))


def _read_store(data: PairwiseData, path: Path, judge: str | None) -> None:
    """A run store's outcomes, the way ``rank`` rates them (:mod:`referee.outcomes`), with the texts
    they judged (for ``--style``) and the run's system order and plan (for the same fit as ``rank``)."""
    from ..outcomes import judge_outcomes
    from ..store import VerdictStore

    store = VerdictStore.open(path)
    try:
        outcomes = judge_outcomes(store, _choose_judge(store, path, judge))
        texts = {k: c["output"] for k, c in store.candidates().items()}
        run = store.last_run() or {}
    finally:
        store.close()
    data.outcomes = outcomes
    data.run = run
    for r in outcomes:
        data.system_a.append(r.system_a)
        data.system_b.append(r.system_b)
        data.outcome.append(float(r.p_a))
        data.weight.append(float(r.weight))
        data.prompt.append(str(r.prompt_id))
        data.covariates.append([])
        data.text_a.append(texts.get((r.prompt_id, r.system_a)))
        data.text_b.append(texts.get((r.prompt_id, r.system_b)))


def _store_file(path: Path) -> Path | None:
    """The SQLite verdict store that ``path`` names (the file or its run folder), if it is one."""
    cand = path / "verdicts.sqlite" if path.is_dir() else path
    if not cand.is_file():
        return None
    with open(cand, "rb") as f:
        return cand if f.read(16) == _SQLITE_MAGIC else None


def _choose_judge(store, path: Path, judge: str | None) -> str | None:
    judges = list(store.judges())
    if judge is None and len(judges) > 1:
        raise InputError(f"holds verdicts of {len(judges)} judges ({', '.join(judges)}); choose one with "
                         f"--judge (ratings of different judges are not comparable)", path=path)
    if judge is not None and judge not in judges:
        raise InputError(f"no judge {judge!r}; the store has {', '.join(judges) or 'none'}", path=path,
                         field="--judge")
    return judge if judge is not None else (judges[0] if judges else None)


def _sharded_sums(path: Path, judge: str | None):
    """A sharded store's unique-pair sums, aggregated in DuckDB (:func:`referee.outcomes.pair_sums`);
    ``None`` for anything else (tables, unsharded stores, listwise judges and ensembles), which
    take the Python road."""
    from ..outcomes import pair_sums
    from ..store import VerdictStore

    sp = _store_file(path) if path.exists() else None
    if sp is None:
        return None
    with VerdictStore.open(sp) as store:
        if not store.shards():
            return None
        jid = _choose_judge(store, sp, judge)
        mode = (store.judges().get(jid) or {}).get("mode", "pairwise")
        if jid is None or jid.startswith("ens-") or mode not in ("pairwise", "pointwise", "verifier"):
            return None
        return pair_sums(store, jid)


def read_pairwise(path: Path, covariates: list[str], judge: str | None = None) -> PairwiseData:
    """Read pairwise verdicts from a verdict store, a JSONL file or a CSV file."""
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        cand = path / "verdicts.sqlite"
        if not cand.exists():
            raise InputError("is a folder; give a verdicts file or a run folder with verdicts.sqlite", path=path)
        path = cand
    with open(path, "rb") as f:
        head = f.read(16)
    data = PairwiseData()
    if head == _SQLITE_MAGIC:
        if covariates:
            raise InputError("covariates can only be read from JSONL/CSV input", path=path, field="covariate")
        _read_store(data, path, judge)
    elif path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for line, rec in enumerate(reader, start=2):
                _add(data, rec, path, line, covariates)
    else:
        for line, rec in read_jsonl_objects(path):
            _add(data, rec, path, line, covariates)
    if not data.outcome:
        raise InputError("holds no pairwise verdicts", path=path)
    return data


@app.command("rate")
def rate(
    verdicts: Path = typer.Argument(..., help="a run's verdict store (SQLite, or its run folder), or a JSONL/CSV "
                                             "with system_a, system_b, outcome (P(a better)) or winner, "
                                             "optional weight, prompt_id and covariate columns"),
    method: Method = typer.Option(Method.bt, help="bt: Bradley-Terry maximum likelihood; elo: online Elo "
                                                  "(depends on the order of the verdicts)"),
    ci: CI = typer.Option(CI.bootstrap, help="interval method"),
    n_boot: int = typer.Option(1000, "--n-boot", min=2, help="bootstrap replicates"),
    seed: int = typer.Option(0, help="bootstrap seed (same seed, same table)"),
    level: float = typer.Option(0.95, min=0.5, max=0.999, help="confidence level"),
    anchor: str | None = typer.Option(None, help="system fixed at --base (default: the mean is --base)"),
    scale: float = typer.Option(400.0, help="rating points per factor of 10 in the odds"),
    base: float = typer.Option(1000.0, help="rating of the anchor, or mean rating"),
    reg: float | None = typer.Option(None, min=0.0, help="Gaussian prior that shrinks ratings together. Default: "
                                                        "none; on a run folder, as rank: none, or a weak stated "
                                                        "prior where a system never lost or never won"),
    covariate: list[str] = typer.Option([], "--covariate", help="column holding a per-verdict covariate "
                                                               "(a minus b); repeat for several: fits a "
                                                               "style-controlled Bradley-Terry"),
    style: bool = typer.Option(False, "--style", help="control for style: length and markdown headers, lists "
                                                     "and bold, computed from text_a/text_b (or output_a/"
                                                     "output_b) fields"),
    by_prompt: bool = typer.Option(True, "--by-prompt/--by-verdict", help="treat verdicts about one prompt as "
                                                                           "correlated (clustered sandwich, "
                                                                           "bootstrap over prompts) when every "
                                                                           "verdict has a prompt_id"),
    judge: str | None = typer.Option(None, help="judge id, when the store holds several"),
    k: float = typer.Option(4.0, help="Elo K-factor"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write the ratings as JSON here"),
) -> None:
    """Rate systems from pairwise verdicts: ratings, confidence intervals and rank ranges."""
    import numpy as np

    from ..rate import STYLE_FEATURES, rate_pair_sums, rate_pairwise, style_controlled_bt, style_covariates

    sums = _sharded_sums(verdicts, judge) if (method is Method.bt and ci is CI.sandwich and not covariate
                                              and not style) else None
    if sums is not None:
        try:
            table = rate_pair_sums(sums.systems, sums.pairs, sums.n_outcomes, level=level, anchor=anchor, scale=scale,
                                   base=base, reg=reg or 0.0, cluster_meat=sums.cluster_meat if by_prompt else None,
                                   n_clusters=sums.n_clusters)
        except RatingError as e:
            raise RatingError(f"{verdicts}: {e}") from None
        finally:
            sums.close()
        _show(table, table.n_verdicts, output, None)
        return
    data = read_pairwise(verdicts, covariate, judge)
    systems = sorted(set(data.system_a) | set(data.system_b))
    if anchor is not None and anchor not in systems:
        raise InputError(f"anchor system {anchor!r} does not appear in the verdicts", field="anchor")
    idx = {s: i for i, s in enumerate(systems)}
    a = [idx[s] for s in data.system_a]
    b = [idx[s] for s in data.system_b]
    clusters = data.prompt if by_prompt and all(p is not None for p in data.prompt) else None
    effects = None
    cov_names = list(covariate)
    cov_values = np.asarray(data.covariates, dtype=np.float64).reshape(len(data.outcome), len(covariate))
    if style:
        missing = [i for i, (x, y) in enumerate(zip(data.text_a, data.text_b)) if x is None or y is None]
        if missing:
            raise InputError(f"--style needs the answers' texts in text_a/text_b (or output_a/output_b); "
                             f"{len(missing)} verdict(s) lack them, the first is verdict {missing[0] + 1}",
                             path=verdicts, field="text_a")
        cov_values = np.hstack([style_covariates(data.text_a, data.text_b), cov_values])
        cov_names = list(STYLE_FEATURES) + cov_names
        # A feature absent from every answer (e.g., no headers anywhere) cannot be estimated; drop it.
        keep = np.std(cov_values, axis=0) > 0
        if not keep.all():
            Console(stderr=True).print(f"[yellow]note[/]: no variation in "
                                       f"{', '.join(n for n, k in zip(cov_names, keep) if not k)}; not controlled")
        cov_values, cov_names = cov_values[:, keep], [n for n, k in zip(cov_names, keep) if k]
    same_as_rank = (data.outcomes is not None and method is Method.bt and ci is CI.bootstrap and not cov_names
                    and anchor is None and scale == 400.0 and base == 1000.0 and by_prompt)
    try:
        if same_as_rank:
            from ..outcomes import rate_run

            order = [s for s in ((data.run.get("candidates") or {}).get("systems") or []) if s in idx]
            order += [s for s in systems if s not in order]
            table = rate_run(order, data.outcomes, n_boot=n_boot, seed=seed, level=level, reg=reg,
                             plan=(data.run.get("options") or {}).get("plan") or "round-robin").table
        elif cov_names:
            if method is not Method.bt or ci is not CI.sandwich:
                Console(stderr=True).print("[yellow]note[/]: with covariates the fit is a style-controlled "
                                           "Bradley-Terry with sandwich intervals")
            fit = style_controlled_bt(systems, a, b, data.outcome, cov_values, data.weight, names=cov_names,
                                      level=level, anchor=anchor, scale=scale, base=base,
                                      cluster=clusters)
            table = fit.table
            effects = fit.effects()
        else:
            table = rate_pairwise(systems, a, b, data.outcome, data.weight, method=method.value, ci=ci.value,
                                  n_boot=n_boot, seed=seed, level=level, anchor=anchor, scale=scale, base=base,
                                  reg=reg or 0.0, k=k, cluster=clusters)
    except RatingError as e:
        raise RatingError(f"{verdicts}: {e}") from None

    _show(table, len(data.outcome), output, fit if effects is not None else None)


def _show(table, n_verdicts: int, output: Path | None, fit) -> None:
    records = table.to_records()
    effects = None if fit is None else fit.effects()
    t = Table(title=f"{len(table.systems)} systems, {n_verdicts} verdicts ({table.method}, {table.ci} "
                    f"{table.level:.0%} intervals)")
    for col in ("rank", "system", "rating", "interval", "n", "win rate"):
        t.add_column(col, justify="left" if col == "system" else "right")
    for r in records:
        rank = str(r["rank_min"]) if r["rank_min"] == r["rank_max"] else f"{r['rank_min']}-{r['rank_max']}"
        t.add_row(rank, r["system"], f"{r['rating']:.1f}", f"{r['lower']:.1f} .. {r['upper']:.1f}", str(r["n"]),
                  f"{100 * r['win_rate']:.1f}%")
    console = Console()
    console.print(t)
    for note in table.notes:
        console.print(f"[dim]note: {note}[/]")
    if effects is not None:
        for e in fit.describe():
            console.print(e)
    if output is not None:
        doc = {"ratings": records, "fit": table.fit_info()}
        if effects is not None:
            doc["covariate_effects"] = effects
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {output}")
