"""Where export and select get their verdicts and texts: a run store, a combined JSONL or raw verdicts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..combine import combine, combined_rows, is_store, read_verdicts, store_path
from ..outcomes import ENSEMBLE_PREFIX
from ..errors import InputError


@dataclass
class Preferences:
    """Combined pairwise records plus the texts they are about."""

    records: list[dict[str, Any]]
    prompts: dict[str, str]
    outputs: dict[tuple[str, str], str]
    judge: str
    notes: list[str] = field(default_factory=list)
    flagged: dict[str, str] = field(default_factory=dict)
    """Systems the latest ``rank`` flagged as prompt-independent, with the reasons."""


def _texts_from_candidates(path: str | Path) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    from ..load import load_candidates

    cset = load_candidates(path, allow_missing=True)
    return ({pid: p.text for pid, p in cset.prompts.items()},
            {key: c.output for key, c in cset.candidates.items()})


def _stored_ensemble_records(sp: Path, jid: str) -> list[dict[str, Any]]:
    from ..store import VerdictStore

    with VerdictStore.open(sp) as store:
        recs = []
        for v in store.verdicts(judge_id=jid, mode="pairwise"):
            if v.status != "ok":
                continue
            d = v.detail
            recs.append({"prompt_id": v.prompt_id, "system_a": v.systems[0], "system_b": v.systems[1],
                         "p_a": v.p_first, "judge": jid, "agreement": d.get("agreement"),
                         "consistent": d.get("consistent"), "n_judges": len(d.get("members") or {}),
                         "members": d.get("members"), "verdict_ids": d.get("member_verdict_ids") or [v.verdict_id]})
    return recs


def _is_combined_jsonl(path: Path) -> bool:
    with open(path, encoding="utf-8") as f:
        for text in f:
            if text.strip():
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError:
                    return False
                return isinstance(rec, dict) and "p_a" in rec and "members" in rec
    return False


def _flagged(run: dict[str, Any] | None) -> dict[str, str]:
    screen = (run or {}).get("prompt_independence") or {}
    systems = screen.get("systems") or {}
    return {s: "; ".join(systems.get(s, {}).get("reasons") or ["flagged"]) for s in screen.get("flagged") or []}


def load_preferences(path: str | Path, *, judges: list[str] | None = None, candidates: str | Path | None = None,
                     method: str = "dawid-skene", need_texts: bool = True, tie_break: bool = False) -> Preferences:
    """Combined verdicts and texts from a run store, a ``referee combine`` JSONL or external verdicts.

    From a store: a stored ensemble judge when there is one (or the one named in ``judges``), else
    the judges' verdicts combined here without labels (a single judge's verdicts are used as they
    are). Texts come from the store, or from ``candidates`` (required for JSONL input unless
    ``need_texts=False``). ``tie_break`` combines here (never a stored ensemble), letting the judges
    screened out as near chance order what the kept ones leave tied (see :func:`~referee.combine.combine`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    notes: list[str] = []
    flagged: dict[str, str] = {}
    prompts: dict[str, str] = {}
    outputs: dict[tuple[str, str], str] = {}
    if is_store(path):
        from ..store import VerdictStore

        sp = store_path(path)
        with VerdictStore.open(sp) as store:
            specs = store.judges()
            prompts = {pid: p["text"] for pid, p in store.prompts().items()}
            flagged = _flagged(store.last_run())
            outputs = {k: c["output"] for k, c in store.candidates().items()}
        ens = [j for j in specs if j.startswith(ENSEMBLE_PREFIX)]
        named_ens = [j for j in (judges or []) if j in ens or any(specs[e].get("name") == j for e in ens)]
        if named_ens and tie_break:
            # A stored ensemble's verdicts are already combined: breaking its ties needs its
            # members' own verdicts, which naming the ensemble would leave out.
            raise InputError(f"--tie-break combines judges' own verdicts; {named_ens[0]} is a stored ensemble: "
                             "name its member judges instead, or drop --tie-break", path=path, field="--judges")
        if judges and len(judges) == 1 and named_ens and not tie_break:
            jid = next(e for e in ens if named_ens[0] in (e, specs[e].get("name")))
            records = _stored_ensemble_records(sp, jid)
        elif not judges and ens and not tie_break:
            jid = ens[-1]
            notes.append(f"using the stored ensemble {jid} ({len(specs[jid].get('kept', []))} judges)")
            records = _stored_ensemble_records(sp, jid)
        else:
            table = read_verdicts(path, judges)
            e = combine(table.x, table.judges, method=method, tie_break=tie_break)
            records = combined_rows(table, e)
            jid = records[0]["judge"] if records else ""
            if len(table.judges) == 1:
                jid = table.judges[0]
                for r in records:
                    r["judge"] = jid
            notes.extend(e.notes)
    else:
        if path.is_dir():
            raise InputError("is a folder without verdicts.sqlite", path=path)
        if _is_combined_jsonl(path):
            from .._jsonl import read_jsonl_objects

            if tie_break:
                raise InputError("--tie-break combines judges' own verdicts; this file holds combined verdicts "
                                 "(p_a per pair): give the verdicts it was combined from", path=path, field="--tie-break")

            records = []
            for line, r in read_jsonl_objects(path):
                for f in ("prompt_id", "system_a", "system_b", "p_a"):
                    if r.get(f) is None:
                        raise InputError(f"missing {f}", path=path, line=line, field=f)
                try:
                    p = float(r["p_a"])
                except (TypeError, ValueError):
                    p = float("nan")
                if not 0.0 <= p <= 1.0:
                    raise InputError(f"p_a {r['p_a']!r} is not a probability", path=path, line=line, field="p_a")
                r["prompt_id"], r["system_a"], r["system_b"] = str(r["prompt_id"]), str(r["system_a"]), str(r["system_b"])
                records.append(r)
            jid = str(records[0].get("judge", "")) if records else ""
        else:
            table = read_verdicts(path, judges)
            e = combine(table.x, table.judges, method=method, tie_break=tie_break)
            records = combined_rows(table, e)
            jid = records[0]["judge"] if records else ""
            notes.extend(e.notes)
    if candidates is not None:
        cp, co = _texts_from_candidates(candidates)
        if prompts or outputs:
            # A store holds the texts its verdicts judged; other texts under the same ids would be
            # exported as chosen/rejected answers no judge ever saw.
            differ = sum(prompts[k] != t for k, t in cp.items() if k in prompts) + \
                sum(outputs[k] != t for k, t in co.items() if k in outputs)
            if differ:
                raise InputError(f"{differ} text(s) differ from the texts the stored verdicts judged; export from "
                                 "the run folder alone, or rank the new texts first", path=candidates,
                                 field="candidates")
        prompts = {**cp, **prompts}
        outputs = {**co, **outputs}
    if not records:
        raise InputError("holds no decided pairwise verdicts (every comparison tied, or none was usable): "
                         "nothing to prefer, pick or export", path=path)
    if need_texts and not prompts and not is_store(path):
        raise InputError("JSONL verdicts carry no texts: give the candidates file with --candidates", path=path,
                         field="candidates")
    return Preferences(records=records, prompts=prompts, outputs=outputs, judge=jid, notes=notes, flagged=flagged)
