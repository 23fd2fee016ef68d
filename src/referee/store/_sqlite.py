"""The verdict store: SQLite in WAL mode, one row per verdict, committed as it arrives."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ._records import TextChanges, Verdict, question_key, text_hash
from ._shards import SHARD_DIR, ShardLog, row_verdict, verdict_row

SCHEMA_VERSION = 2
ENSEMBLE_PREFIX = "ens-"  # referee.combine's; the store cannot import it (combine reads the store)

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
    created_at TEXT NOT NULL,
    texts TEXT
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

# Shards (see referee.store._shards): one row per shard file, written in the transaction that
# deletes its verdicts from the journal. ``current`` says every verdict in it was about the texts
# current at ``epoch`` (the count of text replacements so far): while no text changes, readers
# need not check its bindings one by one; ``bound`` that every verdict in it names its texts.
_SHARDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS shards (
    seq INTEGER PRIMARY KEY,
    rows INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    current INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    bound INTEGER NOT NULL DEFAULT 0
);
"""

_COLUMNS = ("verdict_id", "question", "judge_id", "mode", "prompt_id", "systems", "system_first", "system_second",
            "status", "p_first", "score", "detail", "raw", "error", "prompt_tokens", "completion_tokens",
            "latency_s", "cost", "created_at", "texts")
_INSERT = (f"INSERT INTO verdicts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
           f"ON CONFLICT (verdict_id) DO UPDATE SET "
           + ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS if c != "verdict_id"))
# An error is no answer, so only an error row may be overwritten: a second process (or a retry)
# that failed where another succeeded must not erase the answer that was paid for.
_INSERT_OVER_ERRORS = _INSERT + " WHERE verdicts.status = 'error'"

# Failures of the caller, not of the store: they keep their traceback.
_BUGS = (sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.InterfaceError)

DEFAULT_BUSY_TIMEOUT_S = 5.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _hint(message: str) -> str:
    m = message.lower()
    if "locked" in m or "busy" in m:
        return "; another process holds the store's write lock: run again when it has finished"
    if "full" in m:
        return "; free some disk space and run the same command again (verdicts already stored are kept)"
    if "readonly" in m or "read-only" in m:
        return "; the file or its folder is not writable"
    return ""


class RunFolderLock:
    """An exclusive ``flock`` on ``<store>.lock`` next to a store, held while a run writes to it.

    The kernel drops the lock when its holder exits, even on ``kill -9``, so a crashed run never
    leaves the folder locked; the file itself stays (removing it would let two processes lock
    two different files of the same name). The holder's pid is written into it for the message.

    Raises:
        StoreError: another process holds the lock (the message names the folder and its pid).
    """

    def __init__(self, store_path: str | Path) -> None:
        import fcntl

        store_path = Path(store_path)
        self.path = store_path.with_name(store_path.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StoreError(f"{self.path.parent}: cannot create the run folder's lock file: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(f"{self.path.parent}: another referee run (pid {holder}) is writing to this run "
                             "folder; wait for it to finish or give another --output") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


# Modes of judges that screen systems instead of comparing candidates: readers that rate, combine
# or export leave them out.
SCREEN_MODES = ("relevance",)

class SQLiteFile:
    """A SQLite file held open (with the run folder's lock while a run writes to it): closing, the
    ``with`` form, and every SQLite failure as one :class:`StoreError` naming the file."""

    path: Path
    _db: sqlite3.Connection
    _lock: RunFolderLock | None

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self):  # noqa: ANN204 - the subclass itself
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _sql(self, doing: str) -> Iterator[None]:
        """SQLite failures as one :class:`StoreError` naming the file and what failed."""
        try:
            yield
        except _BUGS:
            raise
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: cannot {doing}: {e}{_hint(str(e))}") from e


