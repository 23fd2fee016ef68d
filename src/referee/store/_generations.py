"""Generated candidates, content-addressed and committed one by one (``referee generate``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..errors import StoreError
from ._records import _digest
from ._sqlite import _BUGS, RunFolderLock, SQLiteFile, _hint, _now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    system TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    seed INTEGER,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    finish_reason TEXT,
    latency_s REAL NOT NULL DEFAULT 0,
    provenance TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def generation_key(system_spec: dict[str, Any], prompt_text: str, sample: int, seed: int | None) -> str:
    """Content address of one generation: the system's full specification (model identity, system
    prompt, sampling), the prompt text, the sample index and its seed."""
    return _digest([json.dumps(system_spec, sort_keys=True, default=str), prompt_text, str(sample), str(seed)])


class Generated(BaseModel):
    """One stored generation."""

    key: str
    system: str
    prompt_id: str
    sample: int
    seed: int | None = None
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    latency_s: float = 0.0
    provenance: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""

    @property
    def truncated(self) -> bool:
        """Whether the generation stopped at ``max_tokens`` rather than at its end."""
        return self.finish_reason == "length"


class GenerationStore(SQLiteFile):
    """SQLite file of generations: WAL, one transaction per generation (a killed process loses at
    most the generations in flight), a folder lock while a ``generate`` writes to it.

    ``threaded``: usable from other threads than the one that opened it (DSPy evaluates in worker
    threads); the caller then serializes every use."""

    def __init__(self, path: str | Path, *, lock: bool = False, threaded: bool = False) -> None:
        self.path = Path(path)
        self._lock = RunFolderLock(self.path) if lock else None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=not threaded)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._db:
                self._db.executescript(_SCHEMA)
        except _BUGS:
            raise
        except sqlite3.DatabaseError as e:
            if self._lock is not None:
                self._lock.release()
            raise StoreError(f"{self.path}: cannot open the generation store: {e}{_hint(str(e))}") from e

    def get(self, key: str) -> Generated | None:
        with self._sql("read a generation"):
            row = self._db.execute("SELECT key, system, prompt_id, sample, seed, text, prompt_tokens, "
                                   "completion_tokens, finish_reason, latency_s, provenance, created_at "
                                   "FROM generations WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return Generated(key=row[0], system=row[1], prompt_id=row[2], sample=row[3], seed=row[4], text=row[5],
                         prompt_tokens=row[6], completion_tokens=row[7], finish_reason=row[8], latency_s=row[9],
                         provenance=json.loads(row[10]), created_at=row[11])

    def put(self, g: Generated) -> None:
        with self._sql("store a generation"), self._db:
            self._db.execute("INSERT OR IGNORE INTO generations VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                             (g.key, g.system, g.prompt_id, g.sample, g.seed, g.text, g.prompt_tokens,
                              g.completion_tokens, g.finish_reason, g.latency_s,
                              json.dumps(g.provenance, sort_keys=True), g.created_at or _now()))

    def count(self) -> int:
        with self._sql("count the generations"):
            return int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])
