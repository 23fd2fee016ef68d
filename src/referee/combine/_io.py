"""Verdicts of several judges in, combined verdicts out: JSONL files and run stores.

Kept apart from the numeric modules: this is the only part of :mod:`referee.combine` that reads
or writes anything.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._jsonl import read_jsonl_objects
from ..errors import InputError
from ..outcomes import ENSEMBLE_PREFIX, decision, judge_outcomes
from ._ensemble import Ensemble

_SQLITE_MAGIC = b"SQLite format 3\x00"
_TIE = {"tie", "draw", "both", "neither", "0.5", "tie (bothbad)"}
_A = {"a", "model_a", "system_a"}
_B = {"b", "model_b", "system_b"}


@dataclass
class VerdictTable:
    """Pairwise verdicts of several judges on the same items, as an items x judges matrix.

    ``items[i]`` is ``(prompt_id, system_a, system_b)``; ``x[i, j]`` is judge ``j``'s P(system_a
    better) with both presentation orders averaged (``NaN``: no verdict); ``consistent[i, j]`` is 1/0
    when the judge saw both orders and gave the same/different winner, ``NaN`` otherwise;
    ``verdict_ids[(i, j)]`` lists the verdicts behind ``x[i, j]``.
    """

    items: list[tuple[str, str, str]]
    judges: list[str]
    x: np.ndarray
    consistent: np.ndarray
    verdict_ids: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    source: str = ""
    judge_specs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def index(self) -> dict[tuple[str, str, str], int]:
        return {it: i for i, it in enumerate(self.items)}


class _Builder:
    """Collects (judge, prompt, a, b, p, order) facts; orients every item as first seen."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, frozenset[str]], tuple[str, str, str]] = {}
        self.judges: dict[str, int] = {}
        self.cells: dict[tuple[tuple[str, str, str], str], dict[str, list]] = {}

    def add(self, judge: str, prompt_id: str, a: str, b: str, p_a: float, vid: str, *,
            consistent: bool | None = None) -> None:
        key = (prompt_id, frozenset((a, b)))
        item = self.items.setdefault(key, (prompt_id, a, b))
        self.judges.setdefault(judge, len(self.judges))
        if item[1] != a:
            p_a = 1.0 - p_a
        cell = self.cells.setdefault((item, judge), {"ab": [], "ba": [], "ids": [], "consistent": []})
        cell["ab" if item[1] == a else "ba"].append(p_a)
        cell["ids"].append(vid)
        if consistent is not None:
            cell["consistent"].append(bool(consistent))

    def build(self, source: str, specs: dict[str, dict[str, Any]] | None = None) -> VerdictTable:
        items = list(self.items.values())
        idx = {it: i for i, it in enumerate(items)}
        judges = list(self.judges)
        x = np.full((len(items), len(judges)), np.nan)
        cons = np.full_like(x, np.nan)
        ids: dict[tuple[int, int], list[str]] = {}
        for (item, judge), cell in self.cells.items():
            i, j = idx[item], self.judges[judge]
            ab, ba = cell["ab"], cell["ba"]
            # each order's mean, then their mean: repeats of one order must not outweigh the other
            x[i, j] = float(np.mean([np.mean(o) for o in (ab, ba) if o]))
            if ab and ba:  # both lists hold P(item's a better): the same three-way decision is consistent
                cons[i, j] = float(decision(float(np.mean(ab))) == decision(float(np.mean(ba))))
            elif cell["consistent"]:
                cons[i, j] = float(all(cell["consistent"]))
            ids[(i, j)] = cell["ids"]
        return VerdictTable(items=items, judges=judges, x=x, consistent=cons, verdict_ids=ids, source=source,
                            judge_specs=specs or {})


