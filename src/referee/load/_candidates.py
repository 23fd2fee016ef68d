"""Candidates: what every system answered to every prompt, read from files."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._jsonl import read_jsonl_objects
from ..errors import InputError, MissingCandidatesError

# Canonical field -> accepted spellings, first match wins. The aliases are the names
# AlpacaEval, Arena-Hard and most eval dumps use, so their files load unchanged.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "prompt_id": ("prompt_id", "instruction_id", "question_id", "task_id", "id"),
    "prompt": ("prompt", "instruction", "question", "input"),
    "system": ("system", "generator", "model"),
    "output": ("output", "response", "completion", "answer"),
}
_OPTIONAL = {"reference": ("reference", "reference_answer", "target")}


class Prompt(BaseModel):
    """One input that every system answered."""

    model_config = ConfigDict(frozen=True)
    id: str
    text: str
    reference: str | None = None


class Candidate(BaseModel):
    """One system's output for one prompt; ``metadata`` keeps the extra fields of the input row."""

    model_config = ConfigDict(frozen=True)
    prompt_id: str
    system: str
    output: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: str = ""

    @property
    def content_hash(self) -> str:
        """sha256 of the output text: the identity a verdict is keyed on."""
        return hashlib.sha256(self.output.encode("utf-8")).hexdigest()


class CandidateSet(BaseModel):
    """Prompts, systems and their candidates, complete unless built with ``allow_missing``."""

    prompts: dict[str, Prompt]
    systems: list[str]
    candidates: dict[tuple[str, str], Candidate]
    sources: list[str] = Field(default_factory=list)

    def get(self, prompt_id: str, system: str) -> Candidate | None:
        return self.candidates.get((prompt_id, system))

    def missing(self) -> list[tuple[str, str]]:
        """(prompt_id, system) pairs that have no candidate, in prompt then system order."""
        return [(p, s) for p in self.prompts for s in self.systems if (p, s) not in self.candidates]

    def systems_for(self, prompt_id: str) -> list[str]:
        return [s for s in self.systems if (prompt_id, s) in self.candidates]

    def fingerprint(self) -> str:
        """sha256 over every prompt and candidate, order-independent: names a dataset in provenance."""
        h = hashlib.sha256()
        for key in sorted(self.candidates):
            c = self.candidates[key]
            h.update(json.dumps([c.prompt_id, c.system, self.prompts[c.prompt_id].text, c.output]).encode())
        return h.hexdigest()


