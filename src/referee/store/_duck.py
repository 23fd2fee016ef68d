"""A store's current answers as one DuckDB relation over its Parquet shards and its journal.

Aggregation (:mod:`referee.outcomes`) reads only the columns it needs from the shards, in SQL, so
a log of a hundred million verdicts never becomes Python objects. A shard whose verdicts were all
about the current texts when it was written, with no text replaced since, is read as it is; any
other is checked row by row against the current texts, as :meth:`VerdictStore.verdicts` does.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

from ..errors import StoreError
from ._sqlite import VerdictStore

# What a query may hold in memory before DuckDB spills to disk: aggregating a verdict log groups it
# by comparison, and the groups of 100M verdicts do not fit in this.
DEFAULT_MEMORY = os.environ.get("REFEREE_DUCKDB_MEMORY", "1GB")

HOT = ("prompt_id", "system_first", "system_second", "status", "p_first", "score", "detail")
"""The columns of a verdict that aggregation reads."""


def connect(threads: int | None = None, memory: str = DEFAULT_MEMORY):
    """A DuckDB connection limited to ``threads`` (default: the machine's cores) and ``memory``, on a
    scratch database file in the system's temporary folder (removed when the process exits): an
    in-memory database cannot move its tables to disk, and the per-comparison table of 100M
    verdicts is several GB."""
    try:
        import duckdb
    except ImportError:
        raise StoreError("aggregating Parquet verdict shards needs duckdb: pip install 'referee[parquet]'") from None
    scratch = tempfile.mkdtemp(prefix="referee-duckdb-")
    atexit.register(shutil.rmtree, scratch, True)
    con = duckdb.connect(os.path.join(scratch, "aggregate.duckdb"))
    con.execute(f"SET threads={int(threads or os.cpu_count() or 1)}")
    con.execute("SET memory_limit=$m", {"m": memory})
    con.execute("SET temp_directory=$t", {"t": os.path.join(scratch, "spill")})
    con.execute("SET preserve_insertion_order=false")
    return con


# Current texts beside each verdict row ``r``: the prompt's and those of its (up to two) systems.
_NOW_JOIN = """
    LEFT JOIN now_prompts p ON p.prompt_id = r.prompt_id
    LEFT JOIN now_candidates c1 ON c1.prompt_id = r.prompt_id AND c1.system = r.systems[1]
    LEFT JOIN now_candidates c2 ON c2.prompt_id = r.prompt_id AND c2.system = r.systems[2]"""
# A verdict about the texts it names counts only while they are the current ones; one that names
# none (stored before its texts were) always counts. NULL (a text not stored) counts as not current.
_IS_CURRENT = ("(r.texts IS NULL OR r.texts = CASE WHEN len(r.systems) = 1 THEN list_value(p.sha, c1.sha) "
               "ELSE list_value(p.sha, c1.sha, c2.sha) END)")


def _register_texts(store: VerdictStore, con: Any) -> None:
    import pyarrow as pa

    now = store.current_texts()
    con.register("now_prompts", pa.table({"prompt_id": pa.array(list(now.prompts), pa.string()),
                                          "sha": pa.array(list(now.prompts.values()), pa.string())}))
    con.register("now_candidates", pa.table({"prompt_id": pa.array([k[0] for k in now.candidates], pa.string()),
                                             "system": pa.array([k[1] for k in now.candidates], pa.string()),
                                             "sha": pa.array(list(now.candidates.values()), pa.string())}))


def answers_sql(store: VerdictStore, con: Any, judge_id: str, modes: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """SQL (a ``SELECT``, with its named parameters) of one judge's current answers in ``modes``:
    columns :data:`HOT` plus ``bound`` (whether the verdict names the texts it judged).

    Registers the journal's rows and the current texts on ``con`` as tables ``journal``,
    ``now_prompts`` and ``now_candidates``.
    """
    import pyarrow as pa

    shards = store.shard_info()
    # Shards about the current texts whose verdicts all name them need neither check nor texts read.
    bound = [str(s["path"]) for s in shards if s["current"] and s["bound"]]
    clean = [str(s["path"]) for s in shards if s["current"] and not s["bound"]]
    checked = [str(s["path"]) for s in shards if not s["current"]]
    rows = [v for v in store.verdicts(judge_id=judge_id, shards=False) if v.mode in modes and v.status == "ok"]
    journal = pa.table({
        "prompt_id": pa.array([v.prompt_id for v in rows], pa.string()),
        "system_first": pa.array([v.systems[0] for v in rows], pa.string()),
        "system_second": pa.array([v.systems[1] if len(v.systems) == 2 else None for v in rows], pa.string()),
        "status": pa.array([v.status for v in rows], pa.string()),
        "p_first": pa.array([v.p_first for v in rows], pa.float64()),
        "score": pa.array([v.score for v in rows], pa.float64()),
        "detail": pa.array([v.detail_json() for v in rows], pa.string()),
        "bound": pa.array([v.texts is not None for v in rows], pa.bool_()),
    })
    con.register("journal", journal)
    params: dict[str, Any] = {"judge": judge_id, "modes": list(modes)}
    cols = ", ".join(f"r.{c}" for c in HOT)
    where = "r.judge_id = $judge AND list_contains($modes, r.mode) AND r.status = 'ok'"
    parts = ["SELECT * FROM journal"]
    if bound:
        params["bound"] = bound
        parts.append(f"SELECT {cols}, true AS bound FROM read_parquet($bound) r WHERE {where}")
    if clean:
        params["clean"] = clean
        parts.append(f"SELECT {cols}, r.texts IS NOT NULL AS bound FROM read_parquet($clean) r WHERE {where}")
    if checked:
        _register_texts(store, con)
        params["checked"] = checked
        parts.append(f"""SELECT {cols}, r.texts IS NOT NULL AS bound FROM read_parquet($checked) r {_NOW_JOIN}
            WHERE {where} AND coalesce({_IS_CURRENT}, false)""")
    return " UNION ALL ".join(parts), params


def shard_is_current(store: VerdictStore, table: Any) -> bool:
    """Whether every verdict of an Arrow ``table`` (shard schema) is about the store's current texts,
    or names none."""
    con = connect()
    try:
        con.register("r_table", table.select(["prompt_id", "systems", "texts"]))
        _register_texts(store, con)
        stale = con.execute(f"SELECT count(*) FROM r_table r {_NOW_JOIN} WHERE NOT coalesce({_IS_CURRENT}, false)")
        return stale.fetchall()[0][0] == 0
    finally:
        con.close()