def parse_outcome(rec: dict[str, Any], path: Path, line: int) -> float:
    raw = rec.get("outcome", rec.get("p_a"))
    if raw is not None and raw != "":
        if isinstance(raw, str) and raw.strip().lower() in _A | _B | _TIE:
            rec = dict(rec, winner=raw)
        else:
            try:
                val = float(raw)
            except (TypeError, ValueError):
                raise InputError(f"outcome {raw!r} is neither a number in [0, 1] nor 'a', 'b' or 'tie'", path=path,
                                 line=line, field="outcome") from None
            if math.isnan(val) or not 0.0 <= val <= 1.0:
                raise InputError(f"outcome {val} is outside [0, 1] (P(system_a better))", path=path, line=line,
                                 field="outcome")
            return val
    w = rec.get("winner", rec.get("outcome"))
    if w is None or w == "":
        raise InputError("needs an 'outcome': P(system_a better) in [0, 1], or 'a', 'b' or 'tie'", path=path,
                         line=line, field="outcome")
    lw = str(w).strip().lower()
    if lw in _TIE:
        return 0.5
    if lw in _A or str(w) == rec.get("system_a"):
        return 1.0
    if lw in _B or str(w) == rec.get("system_b"):
        return 0.0
    raise InputError(f"winner {w!r} is neither 'a', 'b', 'tie' nor one of the two systems", path=path, line=line,
                     field="winner")


