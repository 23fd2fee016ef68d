"""Writing preference rows: JSONL, Parquet, or a ``datasets.Dataset``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError

WRITE_FORMATS = ("jsonl", "parquet")


def write_rows(path: str | Path, rows: list[dict[str, Any]], *, fmt: str | None = None) -> Path:
    """Write rows as JSONL or Parquet (chosen by ``fmt``, else by the suffix: ``.parquet``/``.pq`` or JSONL)."""
    path = Path(path)
    fmt = fmt or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    elif fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError("Parquet output needs pyarrow: pip install 'referee[export]'", path=path) from None
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        raise InputError(f"unknown output format {fmt!r}; use one of {WRITE_FORMATS}", path=path)
    return path


def to_dataset(rows: list[dict[str, Any]]):
    """The rows as a Hugging Face ``datasets.Dataset`` (needs ``pip install 'referee[export]'``)."""
    try:
        from datasets import Dataset
    except ImportError:
        raise ImportError("to_dataset needs the datasets package: pip install 'referee[export]'") from None
    return Dataset.from_list(rows)
