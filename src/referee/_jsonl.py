"""Reading JSONL files of records, with errors that name the file and line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import InputError


def read_jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file (gzip-compressed when
    its name ends in ``.gz``).

    Raises:
        InputError: the file cannot be read or is not UTF-8, a line is not valid JSON, or a
            line holds something other than a JSON object; the error names the file and line.
    """
    path = Path(path)
    try:
        fh = gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", path=path) from None
    with fh:
        try:
            for line, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError as e:
                    raise InputError(f"malformed JSON ({e.msg} at column {e.colno}); expected one JSON object "
                                     "a line", path=path, line=line) from None
                if not isinstance(rec, dict):
                    raise InputError(f"expected a JSON object, got {type(rec).__name__}", path=path, line=line)
                yield line, rec
        except UnicodeDecodeError as e:
            raise InputError(f"not UTF-8 text (byte offset {e.start})", path=path) from None
        except (gzip.BadGzipFile, EOFError) as e:
            raise InputError(f"not a complete gzip file ({e})", path=path) from None


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """One JSON object a line, written to a temporary file and renamed: a reader (or a killed
    writer) never sees half a file."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)
    return path