def read_verdicts_jsonl(path: str | Path) -> VerdictTable:
    """External verdicts, one JSON object a line, of three kinds (a judge uses one kind):

    - pairwise: ``prompt_id, system_a, system_b, judge, outcome`` (P(system_a better) in [0, 1], or
      ``a``/``b``/``tie``; ``winner`` is accepted too);
    - pointwise score: ``prompt_id, system, judge, score`` (any scale; higher is better);
    - binary check: ``prompt_id, system, judge, passed`` (true/false).

    Optional: ``verdict_id`` (default ``FILE:LINE``) and, for pairwise rows, ``consistent`` (the
    judge's own position-consistency flag). The same pairwise judge on the same pair in both orders
    is averaged and its position consistency computed, as for stored verdicts. Pointwise and binary
    verdicts become one pairwise verdict per pair of systems a judge scored on a prompt: a check
    gives 1, 0.5 or 0; a score difference is divided by that judge's median absolute difference and
    squashed with a logistic (so judges on 1-10, 0-1 or logit scales weigh alike).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    b = _Builder()
    point: dict[str, dict[str, dict[str, tuple[float, str]]]] = {}  # judge -> prompt -> system -> (value, id)
    kind_of: dict[str, tuple[str, int]] = {}
    for line, rec in read_jsonl_objects(path):
        pointwise = "system" in rec and "system_a" not in rec
        need = ("prompt_id", "system", "judge") if pointwise else ("prompt_id", "system_a", "system_b", "judge")
        for f in need:
            if rec.get(f) is None or rec.get(f) == "":
                raise InputError(f"missing {f}", path=path, line=line, field=f)
        judge = str(rec["judge"])
        vid = str(rec.get("verdict_id") or f"{path.name}:{line}")
        if pointwise:
            if isinstance(rec.get("passed"), bool):
                kind, val = "binary", float(rec["passed"])
            elif rec.get("score") is not None and not isinstance(rec.get("score"), bool):
                try:
                    val = float(rec["score"])
                except (TypeError, ValueError):
                    raise InputError(f"score {rec['score']!r} is not a number", path=path, line=line,
                                     field="score") from None
                if not math.isfinite(val):
                    raise InputError("score must be finite", path=path, line=line, field="score")
                kind = "score"
            else:
                raise InputError("a pointwise verdict needs a numeric 'score' or a true/false 'passed'", path=path,
                                 line=line, field="score")
        else:
            kind = "pairwise"
        first = kind_of.setdefault(judge, (kind, line))
        if first[0] != kind:
            raise InputError(f"judge {judge!r} gave {first[0]} verdicts (line {first[1]}) and now a {kind} one; "
                             f"one kind a judge", path=path, line=line, field="judge")
        if pointwise:
            point.setdefault(judge, {}).setdefault(str(rec["prompt_id"]), {})[str(rec["system"])] = (val, vid)
            continue
        a, s_b = str(rec["system_a"]), str(rec["system_b"])
        if a == s_b:
            raise InputError(f"compares {a!r} with itself", path=path, line=line, field="system_b")
        p = parse_outcome(rec, path, line)
        cons = rec.get("consistent")
        if cons is not None and not isinstance(cons, bool):
            raise InputError(f"consistent must be true, false or null, got {cons!r}", path=path, line=line,
                             field="consistent")
        b.add(judge, str(rec["prompt_id"]), a, s_b, p, vid, consistent=cons)
    for judge, prompts in point.items():
        binary = kind_of[judge][0] == "binary"
        diffs = [abs(va[0] - vb[0]) for sc in prompts.values() for x, va in sc.items() for y, vb in sc.items()
                 if x < y and va[0] != vb[0]]
        scale = float(np.median(diffs)) if diffs else 1.0
        for pid, sc in prompts.items():
            systems = list(sc)
            for i in range(len(systems)):
                for j in range(i + 1, len(systems)):
                    x, y = systems[i], systems[j]
                    item = b.items.get((pid, frozenset((x, y))))
                    if item is not None and item[1] == y:
                        x, y = y, x
                    d = sc[x][0] - sc[y][0]
                    p = (0.5 + 0.5 * float(np.sign(d))) if binary else 1.0 / (1.0 + math.exp(-d / scale))
                    b.add(judge, pid, x, y, p, sc[x][1])
                    key = (b.items[(pid, frozenset((x, y)))], judge)
                    b.cells[key]["ids"].append(sc[y][1])
    if not b.items:
        raise InputError("holds no verdicts (a pointwise judge needs two systems on a prompt)", path=path)
    return b.build(str(path))


def is_store(path: Path) -> bool:
    if path.is_dir():
        return (path / "verdicts.sqlite").is_file()
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(16) == _SQLITE_MAGIC


def store_path(path: str | Path) -> Path:
    path = Path(path)
    return path / "verdicts.sqlite" if path.is_dir() else path


def read_verdicts_store(path: str | Path, judges: list[str] | None = None, *,
                        include_ensembles: bool = False) -> VerdictTable:
    """Verdicts of a run's store as pairwise outcomes, both orders combined per judge; pointwise,
    verifier and listwise judges' verdicts are turned into pairs as the rank pipeline does.

    Judges are given by id or by the ``name``/``backend.model`` of their spec; by default every
    judge except earlier ensembles.
    """
    from ..store import VerdictStore

    sp = store_path(path)
    store = VerdictStore.open(sp)
    try:
        specs = store.judges()
        chosen = select_judges(specs, judges, include_ensembles=include_ensembles, path=sp)
        b = _Builder()
        for jid in chosen:
            for o in judge_outcomes(store, jid):
                b.add(jid, o.prompt_id, o.system_a, o.system_b, o.p_a, "", consistent=None)
                item = b.items[(o.prompt_id, frozenset((o.system_a, o.system_b)))]
                cell = b.cells[(item, jid)]
                cell["ids"][-1:] = o.verdict_ids
                if o.consistent is not None:
                    cell["consistent"].append(bool(o.consistent))
    finally:
        store.close()
    if not b.items:
        raise InputError("holds no usable pairwise verdicts", path=sp)
    return b.build(str(sp), {j: specs[j] for j in chosen})


def select_judges(specs: dict[str, dict[str, Any]], wanted: list[str] | None, *, include_ensembles: bool,
                  path: Path) -> list[str]:
    if not wanted:
        out = [j for j in specs if include_ensembles or not j.startswith(ENSEMBLE_PREFIX)]
        if not out:
            raise InputError("holds no judges", path=path)
        return out
    out = []
    for w in wanted:
        hits = [j for j, s in specs.items() if w in (j, s.get("name"), (s.get("backend") or {}).get("model"))]
        if not hits:
            raise InputError(f"no judge {w!r}; the store has {', '.join(specs) or 'none'}", path=path, field="judges")
        out.extend(h for h in hits if h not in out)
    return out


def read_verdicts(path: str | Path, judges: list[str] | None = None) -> VerdictTable:
    """A run store (SQLite file or run folder) or a JSONL of external verdicts, restricted to ``judges``."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    if is_store(path):
        return read_verdicts_store(path, judges)
    if path.is_dir():
        raise InputError("is a folder without verdicts.sqlite; give a run folder, a store or a JSONL file", path=path)
    table = read_verdicts_jsonl(path)
    if judges:
        missing = [j for j in judges if j not in table.judges]
        if missing:
            raise InputError(f"no verdicts of judge(s) {', '.join(missing)}; the file has {', '.join(table.judges)}",
                             path=path, field="judge")
        cols = [table.judges.index(j) for j in judges]
        keep = ~np.all(np.isnan(table.x[:, cols]), axis=1)
        rows = np.flatnonzero(keep)
        remap = {int(r): n for n, r in enumerate(rows)}
        ids = {(remap[i], cols.index(j)): v for (i, j), v in table.verdict_ids.items() if i in remap and j in cols}
        table = VerdictTable(items=[table.items[r] for r in rows], judges=list(judges), x=table.x[np.ix_(rows, cols)],
                             consistent=table.consistent[np.ix_(rows, cols)], verdict_ids=ids, source=table.source)
    return table


