"""Verdicts in append-only Parquet shards: the bulk of a verdict log that outgrows one SQLite file.

A sharded run folder holds ``verdicts.sqlite`` (judges, texts, runs, the shard table, and the
journal: verdicts not yet in a shard) and ``verdicts/part-NNNNNNNN.parquet``. Every verdict is
committed to the journal as it arrives, as in an unsharded store; when the journal holds enough
answers they are written as one shard and then deleted from the journal (see
:meth:`referee.store.VerdictStore.flush_shards`). A shard is immutable: only answers (``ok`` and
``unparseable``) go into shards, never ``error`` rows (a retry may still replace those) nor stored
ensembles (recomputed and replaced by ``combine``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ._records import Verdict

SHARD_DIR = "verdicts"
_NAME = re.compile(r"^part-(\d{8})\.parquet$")


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise StoreError("Parquet verdict shards need pyarrow and duckdb: pip install 'referee[parquet]'") from None
    return pa, pq


def shard_schema():
    """The Arrow schema of a shard: a verdict's fields, with ``systems`` and ``texts`` as lists, and
    the first shown system (and the second, of a pairwise verdict) also as columns: what
    aggregation reads."""
    pa, _ = _pa()
    return pa.schema([
        ("verdict_id", pa.string()), ("question", pa.string()), ("judge_id", pa.string()), ("mode", pa.string()),
        ("prompt_id", pa.string()), ("systems", pa.list_(pa.string())), ("system_first", pa.string()),
        ("system_second", pa.string()), ("status", pa.string()), ("p_first", pa.float64()), ("score", pa.float64()),
        ("detail", pa.string()), ("raw", pa.string()), ("error", pa.string()), ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()), ("latency_s", pa.float64()), ("cost", pa.float64()),
        ("created_at", pa.string()), ("texts", pa.list_(pa.string())),
    ])


def shard_name(seq: int) -> str:
    return f"part-{seq:08d}.parquet"


class ShardLog:
    """The shard files of one run folder, read with pyarrow (aggregation reads them with DuckDB)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def files(self) -> list[Path]:
        """The shard files, oldest first (the order their verdicts were stored in)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _NAME.match(p.name))

    def path(self, seq: int) -> Path:
        return self.folder / shard_name(seq)

    def null_texts(self, path: Path) -> int:
        """How many verdicts of a shard name no texts."""
        _, pq = _pa()
        return pq.read_table(path, columns=["texts"]).column("texts").null_count

    def write(self, seq: int, rows: Sequence[dict[str, Any]]) -> Path:
        """Write one shard of rows (:func:`verdict_row`), see :meth:`write_table`."""
        pa, _ = _pa()
        return self.write_table(seq, pa.Table.from_pylist(list(rows), schema=shard_schema()))

    def conform(self, table: Any) -> Any:
        """``table`` with the shard schema's columns, in its order and types, or a StoreError naming
        what is missing or cannot be converted."""
        pa, _ = _pa()
        schema = shard_schema()
        missing = [f.name for f in schema if f.name not in table.column_names]
        if missing:
            raise StoreError(f"{self.folder}: a shard needs the columns {', '.join(missing)}")
        try:
            return table.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as e:
            raise StoreError(f"{self.folder}: the table does not fit the shard schema: {e}") from e

    def check_new(self, table: Any, store: Path) -> None:
        """Refuse a table that holds ``error`` rows, ensembles or one verdict id twice."""
        import pyarrow.compute as pc

        status = table.column("status")
        bad = pc.sum(pc.invert(pc.is_in(status, value_set=_pa()[0].array(["ok", "unparseable"])))).as_py() or 0
        if bad:
            raise StoreError(f"{store}: {bad} verdict(s) in the table are not answers (status other than ok and "
                             f"unparseable); errors go to the journal, to be asked again")
        if pc.sum(pc.starts_with(table.column("judge_id"), "ens-")).as_py():
            raise StoreError(f"{store}: stored ensembles are recomputed, so they stay in the journal, not in a shard")
        ids = table.column("verdict_id")
        if pc.count_distinct(ids).as_py() != table.num_rows:
            counts = pc.value_counts(ids)
            twice = next(c["values"] for c in counts.to_pylist() if c["counts"] > 1)
            raise StoreError(f"{store}: verdict id {twice} is in the table more than once")

    def write_table(self, seq: int, table: Any) -> Path:
        """Write one shard atomically (a temporary file, synced, then renamed): a reader or a crash
        sees the whole shard or none of it."""
        _, pq = _pa()
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(seq)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        try:
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{final}: cannot write the verdict shard: {e}") from e
        return final

    def read(self, files: Iterable[Path] | None = None, *, judge_id: str | None = None, mode: str | None = None,
             exclude_modes: Sequence[str] = (), columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Rows of the shards (all of them, or ``files``), filtered on judge and mode."""
        _, pq = _pa()
        filters = []
        if judge_id is not None:
            filters.append(("judge_id", "=", judge_id))
        if mode is not None:
            filters.append(("mode", "=", mode))
        elif exclude_modes:
            filters.append(("mode", "not in", list(exclude_modes)))
        for f in (self.files() if files is None else files):
            try:
                table = pq.read_table(f, columns=list(columns) if columns else None, filters=filters or None)
            except Exception as e:  # pyarrow raises many types for a damaged file
                raise StoreError(f"{f}: cannot read the verdict shard: {e}") from e
            yield from table.to_pylist()


def verdict_row(v: Verdict) -> dict[str, Any]:
    """A verdict as a shard row."""
    two = len(v.systems) == 2
    return {"verdict_id": v.verdict_id, "question": v.question, "judge_id": v.judge_id, "mode": v.mode,
            "prompt_id": v.prompt_id, "systems": list(v.systems), "system_first": v.systems[0] if v.systems else None,
            "system_second": v.systems[1] if two else None, "status": v.status, "p_first": v.p_first,
            "score": v.score, "detail": v.detail_json(), "raw": v.raw, "error": v.error,
            "prompt_tokens": v.prompt_tokens, "completion_tokens": v.completion_tokens, "latency_s": v.latency_s,
            "cost": v.cost, "created_at": v.created_at, "texts": v.texts}


def row_verdict(r: dict[str, Any]) -> Verdict:
    """A shard row as a verdict."""
    return Verdict(verdict_id=r["verdict_id"], question=r["question"], judge_id=r["judge_id"], mode=r["mode"],
                   prompt_id=r["prompt_id"], systems=list(r["systems"]), status=r["status"], p_first=r["p_first"],
                   score=r["score"], detail=json.loads(r["detail"] or "{}"), raw=r["raw"] or "", error=r["error"],
                   prompt_tokens=r["prompt_tokens"] or 0, completion_tokens=r["completion_tokens"] or 0,
                   latency_s=r["latency_s"] or 0.0, cost=r["cost"] or 0.0, created_at=r["created_at"] or "",
                   texts=None if r["texts"] is None else list(r["texts"]))