def _pick(row: dict[str, Any], field: str, aliases: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in aliases:
        if name in row:
            return name, row[name]
    return None, None


def _as_text(value: Any, *, path: Path, line: int, field: str, allow_number: bool = False) -> str:
    if isinstance(value, str):
        return value
    if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    raise InputError(f"expected a string, got {type(value).__name__} ({json.dumps(value)[:60]})",
                     path=path, line=line, field=field)


def _rows_json(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as e:
            raise InputError(f"malformed JSON ({e.msg} at column {e.colno})", path=path, line=e.lineno) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON array of objects", path=path)
    # A JSON array has no useful line numbers per record; report the record's 1-based index instead.
    for i, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise InputError(f"record {i}: expected a JSON object, got {type(row).__name__}", path=path)
        yield i, row


def _rows_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise InputError("empty CSV file (no header)", path=path)
        for row in reader:
            if None in row:
                raise InputError("more values than header columns", path=path, line=reader.line_num)
            yield reader.line_num, dict(row)


def _rows_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow: pip install pyarrow", path=path) from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises many types for a bad file
        raise InputError(f"unreadable Parquet file ({e})", path=path) from None
    for i, row in enumerate(table.to_pylist(), 1):
        yield i, row


def _open(path: Path, newline: str | None = None):
    try:
        return open(path, encoding="utf-8", newline=newline)
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", path=path) from None


_READERS = {".jsonl": read_jsonl_objects, ".json": _rows_json, ".csv": _rows_csv, ".parquet": _rows_parquet}


def _reader_for(path: Path):
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    reader = read_jsonl_objects if suffix == ".jsonl.gz" else _READERS.get(suffix)
    if reader is None:
        raise InputError(f"unsupported file type '{suffix}' (use .jsonl, .jsonl.gz, .json, .csv or .parquet)",
                         path=path)
    return reader


def _decoded(rows: Iterator[tuple[int, dict[str, Any]]], path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        yield from rows
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte offset {e.start})", path=path) from None


def _prompt_id_from_text(text: str) -> str:
    return "p-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def load_prompts(source: str | Path) -> dict[str, Prompt]:
    """Prompts (``prompt_id`` + ``prompt``, the aliases of :data:`FIELD_ALIASES`, optional
    ``reference``) from a JSONL (or ``.jsonl.gz``), JSON, CSV or Parquet file: what ``referee
    generate`` answers. Every other field is left behind (HumanEval's hidden ``test`` and
    ``canonical_solution`` never reach a system or a judge).

    Raises:
        InputError: a malformed file, a missing prompt, or a prompt id given twice.
    """
    path = Path(source)
    if not path.is_file():
        raise InputError("no such file", path=path)
    out: dict[str, Prompt] = {}
    seen: dict[str, int] = {}
    for line, row in _decoded(_reader_for(path)(path), path):
        name, text = _pick(row, "prompt", FIELD_ALIASES["prompt"])
        if name is None:
            raise InputError(f"missing field (accepted names: {', '.join(FIELD_ALIASES['prompt'])})", path=path,
                             line=line, field="prompt")
        text = _as_text(text, path=path, line=line, field=name)
        id_name, pid = _pick(row, "prompt_id", FIELD_ALIASES["prompt_id"])
        pid = _prompt_id_from_text(text) if id_name is None else _as_text(pid, path=path, line=line, field=id_name,
                                                                            allow_number=True)
        if pid in seen:
            raise InputError(f"prompt id '{pid}' given twice (first on line {seen[pid]})", path=path, line=line,
                             field=id_name or "prompt")
        ref_name, ref = _pick(row, "reference", _OPTIONAL["reference"])
        ref = None if ref_name is None or ref is None else _as_text(ref, path=path, line=line, field=ref_name)
        out[pid], seen[pid] = Prompt(id=pid, text=text, reference=ref), line
    if not out:
        raise InputError("holds no prompts", path=path)
    return out


def load_candidates(source: str | Path | Iterable[str | Path], *, allow_missing: bool = False) -> CandidateSet:
    """Read candidates from a file, several files, or a folder of per-system files.

    A flat file (JSONL, JSON array, CSV, Parquet) has one row per candidate with fields
    ``prompt_id``, ``prompt``, ``system``, ``output`` (AlpacaEval's ``instruction_id``,
    ``instruction``, ``generator``/``model`` and ``output`` are accepted too); every other
    field is kept in :attr:`Candidate.metadata`. In a folder, each ``*.json``/``*.jsonl`` file holds
    one system's outputs; its system is the row's ``generator`` (or the file name), and a row
    without a prompt id is matched to the others by its prompt text.

    Args:
        source: a path to a file or folder, or several paths.
        allow_missing: accept prompts that some systems did not answer.

    Returns:
        The :class:`CandidateSet`, systems in order of first appearance.

    Raises:
        InputError: malformed file, missing field, non-string output, duplicate
            (prompt_id, system), a prompt id reused with a different text.
        MissingCandidatesError: some (prompt, system) pairs have no output and
            ``allow_missing`` is false; the message names them.
    """
    paths: list[Path]
    if isinstance(source, (str, Path)):
        paths = [Path(source)]
    else:
        paths = [Path(p) for p in source]
    files: list[tuple[Path, bool]] = []  # (file, is_per_system_file)
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in (".json", ".jsonl") and f.is_file())
            if not found:
                raise InputError("folder holds no .json or .jsonl files", path=p)
            files.extend((f, True) for f in found)
        elif p.exists():
            files.append((p, False))
        else:
            raise InputError("no such file or folder", path=p)

    prompts: dict[str, Prompt] = {}
    prompt_seen_at: dict[str, str] = {}
    systems: list[str] = []
    candidates: dict[tuple[str, str], Candidate] = {}
    seen_at: dict[tuple[str, str], str] = {}

    for path, per_system in files:
        reader = _reader_for(path)
        for line, row in _decoded(reader(path), path):
            where = f"{path}:{line}"
            used: set[str] = set()
            values: dict[str, Any] = {}
            for field, aliases in FIELD_ALIASES.items():
                name, value = _pick(row, field, aliases)
                if name is None:
                    if field == "prompt_id":
                        continue
                    if field == "system" and per_system:
                        values[field] = path.stem
                        continue
                    raise InputError(f"missing field (accepted names: {', '.join(aliases)})",
                                     path=path, line=line, field=field)
                used.add(name)
                values[field] = _as_text(value, path=path, line=line, field=name,
                                         allow_number=field == "prompt_id")
            ref_name, ref = _pick(row, "reference", _OPTIONAL["reference"])
            if ref_name is not None:
                used.add(ref_name)
                ref = None if ref is None else _as_text(ref, path=path, line=line, field=ref_name)
            pid = values.get("prompt_id") or _prompt_id_from_text(values["prompt"])
            if not values["system"]:
                raise InputError("empty system name", path=path, line=line, field="system")
            text = values["prompt"]
            old = prompts.get(pid)
            if old is None:
                prompts[pid] = Prompt(id=pid, text=text, reference=ref)
                prompt_seen_at[pid] = where
            elif old.text != text:
                raise InputError(f"prompt id '{pid}' has a different prompt text than at {prompt_seen_at[pid]}",
                                 path=path, line=line, field="prompt")
            system = values["system"]
            key = (pid, system)
            if key in candidates:
                raise InputError(f"duplicate candidate for prompt '{pid}' and system '{system}' "
                                 f"(first at {seen_at[key]})", path=path, line=line)
            if system not in systems:
                systems.append(system)
            meta = {k: v for k, v in row.items() if k not in used}
            candidates[key] = Candidate(prompt_id=pid, system=system, output=values["output"],
                                        metadata=meta, source=where)
            seen_at[key] = where

    if not candidates:
        raise InputError("no candidates found", path=paths[0] if len(paths) == 1 else None)
    cset = CandidateSet(prompts=prompts, systems=systems, candidates=candidates,
                        sources=[str(f) for f, _ in files])
    missing = cset.missing()
    if missing and not allow_missing:
        by_system: dict[str, list[str]] = {}
        for pid, sysname in missing:
            by_system.setdefault(sysname, []).append(pid)
        parts = []
        for sysname, pids in by_system.items():
            shown = ", ".join(pids[:5]) + (f" and {len(pids) - 5} more" if len(pids) > 5 else "")
            parts.append(f"system '{sysname}' has no output for {len(pids)} prompt(s): {shown}")
        raise MissingCandidatesError(
            "; ".join(parts) + ". Every system must answer every prompt; pass --allow-missing "
            "(allow_missing=True) to compare systems only where both answered.",
            missing, path=paths[0] if len(paths) == 1 else None)
    return cset