def ensemble_id(table: VerdictTable, ens: Ensemble) -> str:
    """Stable id of an ensemble judge: its method and members (kept and dropped), and its dependent
    units, answer levels and an asymmetric label model when there are any (so ids of ensembles
    without them did not change)."""
    spec: dict[str, Any] = {"method": ens.method, "members": sorted(table.judges), "kept": sorted(ens.kept)}
    if ens.units:
        spec["units"] = sorted(sorted(u) for u in ens.units)
    if ens.levels != 1:
        spec["levels"] = ens.levels
    if not ens.symmetric:
        spec["symmetric"] = False
    if ens.tie_broken is not None:
        spec["tie_break"] = True
    blob = json.dumps(spec)
    return ENSEMBLE_PREFIX + hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensemble_spec(table: VerdictTable, ens: Ensemble) -> dict[str, Any]:
    return {"mode": "pairwise", "method": f"label-free ensemble ({ens.method})", "name": f"ensemble-{ens.method}",
            "members": list(table.judges), "kept": ens.kept,
            "dropped": {m.name: m.reason for m in ens.members if not m.kept},
            "accuracy": {m.name: m.accuracy for m in ens.members if m.kept}, "prior": ens.prior,
            "units": ens.units, "levels": ens.levels, "symmetric": ens.symmetric, "notes": ens.notes,
            "tie_weights": {m.name: m.tie_weight for m in ens.members if m.tie_weight}}


def combined_rows(table: VerdictTable, ens: Ensemble, *, judge_id: str | None = None) -> list[dict[str, Any]]:
    """One record per decided item: ``p_a``, the members' own verdicts, their agreement and position consistency.

    Items without a non-tie verdict of a kept member (``ens.voted`` false: every member said tie, or
    none judged the item) get no record: their ``p`` is the model's prior, not a verdict, and a stored
    or rated 0.5 would pass it on as a tie nobody declared (``ens.notes`` counts them).
    ``agreement`` is the share of members with a non-tie verdict on the item that side with the
    combined verdict (``None`` when none did, or the combined verdict is a tie); ``consistent`` is
    false when any member that saw both orders changed its mind, ``None`` when none saw both.
    """
    jid = judge_id or ensemble_id(table, ens)
    rows = []
    for i, (pid, a, b) in enumerate(table.items):
        if ens.voted is not None and not ens.voted[i]:
            continue
        p = float(ens.p[i])
        dec = 0 if p == 0.5 else (1 if p > 0.5 else -1)
        members, sides, ids = {}, [], []
        for j, name in enumerate(table.judges):
            val = table.x[i, j]
            if np.isnan(val):
                continue
            members[name] = round(float(val), 6)
            if val != 0.5:
                sides.append(1 if val > 0.5 else -1)
            ids.extend(table.verdict_ids.get((i, j), []))
        agree = (sum(s == dec for s in sides) / len(sides)) if sides and dec else None
        c = table.consistent[i]
        c = c[~np.isnan(c)]
        tb = ens.tie_broken is not None and bool(ens.tie_broken[i])
        rows.append({"prompt_id": pid, "system_a": a, "system_b": b, "p_a": round(p, 6), "judge": jid,
                     **({"tie_broken": True} if tb else {}),
                     "n_judges": len(members), "agreement": None if agree is None else round(agree, 6),
                     "consistent": None if c.size == 0 else bool(c.all()), "members": members,
                     "verdict_ids": ids})
    return rows


