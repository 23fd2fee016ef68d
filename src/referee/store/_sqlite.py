"""The verdict store: SQLite in WAL mode, one row per verdict, committed as it arrives."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ._records import PairOutcome, Verdict

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judges (
    judge_id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    verdict_id TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    judge_id TEXT NOT NULL REFERENCES judges(judge_id),
    mode TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    systems TEXT NOT NULL,
    system_first TEXT,
    system_second TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'unparseable', 'error')),
    p_first REAL,
    score REAL,
    detail TEXT NOT NULL,
    raw TEXT NOT NULL,
    error TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    cost REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_by_question ON verdicts (question);
CREATE INDEX IF NOT EXISTS verdicts_by_judge ON verdicts (judge_id, mode, prompt_id);
CREATE TABLE IF NOT EXISTS prompts (
    prompt_id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    reference TEXT
);
CREATE TABLE IF NOT EXISTS candidates (
    prompt_id TEXT NOT NULL,
    system TEXT NOT NULL,
    output TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (prompt_id, system)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    provenance TEXT NOT NULL
);
"""

_COLUMNS = ("verdict_id", "question", "judge_id", "mode", "prompt_id", "systems", "system_first", "system_second",
            "status", "p_first", "score", "detail", "raw", "error", "prompt_tokens", "completion_tokens",
            "latency_s", "cost", "created_at")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class VerdictStore:
    """Every verdict of a run folder, in one SQLite file.

    Each :meth:`put` is its own transaction, so a killed process loses at most the verdict in
    flight. WAL mode lets a report or ``referee rate`` read while a run writes.

    Args:
        path: the SQLite file; created with its schema if absent.
        readonly: open without creating or writing.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise StoreError(f"{self.path}: no such verdict store")
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path.resolve()}?mode=ro", uri=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path)
                self._db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode survives a process crash (kill -9); only a power loss can
                # cost the last commits, and those are asked again on resume.
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.row_factory = sqlite3.Row
            if not readonly:
                with self._db:
                    self._db.executescript(_SCHEMA)
                    self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                     (str(SCHEMA_VERSION),))
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a referee verdict store ({e})") from None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: verdict store schema {row and row[0]}, this referee reads {SCHEMA_VERSION}")

    @classmethod
    def open(cls, path: str | Path) -> VerdictStore:
        """Open an existing store read-only (for rating, reports and exports)."""
        return cls(path, readonly=True)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> VerdictStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- judges and runs ---------------------------------------------------------------------
    def register_judge(self, judge_id: str, spec: dict[str, Any]) -> None:
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO judges VALUES (?, ?, ?)",
                             (judge_id, json.dumps(spec, sort_keys=True), _now()))

    def judges(self) -> dict[str, dict[str, Any]]:
        return {r["judge_id"]: json.loads(r["spec"]) for r in self._db.execute("SELECT * FROM judges")}

    def start_run(self, provenance: dict[str, Any]) -> int:
        with self._db:
            cur = self._db.execute("INSERT INTO runs (started_at, provenance) VALUES (?, ?)",
                                   (_now(), json.dumps(provenance, sort_keys=True)))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, provenance: dict[str, Any]) -> None:
        with self._db:
            self._db.execute("UPDATE runs SET finished_at=?, provenance=? WHERE run_id=?",
                             (_now(), json.dumps(provenance, sort_keys=True), run_id))

    # -- what was judged ------------------------------------------------------------------------
    def put_candidates(self, prompts: Iterable[Any], candidates: Iterable[Any]) -> None:
        """Keep the texts a run judged (prompts and candidates), so reports and exports need no input files.

        ``prompts`` are :class:`~referee.load.Prompt`-like (id, text, reference); ``candidates``
        are :class:`~referee.load.Candidate`-like. A changed text replaces the old one: the
        verdicts themselves are keyed on content, so they never mix texts.
        """
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO prompts VALUES (?, ?, ?)",
                                 [(p.id, p.text, p.reference) for p in prompts])
            self._db.executemany("INSERT OR REPLACE INTO candidates VALUES (?, ?, ?, ?, ?)",
                                 [(c.prompt_id, c.system, c.output, c.content_hash,
                                   json.dumps(c.metadata, ensure_ascii=False, default=str)) for c in candidates])

    def prompts(self) -> dict[str, dict[str, Any]]:
        """prompt id -> {"text", "reference"}."""
        return {r["prompt_id"]: {"text": r["text"], "reference": r["reference"]}
                for r in self._db.execute("SELECT * FROM prompts ORDER BY rowid")}

    def candidates(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(prompt id, system) -> {"output", "sha256", "metadata"}."""
        return {(r["prompt_id"], r["system"]): {"output": r["output"], "sha256": r["sha256"],
                                                "metadata": json.loads(r["metadata"])}
                for r in self._db.execute("SELECT * FROM candidates ORDER BY rowid")}

    # -- verdicts ----------------------------------------------------------------------------
    def has(self, verdict_id: str) -> bool:
        """Whether this question has an answer. An ``error`` row is no answer: it is asked again."""
        row = self._db.execute("SELECT status FROM verdicts WHERE verdict_id=?", (verdict_id,)).fetchone()
        return row is not None and row[0] != "error"

    def answer_to(self, question: str) -> Verdict | None:
        """A stored non-error verdict for this question, under any prompt id or system names."""
        row = self._db.execute("SELECT * FROM verdicts WHERE question=? AND status != 'error' LIMIT 1",
                               (question,)).fetchone()
        return None if row is None else _row_to_verdict(row)

    def get(self, verdict_id: str) -> Verdict | None:
        row = self._db.execute("SELECT * FROM verdicts WHERE verdict_id=?", (verdict_id,)).fetchone()
        return None if row is None else _row_to_verdict(row)

    def put(self, verdict: Verdict) -> None:
        """Store one verdict in its own transaction (replacing an earlier ``error`` for it)."""
        if not verdict.created_at:
            verdict = verdict.model_copy(update={"created_at": _now()})
        two = len(verdict.systems) == 2
        values = (verdict.verdict_id, verdict.question, verdict.judge_id, verdict.mode, verdict.prompt_id,
                  json.dumps(verdict.systems), verdict.systems[0] if two else None,
                  verdict.systems[1] if two else None, verdict.status, verdict.p_first, verdict.score,
                  verdict.detail_json(), verdict.raw, verdict.error, verdict.prompt_tokens,
                  verdict.completion_tokens, verdict.latency_s, verdict.cost, verdict.created_at)
        with self._db:
            self._db.execute(f"INSERT OR REPLACE INTO verdicts ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_COLUMNS))})", values)

    def verdicts(self, *, judge_id: str | None = None, mode: str | None = None) -> Iterator[Verdict]:
        sql, args = "SELECT * FROM verdicts", []
        conds = []
        if judge_id is not None:
            conds.append("judge_id=?")
            args.append(judge_id)
        if mode is not None:
            conds.append("mode=?")
            args.append(mode)
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        for row in self._db.execute(sql + " ORDER BY rowid", args):  # insertion order
            yield _row_to_verdict(row)

    def status_counts(self, *, judge_id: str | None = None, verdict_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Counts of ok / unparseable / error verdicts (all three keys always present)."""
        counts = {"ok": 0, "unparseable": 0, "error": 0}
        if verdict_ids is not None:
            ids = list(verdict_ids)
            for i in range(0, len(ids), 900):
                chunk = ids[i:i + 900]
                for st, n in self._db.execute(
                        f"SELECT status, COUNT(*) FROM verdicts WHERE verdict_id IN ({','.join('?' * len(chunk))}) "
                        "GROUP BY status", chunk):
                    counts[st] += n
            return counts
        sql = "SELECT status, COUNT(*) FROM verdicts"
        args: list[Any] = []
        if judge_id is not None:
            sql += " WHERE judge_id=?"
            args.append(judge_id)
        for st, n in self._db.execute(sql + " GROUP BY status", args):
            counts[st] += n
        return counts

    def pairwise_outcomes(self, *, judge_id: str | None = None,
                          verdict_ids: Iterable[str] | None = None) -> list[PairOutcome]:
        """Combine the stored pairwise verdicts of each (judge, prompt, pair) over both orders.

        Only ``ok`` verdicts count. ``system_a`` is the one shown first in the first stored
        verdict of the pair. Pairs with no usable verdict are left out (their unparseable or
        error verdicts are counted by :meth:`status_counts`).
        """
        wanted = None if verdict_ids is None else set(verdict_ids)
        groups: dict[tuple[str, str, frozenset[str]], list[Verdict]] = {}
        for v in self.verdicts(judge_id=judge_id, mode="pairwise"):
            if v.status != "ok" or (wanted is not None and v.verdict_id not in wanted):
                continue
            groups.setdefault((v.judge_id, v.prompt_id, frozenset(v.systems)), []).append(v)
        return [combine_orders(vs) for vs in groups.values()]


def combine_orders(verdicts: list[Verdict]) -> PairOutcome:
    """One :class:`PairOutcome` from the ok verdicts of one pair (one or both orders, repeats averaged)."""
    first = verdicts[0]
    a, b = first.systems
    ab = [v.p_first for v in verdicts if v.systems == [a, b]]
    ba = [v.p_first for v in verdicts if v.systems == [b, a]]
    p_ab = sum(ab) / len(ab) if ab else None
    p_ba = sum(ba) / len(ba) if ba else None
    wins = ([p_ab] if p_ab is not None else []) + ([1.0 - p_ba] if p_ba is not None else [])
    consistent = None
    if p_ab is not None and p_ba is not None:
        consistent = (p_ab - 0.5) * (p_ba - 0.5) < 0
    return PairOutcome(judge_id=first.judge_id, prompt_id=first.prompt_id, system_a=a, system_b=b,
                       p_a=sum(wins) / len(wins), p_ab=p_ab, p_ba=p_ba, consistent=consistent,
                       verdict_ids=[v.verdict_id for v in verdicts])


def _row_to_verdict(row: sqlite3.Row) -> Verdict:
    return Verdict(verdict_id=row["verdict_id"], question=row["question"], judge_id=row["judge_id"], mode=row["mode"],
                   prompt_id=row["prompt_id"], systems=json.loads(row["systems"]), status=row["status"],
                   p_first=row["p_first"], score=row["score"], detail=json.loads(row["detail"]),
                   raw=row["raw"], error=row["error"], prompt_tokens=row["prompt_tokens"],
                   completion_tokens=row["completion_tokens"], latency_s=row["latency_s"],
                   cost=row["cost"], created_at=row["created_at"])
