"""Files written whole or not at all: one set of atomic writers for the package, data_prep and the tests.

A file is written to a temporary name beside its target and moved into place with ``os.replace``, so
a kill never leaves half a file; it ends up readable by others (mode 0666 & ~umask: ``mkstemp`` and
safetensors create 0600 files, which break a shared or served folder).
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def finite_json(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, inf) as None, so that it dumps as strict JSON (``null``):
    ``json.dumps`` writes ``NaN`` by default, which JSON parsers other than Python's reject."""
    if isinstance(data, float):
        return data if data == data and data not in (float("inf"), float("-inf")) else None
    if isinstance(data, dict):
        return {k: finite_json(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite_json(v) for v in data]
    return data


def strict_json_dumps(data: Any, **kwargs) -> str:
    """Strict JSON (non-finite floats as ``null``; ``allow_nan=False`` proves none is left)."""
    return json.dumps(finite_json(data), allow_nan=False, **kwargs)


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_csv(path: str | os.PathLike, rows: Iterable[dict[str, Any]], columns: Iterable[str] | None = None) -> int:
    """Write rows (streamed) to ``path`` atomically; ``columns`` default to the first row's keys.
    Returns the row count."""
    rows = iter(rows)
    first = next(rows, None)
    columns = list(columns) if columns is not None else list(first or {})
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in itertools.chain([first] if first is not None else [], rows):
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
            n += 1
    return n