def store_ensemble(path: str | Path, table: VerdictTable, ens: Ensemble) -> str:
    """Store the combined verdicts as a judge of their own (mode ``pairwise``, members in its spec).

    One verdict per item with ``systems = [system_a, system_b]`` and ``p_first = p_a``; ``detail``
    keeps the members' verdicts, their ids, agreement and consistency. Storing again replaces the
    earlier combined verdicts of the same ensemble. Returns the ensemble's judge id.
    """
    from ..store import Verdict, VerdictStore, question_key, verdict_id

    jid = ensemble_id(table, ens)
    spec = ensemble_spec(table, ens)
    store = VerdictStore(store_path(path))
    try:
        store.register_judge(jid, spec)
        for r in combined_rows(table, ens, judge_id=jid):
            q = question_key(jid, "pairwise", r["prompt_id"], [r["system_a"], r["system_b"]])
            store.put(Verdict(verdict_id=verdict_id(q, r["prompt_id"], [r["system_a"], r["system_b"]]), question=q,
                              judge_id=jid, mode="pairwise", prompt_id=r["prompt_id"],
                              systems=[r["system_a"], r["system_b"]], status="ok", p_first=r["p_a"],
                              detail={"members": r["members"], "member_verdict_ids": r["verdict_ids"],
                                      "agreement": r["agreement"], "consistent": r["consistent"]}),
                      replace=True)  # recomputed from the members' current verdicts, not asked: it supersedes
    finally:
        store.close()
    return jid


def ensemble_outcomes(path: str | Path, judges: list[str] | None = None, *, method: str = "dawid-skene",
                      store: bool = True, groups: list[list[str]] | None = None):
    """Combined :class:`~referee.store.PairOutcome` rows of several judges in a run store, ready for
    rating (:func:`referee.outcomes.rate_run`): the hook for ``rank --judges A,B,C``.

    Combines the judges' verdicts without labels, stores the ensemble as a judge of its own (unless
    ``store=False``) and returns one outcome per decided item (see :func:`combined_rows`) with
    ``judge_id`` the ensemble's id, ``p_a`` the combined probability, ``consistent`` false when any
    member changed its verdict with the order, and the members' verdict ids. ``groups`` lists judge
    ids known to share their errors (see :func:`~referee.combine.combine`). Also returns the
    :class:`Ensemble` (for its member table).
    """
    from ..store import PairOutcome
    from ._ensemble import combine

    table = read_verdicts_store(path, judges)
    ens = combine(table.x, table.judges, method=method, groups=groups)
    jid = store_ensemble(path, table, ens) if store else ensemble_id(table, ens)
    outs = [PairOutcome(judge_id=jid, prompt_id=r["prompt_id"], system_a=r["system_a"], system_b=r["system_b"],
                        p_a=r["p_a"], consistent=r["consistent"], verdict_ids=r["verdict_ids"])
            for r in combined_rows(table, ens, judge_id=jid)]
    return outs, ens
