"""Pairwise preferences with both texts: what a constitution is learned from and tested on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

_SIDES = {"a": "a", "b": "b", "text_a": "a", "text_b": "b", "1": "a", "2": "b"}


@dataclass(frozen=True)
class Preference:
    """One preference: ``preferred`` is ``"a"`` or ``"b"``; ``group`` says which split it may go to
    (e.g. the pair of systems: train on some systems' pairs, test on others')."""

    id: str
    prompt: str
    text_a: str
    text_b: str
    preferred: str
    group: str = ""


def load_preferences(path: str | Path) -> list[Preference]:
    """Preferences from a JSONL file (``prompt``, ``text_a``, ``text_b``, ``preferred`` as ``a``/``b``,
    optional ``id`` and ``group``) or from a run folder (the judge's combined verdicts: see
    :func:`preferences_from_run`).

    Raises:
        InputError: naming the file, line and field at fault (a missing field, an unknown side, a
            duplicate id).
    """
    path = Path(path)
    if path.is_dir():
        return preferences_from_run(path)
    if not path.is_file():
        raise InputError("no such file or run folder", path=path)
    out: list[Preference] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise InputError(f"not JSON: {e}", path=path, line=i) from None
            if not isinstance(row, dict):
                raise InputError("a preference is a JSON object", path=path, line=i)
            for f in ("prompt", "text_a", "text_b", "preferred"):
                if not isinstance(row.get(f), (str, int)) or (isinstance(row.get(f), str) and not row[f].strip()):
                    raise InputError(f"missing or empty field {f!r}", path=path, line=i, field=f)
            side = _SIDES.get(str(row["preferred"]).strip().lower())
            if side is None:
                raise InputError(f"preferred must be a or b, not {row['preferred']!r}", path=path, line=i,
                                 field="preferred")
            pid = str(row.get("id", i))
            if pid in seen:
                raise InputError(f"duplicate id {pid!r}", path=path, line=i, field="id")
            seen.add(pid)
            out.append(Preference(pid, str(row["prompt"]), str(row["text_a"]), str(row["text_b"]), side,
                                  str(row.get("group", ""))))
    if not out:
        raise InputError("holds no preferences", path=path)
    return out


def preferences_from_run(folder: Path, judge_id: str | None = None) -> list[Preference]:
    """The preferences of a run folder's judge: every comparison whose combined verdict (both
    orders, through :mod:`referee.outcomes`) is not a tie, with the texts it was about. The group
    is the pair of systems."""
    from ..outcomes import judge_outcomes
    from ..store import VerdictStore

    db = folder / "verdicts.sqlite"
    if not db.is_file():
        raise InputError("is not a run folder (no verdicts.sqlite)", path=folder)
    with VerdictStore(db, readonly=True) as store:
        prompts = store.prompts()
        cands = store.candidates()
        outcomes = judge_outcomes(store, judge_id)
    out = []
    for o in outcomes:
        if o.p_a == 0.5:
            continue
        a, b = cands.get((o.prompt_id, o.system_a)), cands.get((o.prompt_id, o.system_b))
        if a is None or b is None or o.prompt_id not in prompts:
            continue
        out.append(Preference(f"{o.prompt_id}|{o.system_a}|{o.system_b}", prompts[o.prompt_id]["text"], a["output"],
                              b["output"], "a" if o.p_a > 0.5 else "b", "|".join(sorted((o.system_a, o.system_b)))))
    if not out:
        raise InputError("holds no decided pairwise verdicts to learn from", path=folder)
    return out


def split(prefs: Sequence[Preference], *, test_groups: Sequence[str] | None = None, test_fraction: float = 0.5,
          seed: int = 0) -> tuple[list[Preference], list[Preference]]:
    """Train and test preferences: by group when ``test_groups`` is given, else a seeded random
    ``test_fraction`` of the groups (each group whole on one side; a preference without a group
    is a group of its own)."""
    import random

    groups = list(dict.fromkeys(p.group or p.id for p in prefs))
    if test_groups is not None:
        unknown = sorted(set(test_groups) - set(groups))
        if unknown:
            raise InputError(f"test group(s) {unknown} are not among the preferences' groups", field="--test-group")
        test = set(test_groups)
    else:
        rng = random.Random(seed)
        order = groups[:]
        rng.shuffle(order)
        test = set(order[:max(1, round(len(order) * test_fraction))])
    train = [p for p in prefs if (p.group or p.id) not in test]
    held = [p for p in prefs if (p.group or p.id) in test]
    if not train or not held:
        raise InputError(f"the split leaves {len(train)} preferences to train on and {len(held)} to test on: "
                         "both need some", field="--test-fraction")
    return train, held


def load_principles(path: str | Path) -> list[str]:
    """Principles from a text file, one per line (blank lines and ``#`` comments skipped), for
    ``learn_principles(added=...)``.

    Raises:
        InputError: no such file, a line longer than 300 characters, or no principle at all.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if len(text) > 300:
            raise InputError("a principle is one line of at most 300 characters", path=path, line=i)
        out.append(text)
    if not out:
        raise InputError("no principle in the file", path=path)
    return out