class VerdictStore(SQLiteFile):
    """Every verdict of a run folder, in one SQLite file.

    Each :meth:`put` is its own transaction, so a killed process loses at most the verdict in
    flight. WAL mode lets a report or ``referee rate`` read while a run writes. Readers see only
    verdicts about the store's current texts (see :meth:`verdicts`). A schema-1 store is upgraded
    in place when opened. Every SQLite failure (locked, disk full, unreadable) is a
    :class:`~referee.errors.StoreError`.

    Args:
        path: the SQLite file; created with its schema if absent.
        readonly: open without creating or writing.
        lock: hold a :class:`RunFolderLock` until :meth:`close`, so a second run on the same
            folder stops before it asks the judge anything.
        busy_timeout: seconds to wait for another process's write lock on the database.
        threaded: usable from other threads than the one that opened it; the caller then
            serializes every use.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, lock: bool = False,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S, shard_rows: int | None = None,
                 threaded: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise StoreError(f"{self.path}: no such verdict store")
        if shard_rows is not None and shard_rows < 1:
            raise StoreError(f"{self.path}: shard_rows must be at least 1, got {shard_rows}")
        self._lock = RunFolderLock(self.path) if lock else None
        self._shards = ShardLog(self.path.parent / SHARD_DIR)
        self._shard_rows = shard_rows
        self._index: tuple[dict[str, int], dict[str, str]] | None = None  # id -> shard seq; question -> id
        self._cached: tuple[int | None, dict[str, dict[str, Any]]] = (None, {})
        self._threaded = threaded
        try:
            self._db = self._connect(readonly, busy_timeout)
            if not readonly:
                self._add_bound_column()
                self._drop_orphan_shards()
            self._pending = self._journal_answers() if shard_rows else 0
            # Shards appear only through this writer's flushes (it holds the folder's lock), so
            # whether there are any is known once: an unsharded store pays no query per verdict.
            self._sharded = bool(self._shard_table())
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def _connect(self, readonly: bool, timeout: float) -> sqlite3.Connection:
        db = None
        try:
            if readonly:
                db = sqlite3.connect(f"file:{self.path.resolve()}?mode=ro", uri=True, timeout=timeout,
                                     check_same_thread=not self._threaded)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=not self._threaded)
            db.row_factory = sqlite3.Row
            version = self._schema_version(db)
            if not readonly:
                db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode survives a process crash (kill -9); only a power loss can
                # cost the last commits, and those are asked again on resume.
                db.execute("PRAGMA synchronous=NORMAL")
                if version is None:
                    with db:
                        db.executescript(_SCHEMA)
                        db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    version = self._schema_version(db)
                if version == SCHEMA_VERSION:
                    with db:  # stores made before shards existed gain the (empty) table
                        db.executescript(_SHARDS_SCHEMA)
            if version is not None and version < SCHEMA_VERSION:
                self._upgrade(db if not readonly else None, timeout)
                version = self._schema_version(db)
        except _BUGS:
            raise
        except sqlite3.OperationalError as e:
            if db is not None:
                db.close()
            raise StoreError(f"{self.path}: cannot open the verdict store: {e}{_hint(str(e))}") from e
        except sqlite3.DatabaseError as e:
            if db is not None:
                db.close()
            raise StoreError(f"{self.path}: not a referee verdict store ({e})") from e
        if version != SCHEMA_VERSION:
            db.close()
            if version is None:
                raise StoreError(f"{self.path}: not a referee verdict store (no schema version)")
            raise StoreError(f"{self.path}: verdict store schema {version} was written by a newer referee; "
                             f"this referee reads schema {SCHEMA_VERSION}: upgrade referee")
        return db

    def _schema_version(self, db: sqlite3.Connection) -> int | None:
        """The stored schema version; ``None`` for an empty database. Raises DatabaseError for a
        database that is not a verdict store."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "meta" not in tables:
            raise sqlite3.DatabaseError("no meta table")
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            raise sqlite3.DatabaseError("no schema version")
        return int(row[0])

    def _upgrade(self, db: sqlite3.Connection | None, timeout: float) -> None:
        """Schema 1 → 2 in one transaction: bind each verdict to the texts it judged, where the
        stored texts still give its question key; a read-only open upgrades through a writable
        connection of its own."""
        own = db is None
        if own:
            try:
                db = sqlite3.connect(self.path, timeout=timeout)
            except sqlite3.OperationalError as e:
                raise StoreError(f"{self.path}: this schema-1 verdict store needs a one-time upgrade to schema "
                                 f"{SCHEMA_VERSION}, which needs write access: {e}") from e
            db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if self._schema_version(db) == 1:  # another process may have upgraded it meanwhile
                    db.execute("ALTER TABLE verdicts ADD COLUMN texts TEXT")
                    db.executemany("UPDATE verdicts SET texts=? WHERE verdict_id=?", _schema1_bindings(db))
                    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
                db.commit()
            except BaseException:
                db.rollback()
                raise
        except sqlite3.OperationalError as e:
            if own and ("readonly" in str(e) or "read-only" in str(e)):
                raise StoreError(f"{self.path}: this schema-1 verdict store needs a one-time upgrade to schema "
                                 f"{SCHEMA_VERSION}, which needs write access: {e}") from e
            raise
        finally:
            if own:
                db.close()

    @classmethod
    def open(cls, path: str | Path) -> VerdictStore:
        """Open an existing store read-only (for rating, reports and exports)."""
        return cls(path, readonly=True)

    # -- judges and runs ---------------------------------------------------------------------
    def register_judge(self, judge_id: str, spec: dict[str, Any]) -> None:
        with self._sql("register the judge"), self._db:
            self._db.execute("INSERT OR IGNORE INTO judges VALUES (?, ?, ?)",
                             (judge_id, json.dumps(spec, sort_keys=True), _now()))

    def judges(self, *, screens: bool = False) -> dict[str, dict[str, Any]]:
        """judge id -> spec of every registered judge; screening judges (:data:`SCREEN_MODES`, such as
        the prompt-independence check) only with ``screens``: their verdicts rate nothing."""
        with self._sql("read the judges"):
            specs = {r["judge_id"]: json.loads(r["spec"]) for r in self._db.execute("SELECT * FROM judges")}
        return specs if screens else {j: s for j, s in specs.items() if s.get("mode") not in SCREEN_MODES}

    def start_run(self, provenance: dict[str, Any]) -> int:
        with self._sql("record the run"), self._db:
            cur = self._db.execute("INSERT INTO runs (started_at, provenance) VALUES (?, ?)",
                                   (_now(), json.dumps(provenance, sort_keys=True)))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, provenance: dict[str, Any]) -> None:
        with self._sql("record the run"), self._db:
            self._db.execute("UPDATE runs SET finished_at=?, provenance=? WHERE run_id=?",
                             (_now(), json.dumps(provenance, sort_keys=True), run_id))

    def last_run(self) -> dict[str, Any] | None:
        """The provenance of the latest finished run, or ``None`` if no run finished."""
        with self._sql("read the runs"):
            row = self._db.execute("SELECT provenance FROM runs WHERE finished_at IS NOT NULL "
                                   "ORDER BY run_id DESC LIMIT 1").fetchone()
        return None if row is None else json.loads(row["provenance"])

    # -- what was judged ------------------------------------------------------------------------
    def put_candidates(self, prompts: Iterable[Any], candidates: Iterable[Any]) -> TextChanges:
        """Keep the texts a run judges (prompts and candidates), so reports and exports need no input files.

        ``prompts`` are :class:`~referee.load.Prompt`-like (id, text, reference); ``candidates``
        are :class:`~referee.load.Candidate`-like. A changed text replaces the old one; verdicts
        about the old text stay in the store but are no longer current, so readers never mix
        texts. Returns what changed.
        """
        prompts, candidates = list(prompts), list(candidates)
        with self._sql("store the candidates"), self._db:
            before = self._texts_now()
            self._db.executemany("INSERT OR REPLACE INTO prompts VALUES (?, ?, ?)",
                                 [(p.id, p.text, p.reference) for p in prompts])
            self._db.executemany("INSERT OR REPLACE INTO candidates VALUES (?, ?, ?, ?, ?)",
                                 [(c.prompt_id, c.system, c.output, c.content_hash,
                                   json.dumps(c.metadata, ensure_ascii=False, default=str)) for c in candidates])
            changes = TextChanges(
                prompts=sum(1 for p in prompts if before.prompt(p.id) not in (None, text_hash(p.text))),
                candidates=sum(1 for c in candidates
                               if before.candidate(c.prompt_id, c.system) not in (None, c.content_hash)))
            if changes:
                self._db.execute("INSERT INTO meta VALUES ('text_epoch', '1') ON CONFLICT (key) DO UPDATE SET "
                                 "value = CAST(value AS INTEGER) + 1")
                after = self._texts_now()
                changes.stale_verdicts = sum(
                    1 for pid, systems, texts in self._bindings()
                    if before.is_current(pid, systems, texts) and not after.is_current(pid, systems, texts))
            # An upgraded verdict whose texts were replaced when it was upgraded is found by its id
            # (the same question) once they are back, and is used as it is: bind it again.
            self._db.executemany("UPDATE verdicts SET texts=? WHERE verdict_id=?",
                                 [(t, vid) for t, vid in _schema1_bindings(self._db, "WHERE texts = '[]'")
                                  if t not in (None, "[]")])
        return changes

    def prompts(self) -> dict[str, dict[str, Any]]:
        """prompt id -> {"text", "reference"}."""
        with self._sql("read the prompts"):
            return {r["prompt_id"]: {"text": r["text"], "reference": r["reference"]}
                    for r in self._db.execute("SELECT * FROM prompts ORDER BY rowid")}

    def candidates(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(prompt id, system) -> {"output", "sha256", "metadata"}: the current texts."""
        with self._sql("read the candidates"):
            return {(r["prompt_id"], r["system"]): {"output": r["output"], "sha256": r["sha256"],
                                                    "metadata": json.loads(r["metadata"])}
                    for r in self._db.execute("SELECT * FROM candidates ORDER BY rowid")}

    def _texts_now(self) -> _CurrentTexts:
        return _CurrentTexts(self._db)

    def current_texts(self) -> _CurrentTexts:
        """The hashes of the current prompt texts (``.prompts``: id -> sha256) and candidate texts
        (``.candidates``: (prompt id, system) -> sha256)."""
        with self._sql("read the texts"):
            return self._texts_now()

    def _bindings(self) -> Iterator[tuple[str, list[str], list[str] | None]]:
        shards = [p for p, _ in self.shards()]
        for r in self._shards.read(shards, columns=("prompt_id", "systems", "texts")) if shards else ():
            yield r["prompt_id"], list(r["systems"]), None if r["texts"] is None else list(r["texts"])
        for r in self._db.execute("SELECT prompt_id, systems, texts FROM verdicts"):
            yield r[0], json.loads(r[1]), None if r[2] is None else json.loads(r[2])

    # -- shards ------------------------------------------------------------------------------
    def _shard_table(self) -> list[sqlite3.Row]:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "shards" not in tables:  # a store from before shards, opened read-only
            return []
        return self._db.execute("SELECT * FROM shards ORDER BY seq").fetchall()

    def text_epoch(self) -> int:
        """How many times stored texts were replaced: a shard written at another epoch may hold
        verdicts about texts that are no longer current."""
        with self._sql("read the store"):
            row = self._db.execute("SELECT value FROM meta WHERE key='text_epoch'").fetchone()
        return 0 if row is None else int(row[0])

    def shards(self) -> list[tuple[Path, bool]]:
        """The shard files (oldest first), each with whether all its verdicts are about the current
        texts without checking them one by one. Files in the folder that the shard table does not
        list (a flush killed before its commit) are not part of the store."""
        with self._sql("read the shard table"):
            rows = self._shard_table()
        epoch = self.text_epoch() if rows else 0
        return [(self._shards.path(r["seq"]), bool(r["current"]) and r["epoch"] == epoch) for r in rows]

    def shard_info(self) -> list[dict[str, Any]]:
        """Each shard as ``{"path", "rows", "current", "bound"}``: ``current`` as in :meth:`shards`,
        ``bound`` whether every verdict in it names the texts it judged."""
        with self._sql("read the shard table"):
            rows = self._shard_table()
        epoch = self.text_epoch() if rows else 0
        return [{"path": self._shards.path(r["seq"]), "rows": r["rows"],
                 "bound": "bound" in r.keys() and bool(r["bound"]),
                 "current": bool(r["current"]) and r["epoch"] == epoch} for r in rows]

    def _journal_answers(self) -> int:
        with self._sql("read the store"):
            return int(self._db.execute("SELECT COUNT(*) FROM verdicts WHERE status != 'error' AND judge_id NOT "
                                        "LIKE ?", (ENSEMBLE_PREFIX + "%",)).fetchone()[0])

    def _add_bound_column(self) -> None:
        """Shard tables from before ``bound`` gain it, filled from the shards themselves."""
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(shards)")}
        if "bound" in cols:
            return
        rows = self._db.execute("SELECT seq FROM shards").fetchall()
        bound = [(int(self._shards.null_texts(self._shards.path(r[0])) == 0), r[0]) for r in rows]
        with self._db:
            self._db.execute("ALTER TABLE shards ADD COLUMN bound INTEGER NOT NULL DEFAULT 0")
            self._db.executemany("UPDATE shards SET bound=? WHERE seq=?", bound)

    def _drop_orphan_shards(self) -> None:
        listed = {p for p, _ in self.shards()}
        for f in self._shards.files():
            if f not in listed:  # its verdicts are still in the journal: the flush never committed
                f.unlink(missing_ok=True)

    def flush_shards(self) -> int:
        """Move the journal's answers into a new shard; returns how many moved.

        Errors stay in the journal (a retry may replace them), and so do stored ensembles. The
        shard file is written whole first, then one transaction lists it and deletes its verdicts
        from the journal: a crash in between leaves them in the journal, and the unlisted file is
        removed the next time the store is opened for writing.
        """
        with self._sql("read the journal"):
            rows = self._db.execute("SELECT * FROM verdicts WHERE status != 'error' AND judge_id NOT LIKE ? "
                                    "ORDER BY rowid", (ENSEMBLE_PREFIX + "%",)).fetchall()
        if not rows:
            return 0
        verdicts = [_row_to_verdict(r) for r in rows]
        now = self._texts_now()
        current = all(now.is_current(v.prompt_id, v.systems, v.texts) for v in verdicts)
        with self._sql("write a shard"):
            last = self._db.execute("SELECT MAX(seq) FROM shards").fetchone()[0]
            seq = 0 if last is None else int(last) + 1
            epoch = self.text_epoch()
        self._shards.write(seq, [verdict_row(v) for v in verdicts])
        with self._sql("record the shard"), self._db:
            self._db.execute("INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?)",
                             (seq, len(verdicts), epoch, int(current), _now(), int(all(v.texts is not None
                                                                                      for v in verdicts))))
            self._db.executemany("DELETE FROM verdicts WHERE verdict_id=?", [(v.verdict_id,) for v in verdicts])
        self._sharded = True
        if self._index is not None:
            ids, questions = self._index
            for v in verdicts:
                ids[v.verdict_id] = seq
                questions.setdefault(v.question, v.verdict_id)
        self._pending = 0
        return len(verdicts)

    def append_shard(self, table: Any) -> int:
        """Add verdicts that are not in the store as one new shard, straight from an Arrow table with
        the shard schema (:func:`~referee.store._shards.shard_schema`): a bulk import, or a worker's
        batch, that never passes through the journal. Returns the number of verdicts.

        The table's verdict ids must be unique and new to the store (a duplicate within the table is
        an error; one already in the store is not looked for, which would mean reading every shard).
        Only answers may be added: ``error`` rows and ensembles belong in the journal.
        """
        from ._duck import shard_is_current

        table = self._shards.conform(table)
        if table.num_rows == 0:
            return 0
        self._shards.check_new(table, self.path)
        with self._sql("write a shard"):
            last = self._db.execute("SELECT MAX(seq) FROM shards").fetchone()[0]
            seq = 0 if last is None else int(last) + 1
            epoch = self.text_epoch()
            current = shard_is_current(self, table)
        self._shards.write_table(seq, table)
        with self._sql("record the shard"), self._db:
            self._db.execute("INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?)",
                             (seq, table.num_rows, epoch, int(current), _now(), int(table.column("texts").null_count == 0)))
        self._sharded = True
        if self._index is not None:
            ids, questions = self._index
            for vid, q in zip(table.column("verdict_id").to_pylist(), table.column("question").to_pylist()):
                ids[vid] = seq
                questions.setdefault(q, vid)
        return table.num_rows

    def _shard_index(self) -> tuple[dict[str, int], dict[str, str]]:
        if self._index is None:
            ids: dict[str, int] = {}
            questions: dict[str, str] = {}
            for path, _ in self.shards():
                seq = int(path.name[5:13])
                for r in self._shards.read([path], columns=("verdict_id", "question")):
                    ids[r["verdict_id"]] = seq
                    questions.setdefault(r["question"], r["verdict_id"])
            self._index = ids, questions
        return self._index

    def _from_shard(self, verdict_id: str) -> Verdict | None:
        seq = self._shard_index()[0].get(verdict_id) if self._has_shards() else None
        if seq is None:
            return None
        if self._cached[0] != seq:  # a resumed run asks in store order: one shard decoded at a time
            self._cached = (seq, {r["verdict_id"]: r for r in self._shards.read([self._shards.path(seq)])})
        return row_verdict(self._cached[1][verdict_id])

    def _has_shards(self) -> bool:
        return self._sharded

    # -- verdicts ----------------------------------------------------------------------------
    def has(self, verdict_id: str) -> bool:
        """Whether this question has an answer. An ``error`` row is no answer: it is asked again."""
        with self._sql("read a verdict"):
            row = self._db.execute("SELECT status FROM verdicts WHERE verdict_id=?", (verdict_id,)).fetchone()
        if row is None:
            return self._has_shards() and verdict_id in self._shard_index()[0]
        return row[0] != "error"

    def answer_to(self, question: str) -> Verdict | None:
        """A stored non-error verdict for this question, under any prompt id or system names."""
        with self._sql("read a verdict"):
            row = self._db.execute("SELECT * FROM verdicts WHERE question=? AND status != 'error' LIMIT 1",
                                   (question,)).fetchone()
        if row is None and self._has_shards():
            vid = self._shard_index()[1].get(question)
            return None if vid is None else self._from_shard(vid)
        return None if row is None else _row_to_verdict(row)

    def get(self, verdict_id: str) -> Verdict | None:
        with self._sql("read a verdict"):
            row = self._db.execute("SELECT * FROM verdicts WHERE verdict_id=?", (verdict_id,)).fetchone()
        if row is None:
            return self._from_shard(verdict_id)
        return _row_to_verdict(row)

    def put(self, verdict: Verdict, *, replace: bool = False) -> bool:
        """Store one verdict in its own transaction; returns whether the row was written.

        An existing row is overwritten only when it is an ``error`` (a retry's answer replaces
        it), never an ``ok`` or ``unparseable`` answer, whichever process wrote it: that
        verdict was already paid for. ``replace=True`` overwrites any row, for verdicts that
        are recomputed rather than asked (a stored ensemble). A verdict without ``texts`` is
        bound to the store's current texts of its prompt and systems.
        """
        if not verdict.created_at:
            verdict = verdict.model_copy(update={"created_at": _now()})
        if self._has_shards() and verdict.verdict_id in self._shard_index()[0]:
            if replace:  # a shard is immutable, and what it holds is an answer
                raise StoreError(f"{self.path}: verdict {verdict.verdict_id} is in a shard and cannot be replaced")
            return False
        with self._sql("store the verdict"):
            values = self._values(verdict)
            with self._db:
                cur = self._db.execute(_INSERT if replace else _INSERT_OVER_ERRORS, values)
        self._count_pending([verdict] if cur.rowcount > 0 else [])
        return cur.rowcount > 0

    def put_many(self, verdicts: Iterable[Verdict]) -> int:
        """Store verdicts in one transaction, each as :meth:`put` would; returns how many rows were
        written. For a driver that commits the answers of a batch together."""
        now = _now()
        fresh = [v if v.created_at else v.model_copy(update={"created_at": now}) for v in verdicts]
        index = self._shard_index()[0] if self._has_shards() else {}
        fresh = [v for v in fresh if v.verdict_id not in index]
        written = []
        with self._sql("store the verdicts"), self._db:
            for v in fresh:
                if self._db.execute(_INSERT_OVER_ERRORS, self._values(v)).rowcount > 0:
                    written.append(v)
        self._count_pending(written)
        return len(written)

    def _values(self, verdict: Verdict) -> tuple:
        two = len(verdict.systems) == 2
        texts = verdict.texts or self._texts_now_for(verdict.prompt_id, verdict.systems)
        return (verdict.verdict_id, verdict.question, verdict.judge_id, verdict.mode, verdict.prompt_id,
                json.dumps(verdict.systems), verdict.systems[0] if two else None,
                verdict.systems[1] if two else None, verdict.status, verdict.p_first, verdict.score,
                verdict.detail_json(), verdict.raw, verdict.error, verdict.prompt_tokens,
                verdict.completion_tokens, verdict.latency_s, verdict.cost, verdict.created_at,
                None if texts is None else json.dumps(texts))

    def _count_pending(self, written: Sequence[Verdict]) -> None:
        if not self._shard_rows:
            return
        self._pending += sum(1 for v in written if v.status != "error" and not v.judge_id.startswith(ENSEMBLE_PREFIX))
        if self._pending >= self._shard_rows:
            self.flush_shards()

    def _texts_now_for(self, prompt_id: str, systems: list[str]) -> list[str] | None:
        row = self._db.execute("SELECT text FROM prompts WHERE prompt_id=?", (prompt_id,)).fetchone()
        if row is None:
            return None
        shas = dict(self._db.execute(
            f"SELECT system, sha256 FROM candidates WHERE prompt_id=? AND system IN ({','.join('?' * len(systems))})",
            (prompt_id, *systems)).fetchall())
        if any(s not in shas for s in systems):
            return None
        return [text_hash(row[0]), *(shas[s] for s in systems)]

    def verdicts(self, *, judge_id: str | None = None, mode: str | None = None,
                 current: bool = True, shards: bool = True) -> Iterator[Verdict]:
        """Stored verdicts in insertion order (without screening verdicts, :data:`SCREEN_MODES`,
        unless their judge or mode is asked for: they are about systems, not comparisons).

        With ``current`` (the default) only those about the store's current texts: a verdict
        whose prompt or candidate texts were replaced since (a rerun after regenerating outputs)
        is left out, and so is one upgraded from schema 1 whose texts were already replaced. A
        verdict stored without any texts to bind to counts as current. The verdicts in Parquet
        shards come first (``shards=False``: only the journal's).
        """
        sql, args = "SELECT * FROM verdicts", []
        conds = []
        if judge_id is not None:
            conds.append("judge_id=?")
            args.append(judge_id)
        if mode is not None:
            conds.append("mode=?")
            args.append(mode)
        elif judge_id is None:
            conds.append(f"mode NOT IN ({', '.join('?' * len(SCREEN_MODES))})")
            args.extend(SCREEN_MODES)
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        with self._sql("read the verdicts"):
            now = self._texts_now() if current else None
            shards = self.shards() if shards else []
            if shards:
                journal = {r[0] for r in self._db.execute("SELECT verdict_id FROM verdicts")}
                rows = self._shards.read([p for p, _ in shards], judge_id=judge_id, mode=mode,
                                         exclude_modes=SCREEN_MODES if mode is None and judge_id is None else ())
                for r in rows:
                    if r["verdict_id"] not in journal:
                        v = row_verdict(r)
                        if now is None or now.is_current(v.prompt_id, v.systems, v.texts):
                            yield v
            for row in self._db.execute(sql + " ORDER BY rowid", args):  # insertion order
                v = _row_to_verdict(row)
                if now is None or now.is_current(v.prompt_id, v.systems, v.texts):
                    yield v

    def status_counts(self, *, judge_id: str | None = None, verdict_ids: Iterable[str] | None = None,
                      current: bool = True) -> dict[str, int]:
        """Counts of ok / unparseable / error verdicts (all three keys always present), of the
        current verdicts unless ``current=False`` (see :meth:`verdicts`)."""
        counts = {"ok": 0, "unparseable": 0, "error": 0}
        wanted = None if verdict_ids is None else set(verdict_ids)
        for v in self.verdicts(judge_id=judge_id, current=current):
            if wanted is None or v.verdict_id in wanted:
                counts[v.status] += 1
        return counts


class _CurrentTexts:
    """The hashes of a store's current prompt and candidate texts, read once."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._prompts = {pid: text_hash(text) for pid, text in db.execute("SELECT prompt_id, text FROM prompts")}
        self._cands = {(pid, s): sha for pid, s, sha in db.execute("SELECT prompt_id, system, sha256 FROM candidates")}

    @property
    def prompts(self) -> dict[str, str]:
        return self._prompts

    @property
    def candidates(self) -> dict[tuple[str, str], str]:
        return self._cands

    def prompt(self, prompt_id: str) -> str | None:
        return self._prompts.get(prompt_id)

    def candidate(self, prompt_id: str, system: str) -> str | None:
        return self._cands.get((prompt_id, system))

    def binding(self, prompt_id: str, systems: list[str]) -> list[str] | None:
        """What a verdict about these systems judges now; ``None`` when a text is not stored."""
        p = self._prompts.get(prompt_id)
        shas = [self._cands.get((prompt_id, s)) for s in systems]
        if p is None or any(h is None for h in shas):
            return None
        return [p, *shas]  # type: ignore[list-item]

    def is_current(self, prompt_id: str, systems: list[str], texts: list[str] | None) -> bool:
        return texts is None or texts == self.binding(prompt_id, systems)


def _schema1_bindings(db: sqlite3.Connection, where: str = "") -> list[tuple[str | None, str]]:
    """``(texts, verdict_id)`` for every verdict of a schema-1 store (or those ``where`` selects).

    A verdict whose question key is the key of the stored texts judged them; any other judged
    texts since replaced (``[]``); one about a prompt or system without stored texts cannot be
    told (``None``). A stored ensemble's verdict (keyed on ids, not texts) is current when all
    the member verdicts it combined are. The pointwise key with a reference mirrors
    :func:`referee.judge.score_candidates`.
    """
    now = _CurrentTexts(db)
    texts = {pid: (t, ref) for pid, t, ref in db.execute("SELECT prompt_id, text, reference FROM prompts")}
    outputs = {(pid, s): o for pid, s, o in db.execute("SELECT prompt_id, system, output FROM candidates")}
    bound: dict[str, list[str] | None] = {}
    ensembles = []
    sql = f"SELECT verdict_id, question, judge_id, mode, prompt_id, systems, detail FROM verdicts {where}"
    for r in db.execute(sql):
        vid, q, jid, mode, pid, systems = r[0], r[1], r[2], r[3], r[4], json.loads(r[5])
        binding = now.binding(pid, systems)
        if binding is None:
            bound[vid] = None
            continue
        if jid.startswith(ENSEMBLE_PREFIX):
            ensembles.append((vid, binding, json.loads(r[6]).get("member_verdict_ids") or []))
            continue
        prompt, ref = texts[pid]
        outs = [outputs[(pid, s)] for s in systems]
        keys = {question_key(jid, mode, prompt, outs)}
        if len(outs) == 1 and ref:
            keys.add(question_key(jid, mode, prompt, [outs[0], f"\x00reference\x00{ref}"]))
        bound[vid] = binding if q in keys else []

    def member_current(m: str) -> bool:
        if m in bound:
            return bound[m] != []
        row = db.execute("SELECT prompt_id, systems, texts FROM verdicts WHERE verdict_id=?", (m,)).fetchone()
        return row is None or now.is_current(row[0], json.loads(row[1]), None if row[2] is None else json.loads(row[2]))

    for vid, binding, members in ensembles:
        bound[vid] = binding if all(member_current(m) for m in members) else []
    return [(None if t is None else json.dumps(t), vid) for vid, t in bound.items()]


def _row_to_verdict(row: sqlite3.Row) -> Verdict:
    return Verdict(verdict_id=row["verdict_id"], question=row["question"], judge_id=row["judge_id"], mode=row["mode"],
                   prompt_id=row["prompt_id"], systems=json.loads(row["systems"]), status=row["status"],
                   p_first=row["p_first"], score=row["score"], detail=json.loads(row["detail"]),
                   raw=row["raw"], error=row["error"], prompt_tokens=row["prompt_tokens"],
                   completion_tokens=row["completion_tokens"], latency_s=row["latency_s"],
                   cost=row["cost"], created_at=row["created_at"],
                   texts=None if row["texts"] is None else json.loads(row["texts"]))
