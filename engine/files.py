"""A file written whole or not at all: readers in other processes (a reload, a worker, a queue) see the last
complete version, never a half-written one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write `data` beside `path` under a hidden staging name, then rename it over `path` (one step on POSIX)."""
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex}"
    try:
        if isinstance(data, str):
            staging.write_text(data, encoding="utf-8")
        else:
            staging.write_bytes(data)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
